"""durable-rules as a stateless evaluator of rules kept as data.

Rules are written once as conditions over a flat dict of facts (see the condition helpers
below) and loaded as rulesets under fresh, unique names: durable-rules cannot redefine a
ruleset, so a new version of a rule set is a new ruleset, and callers switch which one they
use. Two kinds of evaluation:

- `FirstMatch`: ordered rules, the first that matches wins (a posted event is consumed by
  one rule; rule order is its priority). For routing.
- `AllMatches`: every matching rule fires (an asserted fact, retracted at once so nothing
  stays behind). For scoring factors and checklists.

Measured here (durable-rules 2.0.28): a ruleset of more than 512 rules hangs the engine at
load, and evaluation slows as a ruleset grows (about 20 k posts/s at 200 rules, 8 k at 500),
so rule sets are split into chunks of at most `CHUNK` rules, evaluated in order.
Calls are serialised with a lock: from several threads, durable-rules may run an action on
its own dispatcher thread after `post` returned.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from durable.engine import Host, MessageNotHandledException

CHUNK = 200

Condition = dict[str, Any]
Facts = Mapping[str, str | int | float | bool]


# --- conditions over facts -----------------------------------------------------------------


def equals(field: str, value: str | int | float | bool) -> Condition:
    return {field: value}


def any_of(field: str, values: Iterable[str | int | float | bool]) -> Condition:
    options = [equals(field, v) for v in values]
    if not options:
        raise ValueError(f"any_of({field!r}) needs at least one value")
    return options[0] if len(options) == 1 else {"$or": options}


def at_least(field: str, value: int | float) -> Condition:
    return {"$gte": {field: value}}


def at_most(field: str, value: int | float) -> Condition:
    return {"$lte": {field: value}}


# durable-rules' own `$nex` hangs the engine here, so presence is a derived fact instead.
_KNOWN = "_known_"


def present(field: str) -> Condition:
    return {f"{_KNOWN}{field}": 1}


def absent(field: str) -> Condition:
    return {f"{_KNOWN}{field}": 0}


def all_of(conditions: Sequence[Condition]) -> Condition:
    if not conditions:
        return equals(ALWAYS, 1)
    return conditions[0] if len(conditions) == 1 else {"$and": list(conditions)}


# Every evaluation carries this fact, so a rule without conditions can still be written.
ALWAYS = "_always"


# --- the engine ----------------------------------------------------------------------------


class _Host(Host):  # type: ignore[misc]
    def __init__(self, engine: RuleEngine) -> None:
        self._engine = engine
        super().__init__()

    def get_action(self, action_name: str) -> Any:
        rule = action_name.split("::", 1)[1]

        def fired(_context: Any) -> None:
            self._engine._fired.append(rule)

        return fired


class RuleEngine:
    """One per process: durable-rules keeps rulesets in a process-wide native engine."""

    def __init__(self) -> None:
        self._host = _Host(self)
        self._lock = threading.Lock()
        self._fired: list[str] = []
        self._fact_ids = itertools.count()

    def _register(self, label: str, rules: Sequence[tuple[str, Condition]], ordered: bool) -> str:
        name = f"{label}.{uuid.uuid4().hex[:12]}"
        definition = {}
        for position, (rule, condition) in enumerate(rules):
            spec: dict[str, Any] = {"all": [{"m": condition}], "run": f"{name}::{rule}"}
            if ordered:
                spec["pri"] = position
            definition[f"r{position}"] = spec
        with self._lock:
            self._host.set_rulesets({name: definition})
        return name

    def first_match(self, label: str, rules: Sequence[tuple[str, Condition]]) -> FirstMatch:
        """Ordered (name, condition) pairs; evaluation answers the first name that matches."""
        _check_names(rules)
        chunks = [rules[i : i + CHUNK] for i in range(0, len(rules), CHUNK)]
        names = [self._register(label, chunk, ordered=True) for chunk in chunks]
        return FirstMatch(self, names, _presence_fields(rules))

    def all_matches(self, label: str, rules: Sequence[tuple[str, Condition]]) -> AllMatches:
        """(name, condition) pairs; evaluation answers every name that matches, in order."""
        _check_names(rules)
        chunks = [rules[i : i + CHUNK] for i in range(0, len(rules), CHUNK)]
        order = {name: i for i, (name, _) in enumerate(rules)}
        names = [self._register(label, chunk, ordered=False) for chunk in chunks]
        return AllMatches(self, names, order, _presence_fields(rules))

    def _post(self, ruleset: str, facts: dict[str, Any]) -> list[str]:
        with self._lock:
            self._fired = []
            try:
                self._host.post(ruleset, facts)
            except MessageNotHandledException:
                return []
            return self._fired

    def _assert_and_retract(self, ruleset: str, facts: dict[str, Any]) -> list[str]:
        fact = {**facts, "id": f"f{next(self._fact_ids)}"}
        with self._lock:
            self._fired = []
            try:
                self._host.assert_fact(ruleset, fact)
            except MessageNotHandledException:
                return []
            fired = self._fired
            self._host.retract_fact(ruleset, fact)
            return fired


class FirstMatch:
    def __init__(self, engine: RuleEngine, rulesets: list[str], presence: frozenset[str]) -> None:
        self._engine = engine
        self._rulesets = rulesets
        self._presence = presence

    def evaluate(self, facts: Facts) -> str | None:
        prepared = _prepare(facts, self._presence)
        for ruleset in self._rulesets:
            fired = self._engine._post(ruleset, prepared)
            if fired:
                return fired[0]
        return None


class AllMatches:
    def __init__(
        self,
        engine: RuleEngine,
        rulesets: list[str],
        order: dict[str, int],
        presence: frozenset[str],
    ) -> None:
        self._engine = engine
        self._rulesets = rulesets
        self._order = order
        self._presence = presence

    def evaluate(self, facts: Facts) -> list[str]:
        prepared = _prepare(facts, self._presence)
        fired: set[str] = set()
        for ruleset in self._rulesets:
            fired.update(self._engine._assert_and_retract(ruleset, prepared))
        return sorted(fired, key=self._order.__getitem__)


def _check_names(rules: Sequence[tuple[str, Condition]]) -> None:
    names = [name for name, _ in rules]
    if len(set(names)) != len(names):
        raise ValueError("rule names must be unique within a rule set")
    if any("::" in name for name in names):
        raise ValueError("rule names may not contain '::'")


def _presence_fields(rules: Sequence[tuple[str, Condition]]) -> frozenset[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.startswith(_KNOWN):
                    found.add(key[len(_KNOWN) :])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for _, condition in rules:
        walk(condition)
    return frozenset(found)


def _prepare(facts: Facts, presence: frozenset[str]) -> dict[str, Any]:
    # durable-rules takes str, number and bool values only; an unknown fact is simply absent.
    prepared: dict[str, Any] = {k: v for k, v in facts.items() if v is not None}
    for field in presence:
        prepared[f"{_KNOWN}{field}"] = 0 if facts.get(field) is None else 1
    prepared[ALWAYS] = 1
    return prepared


_engine: RuleEngine | None = None
_engine_lock = threading.Lock()


def rule_engine() -> RuleEngine:
    """The process-wide engine."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = RuleEngine()
        return _engine
