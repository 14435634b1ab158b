"""Routing rules as data: the YAML document, its validation, its compilation for durable-rules,
and the explanation of a decision. Pure: no database, no bus.

```yaml
rules:                       # ordered: the first rule that matches decides
  - name: hangzhou-fasteners
    when: {city: [杭州], category: [fasteners, 紧固件]}
    assign: {reps: [rep-zhang, rep-li], strategy: round_robin}
  - name: zhejiang-high-grade
    when: {province: [浙江], grade: [A]}
    assign: {team: east-china, strategy: least_loaded}
default: {pool: public}      # or an assignment
```
`when` may name city, province, category, grade, source, tags (any of the listed values
each; all named keys must hold) and score ({min, max}); no `when` matches every lead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from salesrail.rules_engine import (
    Condition,
    DecisionCache,
    FirstMatch,
    RuleEngine,
    all_of,
    any_of,
    at_least,
    at_most,
)
from salesrail.text.regions import resolve_city, resolve_province

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Value = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ANY_CITY = "*"
DECISION_CACHE_SIZE = 50_000


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


class ScoreRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: Annotated[int, Field(ge=0, le=100)] | None = None
    max: Annotated[int, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ScoreRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self


class When(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: list[Value] | None = None
    province: list[Value] | None = None
    category: list[Value] | None = None
    grade: list[Literal["A", "B", "C"]] | None = None
    source: list[Value] | None = None
    tags: list[Value] | None = None
    score: ScoreRange | None = None


class Assign(BaseModel):
    """A named rep, a list of reps, or a team; a list or team needs a strategy."""

    model_config = ConfigDict(extra="forbid")
    rep: Name | None = None
    reps: Annotated[list[Name], Field(min_length=1)] | None = None
    team: Name | None = None
    pool: Literal["public"] | None = None
    strategy: Strategy | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Assign:
        targets = [t for t in (self.rep, self.reps, self.team, self.pool) if t is not None]
        if len(targets) != 1:
            raise ValueError("name exactly one of rep, reps, team or pool")
        if self.rep is not None or self.pool is not None:
            if self.strategy is not None:
                raise ValueError("a strategy applies to reps or a team only")
        elif self.strategy is None:
            self.strategy = Strategy.ROUND_ROBIN if self.reps else Strategy.LEAST_LOADED
        return self

    def describe(self) -> str:
        if self.pool:
            return "the public pool"
        if self.rep:
            return f"rep {self.rep}"
        who = f"reps {', '.join(self.reps)}" if self.reps else f"team {self.team}"
        return f"{who} ({self.strategy})"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    when: When = Field(default_factory=When)
    assign: Assign


class RoutingDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: Annotated[list[Rule], Field(max_length=5000)] = []
    default: Assign = Field(default_factory=lambda: Assign(pool="public"))

    @model_validator(mode="after")
    def _unique_names(self) -> RoutingDocument:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
        return self

    def referenced_reps(self) -> set[str]:
        names = {a.rep for a in self._assigns() if a.rep}
        return names | {r for a in self._assigns() for r in (a.reps or [])}

    def referenced_teams(self) -> set[str]:
        return {a.team for a in self._assigns() if a.team}

    def _assigns(self) -> list[Assign]:
        return [rule.assign for rule in self.rules] + [self.default]


class RulesInvalid(ValueError):
    """Names each problem: [{"rule": name or position, "field": ..., "message": ...}]."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{p['rule']}: {p['message']}" for p in problems))
        self.problems = problems


# --- facts of a lead ----------------------------------------------------------------------


@lru_cache(maxsize=4096)  # the same categories, sources and tags come again and again
def normalise_word(value: str) -> str:
    return " ".join(value.split()).casefold()


@dataclass(frozen=True)
class LeadFacts:
    """What routing looks at, already normalised (canonical city and province names)."""

    city: str | None
    province: str | None
    category: str
    grade: str | None = None
    source: str | None = None
    score: int | None = None
    tags: tuple[str, ...] = ()

    def as_facts(self, tag_ids: dict[str, str]) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "city": self.city,
            "province": self.province,
            "category": normalise_word(self.category),
            "grade": self.grade,
            "source": normalise_word(self.source) if self.source else None,
            "score": self.score,
        }
        for tag in self.tags:
            if (key := tag_ids.get(normalise_word(tag))) is not None:
                facts[key] = 1
        return facts


# --- compilation --------------------------------------------------------------------------


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    cities: frozenset[str] | None
    provinces: frozenset[str] | None


@dataclass(frozen=True)
class RouteMatch:
    rule: Rule | None  # None: the default applied
    assign: Assign
    explanation: str


class CompiledRouting:
    """A validated rule set loaded into durable-rules, bucketed by city: most rules name a
    city, so a lead is only compared with its city's rules and the city-less ones.

    Decisions are remembered per distinct case of the facts a bucket's rules read (a few
    hundred cities times a few categories, say), for this version only; the explanation is
    written from the lead each time."""

    def __init__(
        self,
        version: int,
        document: RoutingDocument,
        rules: list[_CompiledRule],
        buckets: dict[str, FirstMatch],
        tag_ids: dict[str, str],
        decisions: DecisionCache | None = None,
    ) -> None:
        self.version = version
        self.document = document
        self._rules = {c.rule.name: c for c in rules}
        self._buckets = buckets
        self._any_city = buckets[ANY_CITY]
        self._tag_ids = tag_ids
        self._decisions = decisions

    def match(self, lead: LeadFacts) -> RouteMatch:
        bucket = self._buckets.get(lead.city or ANY_CITY, self._any_city)
        fired = bucket.evaluate(lead.as_facts(self._tag_ids))
        if fired is None:
            default = self.document.default
            return RouteMatch(None, default, f"no rule matched; default: {default.describe()}")
        compiled = self._rules[fired]
        return RouteMatch(compiled.rule, compiled.rule.assign, explain(compiled, lead))


def compile_routing(
    document: RoutingDocument, *, version: int, engine: RuleEngine
) -> CompiledRouting:
    """Validate names against the region data and load every bucket into the engine."""
    problems: list[dict[str, Any]] = []
    compiled = [_compile_rule(rule, problems) for rule in document.rules]
    if problems:
        raise RulesInvalid(problems)
    tags = sorted({normalise_word(t) for c in compiled for t in (c.rule.when.tags or [])})
    tag_ids = {tag: f"tag{i}" for i, tag in enumerate(tags)}
    conditions = {c.rule.name: _condition(c, tag_ids) for c in compiled}
    cities = sorted({city for c in compiled for city in (c.cities or ())})
    decisions = DecisionCache(DECISION_CACHE_SIZE)
    buckets: dict[str, FirstMatch] = {}
    for city in [*cities, ANY_CITY]:
        members = [c for c in compiled if c.cities is None or city in c.cities]
        rules = [(c.rule.name, conditions[c.rule.name]) for c in members]
        buckets[city] = engine.first_match(f"routing.v{version}", rules, cache=decisions)
    return CompiledRouting(version, document, compiled, buckets, tag_ids, decisions)


def _compile_rule(rule: Rule, problems: list[dict[str, Any]]) -> _CompiledRule:
    cities = provinces = None
    if rule.when.city is not None:
        cities = frozenset(_resolved(rule, "city", rule.when.city, problems, resolve_city))
    if rule.when.province is not None:
        provinces = frozenset(
            _resolved(rule, "province", rule.when.province, problems, resolve_province)
        )
    return _CompiledRule(rule, cities, provinces)


def _resolved(
    rule: Rule, field: str, values: Sequence[str], problems: list[dict[str, Any]], resolve: Any
) -> list[str]:
    names = []
    for value in values:
        found = resolve(value)
        if found is None:
            problems.append(
                {
                    "rule": rule.name,
                    "field": f"when.{field}",
                    "message": f"unknown {field} {value!r}",
                }
            )
        else:
            names.append(found.name)
    return names


def _condition(compiled: _CompiledRule, tag_ids: dict[str, str]) -> Condition:
    when = compiled.rule.when
    parts: list[Condition] = []
    if compiled.cities is not None:
        parts.append(any_of("city", sorted(compiled.cities)))
    if compiled.provinces is not None:
        parts.append(any_of("province", sorted(compiled.provinces)))
    if when.category is not None:
        parts.append(any_of("category", sorted({normalise_word(v) for v in when.category})))
    if when.grade is not None:
        parts.append(any_of("grade", when.grade))
    if when.source is not None:
        parts.append(any_of("source", sorted({normalise_word(v) for v in when.source})))
    if when.tags is not None:
        parts.append(_any_tag(when.tags, tag_ids))
    if when.score is not None and when.score.min is not None:
        parts.append(at_least("score", when.score.min))
    if when.score is not None and when.score.max is not None:
        parts.append(at_most("score", when.score.max))
    return all_of(parts)


def _any_tag(tags: list[str], tag_ids: dict[str, str]) -> Condition:
    keys = sorted({tag_ids[normalise_word(t)] for t in tags})
    options = [{key: 1} for key in keys]
    return options[0] if len(options) == 1 else {"$or": options}


def explain(compiled: _CompiledRule, lead: LeadFacts) -> str:
    """'rule hangzhou-fasteners matched city=杭州市, category=紧固件'."""
    when = compiled.rule.when
    matched = []
    if compiled.cities is not None:
        matched.append(f"city={lead.city}")
    if compiled.provinces is not None:
        matched.append(f"province={lead.province}")
    if when.category is not None:
        matched.append(f"category={lead.category}")
    if when.grade is not None:
        matched.append(f"grade={lead.grade}")
    if when.source is not None:
        matched.append(f"source={lead.source}")
    if when.tags is not None:
        wanted = {normalise_word(t) for t in when.tags}
        matched.append("tags=" + ",".join(t for t in lead.tags if normalise_word(t) in wanted))
    if when.score is not None:
        matched.append(f"score={lead.score}")
    conditions = ", ".join(matched) if matched else "every lead"
    return f"rule {compiled.rule.name} matched {conditions}"
