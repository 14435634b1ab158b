"""Stage gates as data (rules/stage_gates.yaml): what a lead must show to enter a stage. Pure.

```yaml
stages:
  needs_confirmed:
    - name: needs_documented
      when: {any: [{needs_list: {min: 1}}, {meeting_minutes: {min: 1}}]}
      message: a needs list or meeting minutes
    - {name: decision_maker_known, when: {decision_maker: known}, message: a decision maker}
```
Facts: `activities` (how many), one count per activity type (`visit`, `demo`, `quote`...),
one per deliverable of the activity rules (`meeting_minutes`, `contract_party_matched`...),
`key_people` (distinct people covered), `decision_maker`, `budget`, `next_step` (known once an
activity named them), `owner` and `reason` (known when the request gives one).
Every stage but the first has a gate of at least two checks (the seeds' rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from activity.conditions import Checks, FactKind, check_when
from activity.requirements import Name, Text
from activity.rules import INITIAL_STAGE, STAGES
from salesrail.rules_engine import RuleEngine

LEAD_FACTS: dict[str, FactKind] = {
    "activities": "count",
    "key_people": "count",
    "decision_maker": "text",
    "budget": "text",
    "next_step": "text",
    "owner": "text",
    "reason": "text",
}
MIN_CHECKS = 2


class GateCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    when: dict[str, Any]
    message: Text


class GatesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stages: dict[str, Annotated[list[GateCheck], Field(min_length=MIN_CHECKS)]]

    @model_validator(mode="after")
    def _every_stage_gated(self) -> GatesDocument:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stages: {', '.join(unknown)}; known: {', '.join(STAGES)}")
        ungated = [s for s in STAGES if s != INITIAL_STAGE and s not in self.stages]
        if ungated:
            raise ValueError(f"stages without a gate: {', '.join(ungated)}")
        for stage, checks in self.stages.items():
            names = [c.name for c in checks]
            if len(set(names)) != len(names):
                raise ValueError(f"stages.{stage}: check names repeat")
        return self

    def check_facts(self, kinds: Mapping[str, FactKind]) -> None:
        """The checks read only facts a lead has (its activity types and deliverables)."""
        for stage, checks in self.stages.items():
            for check in checks:
                check_when(check.when, kinds, where=f"stages.{stage}.{check.name}")


def lead_fact_kinds(
    activity_types: Iterable[str], deliverables: Iterable[str]
) -> dict[str, FactKind]:
    counts: dict[str, FactKind] = {name: "count" for name in [*activity_types, *deliverables]}
    return LEAD_FACTS | counts


@dataclass(frozen=True)
class Missing:
    stage: str
    check: GateCheck

    @property
    def field(self) -> str:
        return f"deliverables.{self.stage}.{self.check.name}"


class CompiledGates:
    def __init__(
        self, document: GatesDocument, engine: RuleEngine, kinds: Mapping[str, FactKind]
    ) -> None:
        document.check_facts(kinds)
        self.document = document
        named = [
            (f"{stage}:{check.name}", check.when)
            for stage, checks in document.stages.items()
            for check in checks
        ]
        self._checks = Checks(engine, "stage_gates", named, kinds)

    def missing(self, stages: Sequence[str], facts: Mapping[str, Any]) -> list[Missing]:
        """Every check of these stages' gates the lead does not meet, in order."""
        passed = self._checks.passed(facts)
        return [
            Missing(stage, check)
            for stage in stages
            for check in self.document.stages.get(stage, [])
            if f"{stage}:{check.name}" not in passed
        ]

    def completion(self, stage: str | None, facts: Mapping[str, Any]) -> float | None:
        """The share (0..1) of a stage's gate checks already met; None without a gate."""
        checks = self.document.stages.get(stage or "")
        if not checks:
            return None
        return round(1 - len(self.missing([stage or ""], facts)) / len(checks), 4)
