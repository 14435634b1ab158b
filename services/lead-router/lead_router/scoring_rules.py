"""Scoring rules as data: health score 0-100, grade A/B/C, reasons per factor, and what makes
a lead qualified. Pure: no database, no bus.

```yaml
base: 0
factors:
  - name: high-potential          # the seeds' example
    when: {years_since_founding: {min: 5}, insured_headcount: {min: 50}, industry: [制造业]}
    points: 15
    reason: 成立5年以上、参保50人以上的制造企业（高潜力）
grades: {A: 70, B: 40}            # score >= 70 is A, >= 40 is B, else C
qualified:                        # a sales-qualified lead: budget and purchase time known
  when: {budget: known, purchase_timeframe: known}
```
A condition is a list (any of these values), a range ({min, max}) for numbers, or the words
`known` / `unknown`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from lead_router.routing_rules import RulesInvalid, normalise_word
from salesrail.rules_engine import (
    AllMatches,
    Condition,
    DecisionCache,
    RuleEngine,
    absent,
    all_of,
    any_of,
    at_least,
    at_most,
    present,
)

NUMERIC_FACTS = {"budget", "registered_capital_cny", "years_since_founding", "insured_headcount"}
TEXT_FACTS = {"source", "city", "province", "category", "industry", "purchase_timeframe", "email"}
FACTS = NUMERIC_FACTS | TEXT_FACTS | {"tags"}
_QUALIFIED = "__qualified__"
# Decisions remembered per version: per distinct case of the facts the factors read (which of
# the named words, where a number stands among the thresholds, known or not).
DECISION_CACHE_SIZE = 20_000

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None


ConditionValue = (
    list[Annotated[str, StringConstraints(min_length=1, max_length=100)]]
    | Range
    | Literal["known", "unknown"]
)


class Factor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    when: dict[str, ConditionValue]
    points: Annotated[int, Field(ge=-100, le=100)]
    reason: Annotated[str, StringConstraints(max_length=300)] | None = None

    @model_validator(mode="after")
    def _known_facts(self) -> Factor:
        _check_when(self.when)
        return self


class Qualification(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: dict[str, ConditionValue]
    reason: Annotated[str, StringConstraints(max_length=300)] | None = None

    @model_validator(mode="after")
    def _known_facts(self) -> Qualification:
        _check_when(self.when)
        return self


class Grades(BaseModel):
    model_config = ConfigDict(extra="forbid")
    A: Annotated[int, Field(ge=0, le=100)] = 70
    B: Annotated[int, Field(ge=0, le=100)] = 40

    @model_validator(mode="after")
    def _ordered(self) -> Grades:
        if self.B > self.A:
            raise ValueError("the B threshold is above the A threshold")
        return self


class ScoringDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: Annotated[int, Field(ge=0, le=100)] = 0
    factors: Annotated[list[Factor], Field(max_length=500)] = []
    grades: Grades = Field(default_factory=Grades)
    qualified: Qualification | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> ScoringDocument:
        names = [f.name for f in self.factors]
        duplicated = {n for n in names if names.count(n) > 1}
        if duplicated:
            raise ValueError(f"factor names repeat: {', '.join(sorted(duplicated))}")
        return self


def _check_when(when: dict[str, Any]) -> None:
    for fact, value in when.items():
        if fact not in FACTS:
            raise ValueError(f"unknown fact {fact!r}; known: {', '.join(sorted(FACTS))}")
        if isinstance(value, Range) and fact not in NUMERIC_FACTS:
            raise ValueError(f"{fact} is not a number: use a list of values")
        if isinstance(value, list) and fact in NUMERIC_FACTS:
            raise ValueError(f"{fact} is a number: use {{min, max}}")


@dataclass(frozen=True)
class ScoreCard:
    score: int
    grade: str
    qualified: bool
    reasons: list[dict[str, Any]]


class CompiledScoring:
    def __init__(self, version: int, document: ScoringDocument, rules: AllMatches) -> None:
        self.version = version
        self.document = document
        self._rules = rules
        self._factors = {f.name: f for f in document.factors}
        self._reasons = {f.name: (f.points, f.reason or f.name) for f in document.factors}
        # Only these facts are read (and normalised): the others cannot change a decision.
        whens = [f.when for f in document.factors]
        if document.qualified is not None:
            whens.append(document.qualified.when)
        self._reads = tuple(sorted({fact for when in whens for fact in when}))

    def score(self, facts: dict[str, Any]) -> ScoreCard:
        fired = self._rules.evaluate(_fact_values(facts, self._reads))
        known = self._reasons
        reasons = [
            {"factor": name, "points": known[name][0], "reason": known[name][1]}
            for name in fired
            if name != _QUALIFIED
        ]
        raw = self.document.base + sum(known[name][0] for name in fired if name != _QUALIFIED)
        score = max(0, min(100, raw))
        grades = self.document.grades
        grade = "A" if score >= grades.A else "B" if score >= grades.B else "C"
        return ScoreCard(score, grade, _QUALIFIED in fired, reasons)


def compile_scoring(
    document: ScoringDocument, *, version: int, engine: RuleEngine
) -> CompiledScoring:
    rules = [(f.name, _condition(f.when)) for f in document.factors]
    if document.qualified is not None:
        rules.append((_QUALIFIED, _condition(document.qualified.when)))
    if not rules:
        raise RulesInvalid([{"rule": "factors", "field": "factors", "message": "no factors"}])
    cache = DecisionCache(DECISION_CACHE_SIZE)
    return CompiledScoring(
        version, document, engine.all_matches(f"scoring.v{version}", rules, cache=cache)
    )


def _condition(when: dict[str, Any]) -> Condition:
    parts: list[Condition] = []
    for fact, value in when.items():
        if value == "known":
            parts.append(present(fact))
        elif value == "unknown":
            parts.append(absent(fact))
        elif isinstance(value, Range):
            if value.min is not None:
                parts.append(at_least(fact, value.min))
            if value.max is not None:
                parts.append(at_most(fact, value.max))
        elif fact == "tags":
            parts.append({"$or": [{f"tag:{normalise_word(v)}": 1} for v in value]})
        else:
            parts.append(any_of(fact, sorted({normalise_word(v) for v in value})))
    return all_of(parts)


def _fact_values(facts: dict[str, Any], reads: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for fact in reads:
        if fact not in facts:
            continue
        value = facts[fact]
        if fact == "tags":
            values.update({f"tag:{normalise_word(t)}": 1 for t in value or ()})
            values["tags"] = 1 if value else None
        elif isinstance(value, str):
            values[fact] = normalise_word(value) or None
        else:
            values[fact] = value
    return values
