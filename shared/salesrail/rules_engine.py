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

Evaluation is a pure function of the facts the rules read, so a caller may pass a
`DecisionCache` to remember decisions: the key is, per fact a rule set reads, the class of its
value that the rules can tell apart (which of the listed words it is, or another word; where a
number stands among the numbers compared with; absent), so leads that differ only in facts no
rule reads, or in a number between the same two thresholds, share one decision. A cache belongs
to one compiled version of a rule set: a new version gets a new cache. A value whose type the
rules compare across (durable-rules finds "6" >= 5 and True == 1) is keyed by its exact value.
"""

from __future__ import annotations

import itertools
import math
import threading
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from functools import partial
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

    def _run(self) -> None:
        """Start no dispatcher threads. durable-rules' Host re-arms two `threading.Timer`s per
        ruleset, back to back, every 0.2 s, to run timers and queued actions: with 250 rulesets
        that is ~2,500 threads a second and a third of a core burnt while idle. This engine
        uses neither timers nor queues (every action runs inside `post`/`assert_fact`, under
        the engine's lock), and without the threads no action can run late on one of them."""


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

    def first_match(
        self,
        label: str,
        rules: Sequence[tuple[str, Condition]],
        *,
        cache: DecisionCache | None = None,
    ) -> FirstMatch:
        """Ordered (name, condition) pairs; evaluation answers the first name that matches.
        With a cache, each distinct case (see the module's doc) is evaluated once."""
        _check_names(rules)
        chunks = [rules[i : i + CHUNK] for i in range(0, len(rules), CHUNK)]
        names = [self._register(label, chunk, ordered=True) for chunk in chunks]
        return FirstMatch(self, names, _presence_fields(rules), _memo(rules, cache))

    def all_matches(
        self,
        label: str,
        rules: Sequence[tuple[str, Condition]],
        *,
        cache: DecisionCache | None = None,
    ) -> AllMatches:
        """(name, condition) pairs; evaluation answers every name that matches, in order.
        With a cache, each distinct case (see the module's doc) is evaluated once."""
        _check_names(rules)
        chunks = [rules[i : i + CHUNK] for i in range(0, len(rules), CHUNK)]
        order = {name: i for i, (name, _) in enumerate(rules)}
        names = [self._register(label, chunk, ordered=False) for chunk in chunks]
        return AllMatches(self, names, order, _presence_fields(rules), _memo(rules, cache))

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
    def __init__(
        self,
        engine: RuleEngine,
        rulesets: list[str],
        presence: frozenset[str],
        memo: _Memo | None = None,
    ) -> None:
        self._engine = engine
        self._rulesets = rulesets
        self._presence = presence
        self._memo = memo

    def evaluate(self, facts: Facts) -> str | None:
        if self._memo is None:
            return self._evaluate(facts)
        return self._memo.decide(facts, self._evaluate)

    def _evaluate(self, facts: Facts) -> str | None:
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
        memo: _Memo | None = None,
    ) -> None:
        self._engine = engine
        self._rulesets = rulesets
        self._order = order
        self._presence = presence
        self._memo = memo

    def evaluate(self, facts: Facts) -> list[str]:
        if self._memo is None:
            return list(self._evaluate(facts))
        return list(self._memo.decide(facts, self._evaluate))

    def _evaluate(self, facts: Facts) -> tuple[str, ...]:
        prepared = _prepare(facts, self._presence)
        fired: set[str] = set()
        for ruleset in self._rulesets:
            fired.update(self._engine._assert_and_retract(ruleset, prepared))
        return tuple(sorted(fired, key=self._order.__getitem__))


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


# --- remembered decisions ------------------------------------------------------------------


class DecisionCache:
    """At most `size` remembered decisions (the oldest goes first), shared by the rule sets of
    one compiled version; a new version gets a new cache, so a swap forgets every decision."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a decision cache holds at least one decision")
        self._size = size
        self._data: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable, default: Any = None) -> Any:
        return self._data.get(key, default)

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            if key not in self._data and len(self._data) >= self._size:
                self._data.pop(next(iter(self._data)), None)
            self._data[key] = value


class _Uncacheable(Exception):
    pass


_UNSEEN = object()
_OTHER = object()  # a word none of the rules names: every such word decides alike
_EXACT_INT = 2**53  # beyond this, durable-rules' numbers (doubles) may not tell ints apart
_ORDERED = ("$lt", "$lte", "$gt", "$gte")
_memo_ids = itertools.count()


class _Field:
    """What the rules compare one fact with."""

    __slots__ = ("words", "numbers", "exact")

    def __init__(self) -> None:
        self.words: set[str] = set()  # compared for equality only
        self.numbers: list[int | float] = []  # thresholds and equalities
        self.exact = False  # compared with something else: keep the value itself

    def classifier(self) -> Callable[[Any], Hashable]:
        """The class of a value: absent (None), or what the rules can tell of it."""
        if self.exact or (self.words and self.numbers):
            return _exact
        if self.words:
            return partial(_word, frozenset(self.words))
        if self.numbers:
            return partial(_number, tuple(sorted(self.numbers)))
        return _present  # read for its presence only


def _exact(value: Any) -> Hashable:
    return None if value is None else ("=", type(value).__name__, value)


def _present(value: Any) -> Hashable:
    return None if value is None else _OTHER


def _word(words: frozenset[str], value: Any) -> Hashable:
    if type(value) is str:
        return value if value in words else _OTHER
    return _exact(value)  # durable-rules finds 1 == "1"


def _number(numbers: tuple[int | float, ...], value: Any) -> Hashable:
    kind = type(value)
    if (kind is int or kind is float) and -_EXACT_INT <= value <= _EXACT_INT:  # not NaN
        return (kind is int, bisect_left(numbers, value), bisect_right(numbers, value))
    return _exact(value)  # None, or durable-rules finds "6" >= 5


class _Memo:
    """The key of a case for one rule set (the class of each fact it reads) and its cache."""

    def __init__(self, fields: dict[str, _Field], cache: DecisionCache) -> None:
        self._fields = [(name, field.classifier()) for name, field in sorted(fields.items())]
        self._cache = cache
        self._id = next(_memo_ids)

    def decide(self, facts: Facts, evaluate: Callable[[Facts], Any]) -> Any:
        if "id" in facts or "sid" in facts:  # durable-rules reads these itself
            return evaluate(facts)
        get = facts.get
        key = (self._id, *[classify(get(name)) for name, classify in self._fields])
        try:
            decision = self._cache.get(key, _UNSEEN)
        except TypeError:  # an unhashable value
            return evaluate(facts)
        if decision is _UNSEEN:
            decision = evaluate(facts)
            self._cache.put(key, decision)
        return decision


def _memo(rules: Sequence[tuple[str, Condition]], cache: DecisionCache | None) -> _Memo | None:
    """None without a cache, or when a condition uses something the key cannot classify."""
    if cache is None:
        return None
    fields: dict[str, _Field] = {}

    def compare(name: Any, value: Any, *, ordered: bool) -> None:
        if not isinstance(name, str) or name.startswith("$"):
            raise _Uncacheable
        field = fields.setdefault(name, _Field())
        if isinstance(value, str) and not ordered:
            field.words.add(value)
        elif type(value) in (int, float) and math.isfinite(value):
            field.numbers.append(value)
        elif isinstance(value, str | int | float | bool):
            field.exact = True
        else:
            raise _Uncacheable

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            raise _Uncacheable
        for key, value in node.items():
            if key in ("$and", "$or"):
                if not isinstance(value, list):
                    raise _Uncacheable
                for item in value:
                    walk(item)
            elif key in _ORDERED or key == "$neq":
                if not isinstance(value, dict):
                    raise _Uncacheable
                for name, constant in value.items():
                    compare(name, constant, ordered=key != "$neq")
            elif key == ALWAYS:
                continue  # always 1
            elif key.startswith(_KNOWN):
                fields.setdefault(key[len(_KNOWN) :], _Field())  # presence: absent or not
            else:
                compare(key, value, ordered=False)

    try:
        for _, condition in rules:
            walk(condition)
    except _Uncacheable:
        return None
    return _Memo(fields, cache)


_engine: RuleEngine | None = None
_engine_lock = threading.Lock()


def rule_engine() -> RuleEngine:
    """The process-wide engine."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = RuleEngine()
        return _engine
