"""What each activity type must carry, as data (rules/activity_requirements.yaml). Pure.

```yaml
photo_tolerance: 3h               # a photo taken further than this from occurred_at is flagged
types:
  visit:
    on_time_within: 2h            # logged later is accepted, marked late
    memo_facts: true              # report which memo facts are missing even without a memo
    requires:
      - name: photo
        field: attachments        # the field path a refusal names
        when: {photos: {min: 1}}
        message: at least one photo
  quote:
    checklist:                    # each item answered explicitly true or false
      freight_included: freight included?
  contract:
    requires:
      - {name: party_matches, field: party_name, when: {party_match: [match]}, overridable: true}
    delivers:                     # what an accepted activity adds to its lead (stage gates)
      - {name: contract_party_matched, when: {party_match: [match]}}
```
An activity missing any requirement is refused; a supervisor may accept one whose missing
requirements are all `overridable`, with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from activity.conditions import Checks, FactKind, check_when
from salesrail.rules_engine import RuleEngine

# The facts an activity's rules may read (see activity.evidence).
ACTIVITY_FACTS: dict[str, FactKind] = {
    "photos": "count",  # image attachments
    "audio": "count",  # audio attachments
    "pdfs": "count",
    "documents": "count",  # pdf or image: a scanned or photographed page
    "attachments": "count",
    "contacts": "count",  # people named as met
    "transcript": "text",
    "summary": "text",
    "minutes": "text",
    "party_name": "text",
    "decision_maker": "text",
    "party_match": "word",  # match | mismatch (only when a party name was given)
    "tech_env_change": "flag",
}
CHECKLIST_PREFIX = "checklist_"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: Any) -> Any:
    """`2h`, `90m`, `1d`, `30s` or a number of seconds."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    field: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    when: dict[str, Any]
    message: Text
    overridable: bool = False


class Deliverable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    when: dict[str, Any] = Field(default_factory=dict)


class TypeRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requires: list[Requirement] = Field(default_factory=list)
    checklist: dict[Name, Text] = Field(default_factory=dict)
    delivers: list[Deliverable] = Field(default_factory=list)
    on_time_within: Duration | None = None
    memo_facts: bool = False

    def all_requirements(self) -> list[Requirement]:
        """The checklist as requirements (answered = known), then the other requirements."""
        asked = [
            Requirement(
                name=f"{CHECKLIST_PREFIX}{item}",
                field=f"checklist.{item}",
                when={f"{CHECKLIST_PREFIX}{item}": "known"},
                message=f"{question} (answer true or false)",
            )
            for item, question in self.checklist.items()
        ]
        return asked + self.requires


class RequirementsDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    photo_tolerance: Duration = timedelta(hours=3)
    types: Annotated[dict[Name, TypeRules], Field(min_length=1)]

    @model_validator(mode="after")
    def _valid_rules(self) -> RequirementsDocument:
        kinds = self.fact_kinds()
        for type_name, rules in self.types.items():
            names = [r.name for r in rules.all_requirements()]
            if len(set(names)) != len(names):
                raise ValueError(f"types.{type_name}: requirement names repeat")
            for requirement in rules.requires:
                check_when(requirement.when, kinds, where=f"types.{type_name}.{requirement.name}")
            for deliverable in rules.delivers:
                if deliverable.name in self.types:
                    raise ValueError(f"deliverable {deliverable.name!r} is named like a type")
                check_when(deliverable.when, kinds, where=f"types.{type_name}.{deliverable.name}")
        return self

    def fact_kinds(self) -> dict[str, FactKind]:
        items = {item for rules in self.types.values() for item in rules.checklist}
        return ACTIVITY_FACTS | {f"{CHECKLIST_PREFIX}{item}": "flag" for item in items}

    def deliverables(self) -> set[str]:
        return {d.name for rules in self.types.values() for d in rules.delivers}


@dataclass(frozen=True)
class Verdict:
    missing: list[Requirement]
    delivers: list[str]

    @property
    def overridable(self) -> bool:
        """Refused only for reasons a supervisor may accept."""
        return bool(self.missing) and all(r.overridable for r in self.missing)


class CompiledRequirements:
    """One memoised rule set per activity type: requirements met and deliverables earned."""

    def __init__(self, document: RequirementsDocument, engine: RuleEngine) -> None:
        self.document = document
        kinds = document.fact_kinds()
        self._checks: dict[str, Checks] = {}
        self._requirements: dict[str, list[Requirement]] = {}
        for type_name, rules in document.types.items():
            requirements = rules.all_requirements()
            named = [(f"req:{r.name}", r.when) for r in requirements]
            named += [(f"del:{d.name}", d.when) for d in rules.delivers]
            self._requirements[type_name] = requirements
            if named:
                self._checks[type_name] = Checks(engine, f"activity.{type_name}", named, kinds)

    @property
    def types(self) -> list[str]:
        return list(self.document.types)

    def rules_of(self, activity_type: str) -> TypeRules:
        return self.document.types[activity_type]

    def check(self, activity_type: str, facts: Mapping[str, Any]) -> Verdict:
        checks = self._checks.get(activity_type)
        passed = checks.passed(facts) if checks is not None else frozenset()
        missing = [r for r in self._requirements[activity_type] if f"req:{r.name}" not in passed]
        delivers = [
            d.name for d in self.rules_of(activity_type).delivers if f"del:{d.name}" in passed
        ]
        return Verdict(missing, delivers)
