"""The `when` language of activity's rule files, evaluated through durable-rules.

```yaml
when: {photos: {min: 1}, freight_included: known}   # every condition holds
when: {any: [{audio: {min: 1}}, {transcript: known}]}   # one of these holds
```
A condition is `{min, max}` (a count), `true` / `false` (a flag answered that way), a list of
values (a word, any of them), or `known` / `unknown` (given or not; any kind but a count).

A decision depends only on the facts its rules read, and those repeat (a visit with one photo
and a transcript looks like every other), so each distinct case goes through durable-rules once:
facts are reduced to what the rules can tell apart (counts capped above the largest threshold,
texts to known/unknown) and the answer is memoised on that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

from salesrail.rules_engine import (
    Condition,
    RuleEngine,
    absent,
    all_of,
    any_of,
    at_least,
    at_most,
    equals,
    present,
)

# count: a number of things; flag: true/false; text: free text; word: one of a few values.
FactKind = Literal["count", "flag", "text", "word"]
ANY = "any"
_FACT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PRESENCE = ("known", "unknown")


def check_when(when: Any, kinds: Mapping[str, FactKind], *, where: str = "when") -> None:
    """Raise ValueError naming the first condition that is not valid for its fact."""
    if not isinstance(when, dict):
        raise ValueError(f"{where}: a mapping of fact: condition")
    for fact, value in when.items():
        if fact == ANY:
            if not isinstance(value, list) or not value:
                raise ValueError(f"{where}.any: a non-empty list of conditions")
            for i, alternative in enumerate(value):
                check_when(alternative, kinds, where=f"{where}.any[{i}]")
            continue
        kind = kinds.get(fact)
        if kind is None:
            raise ValueError(f"{where}: unknown fact {fact!r}; known: {', '.join(sorted(kinds))}")
        _check_condition(fact, kind, value, where=f"{where}.{fact}")


def _check_condition(fact: str, kind: FactKind, value: Any, *, where: str) -> None:
    if kind == "count":
        if not isinstance(value, dict) or not value or set(value) - {"min", "max"}:
            raise ValueError(f"{where}: {fact} is a count: use {{min, max}}")
        if any(not isinstance(v, int) or isinstance(v, bool) for v in value.values()):
            raise ValueError(f"{where}: min and max are whole numbers")
    elif value in _PRESENCE:
        return
    elif kind == "flag":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: {fact} is a flag: use true, false, known or unknown")
    elif kind == "word":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}: {fact}: use a list of values, known or unknown")
    else:
        raise ValueError(f"{where}: {fact} is free text: use known or unknown")


def compile_when(when: Mapping[str, Any]) -> Condition:
    parts: list[Condition] = []
    for fact, value in when.items():
        if fact == ANY:
            options = [compile_when(alternative) for alternative in value]
            parts.append(options[0] if len(options) == 1 else {"$or": options})
        elif value == "known":
            parts.append(present(fact))
        elif value == "unknown":
            parts.append(absent(fact))
        elif isinstance(value, bool):
            parts.append(equals(fact, value))
        elif isinstance(value, dict):
            if "min" in value:
                parts.append(at_least(fact, value["min"]))
            if "max" in value:
                parts.append(at_most(fact, value["max"]))
        else:
            parts.append(any_of(fact, value))
    return all_of(parts)


def facts_read(when: Mapping[str, Any]) -> set[str]:
    return {fact for fact, _ in _walk(when)}


def _walk(when: Mapping[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for fact, value in when.items():
        if fact == ANY:
            for alternative in value:
                found.extend(_walk(alternative))
        else:
            found.append((fact, value))
    return found


class Checks:
    """Named conditions; `passed(facts)` answers the names whose condition holds."""

    def __init__(
        self,
        engine: RuleEngine,
        label: str,
        named: Sequence[tuple[str, Mapping[str, Any]]],
        kinds: Mapping[str, FactKind],
        *,
        memo_size: int = 4096,
    ) -> None:
        self._rules = engine.all_matches(label, [(n, compile_when(w)) for n, w in named])
        read = [pair for _, when in named for pair in _walk(when)]
        self._kinds = {fact: kinds[fact] for fact, _ in read}
        # Above the largest threshold a rule names, every count looks the same to the rules.
        self._caps: dict[str, int] = {}
        for fact, value in read:
            if isinstance(value, dict):
                self._caps[fact] = max(self._caps.get(fact, 0), *value.values()) + 1
        self._values_read = {fact for fact, value in read if isinstance(value, list)}
        self._evaluate = lru_cache(maxsize=memo_size)(self._evaluate_case)

    def passed(self, facts: Mapping[str, Any]) -> frozenset[str]:
        return self._evaluate(tuple(sorted(self._case(facts).items())))

    def _case(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        case: dict[str, Any] = {}
        for fact, kind in self._kinds.items():
            value = facts.get(fact)
            if kind == "count":
                case[fact] = min(int(value or 0), self._caps.get(fact, 1))
            elif kind == "flag":
                case[fact] = None if value is None else bool(value)
            elif kind == "word" and fact in self._values_read:
                case[fact] = None if value is None else str(value)
            else:  # only known / unknown matters
                case[fact] = 1 if value not in (None, "", [], {}) else None
        return case

    def _evaluate_case(self, case: tuple[tuple[str, Any], ...]) -> frozenset[str]:
        return frozenset(self._rules.evaluate(dict(case)))
