"""A cheap necessary condition for a regex: the characters a match can begin with. Pure.

`first_chars(pattern)` answers a one-character class (compiled ignoring case, so it matches at
least every character the pattern's first character can be, whatever the pattern's flags), or
None when it cannot tell (a match may be empty, or begin with any character: `.`, `\\w`, `[^x]`).
A text holding no character of the class holds no match of the pattern: one scan in C of
a one-character class instead of the pattern tried at every position (which a lookbehind or
an alternation of cased words at a pattern's start makes slow), for the common text that
mentions none of what the pattern looks for.
"""

from __future__ import annotations

import re
from typing import Any

try:  # the regex parser of the standard library (private, stable since 3.11): best effort
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another Python: no screens, same answers
    _c = _parser = None

_ZERO_WIDTH = ("AT", "ASSERT", "ASSERT_NOT")
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def first_chars(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    if _parser is None or not isinstance(pattern.pattern, str):
        return None
    try:
        parts, may_be_empty = _firsts(_parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # noqa: BLE001 - an unexpected parse: no screen, same answers
        return None
    if parts is None or may_be_empty or not parts:
        return None
    try:
        return re.compile(f"[{''.join(parts)}]", re.IGNORECASE)
    except re.error:  # pragma: no cover - every part is escaped
        return None


def _firsts(items: Any) -> tuple[list[str] | None, bool]:
    """(class parts the sequence's first consumed character may be, whether it may consume
    nothing); (None, _) when any character may begin it."""
    parts: list[str] = []
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            parts.append(re.escape(chr(av)))
            return parts, False
        if name == "IN":
            members = _members(av)
            if members is None:
                return None, False
            parts.extend(members)
            return parts, False
        if name in _ZERO_WIDTH:
            continue
        if name == "SUBPATTERN":
            sub, may_be_empty = _firsts(av[-1])
        elif name == "ATOMIC_GROUP":
            sub, may_be_empty = _firsts(av)
        elif name == "BRANCH":
            sub, may_be_empty = [], False
            for alternative in av[1]:
                found, empty = _firsts(alternative)
                if found is None:
                    return None, False
                sub.extend(found)
                may_be_empty = may_be_empty or empty
        elif name in _REPEATS:
            low, _high, repeated = av
            sub, may_be_empty = _firsts(repeated)
            may_be_empty = may_be_empty or low == 0
        else:  # ANY, NOT_LITERAL, CATEGORY, GROUPREF...: could begin with anything
            return None, False
        if sub is None:
            return None, False
        parts.extend(sub)
        if not may_be_empty:
            return parts, False
    return parts, True


def _members(av: Any) -> list[str] | None:
    members = []
    for op, value in av:
        name = str(op)
        if name == "LITERAL":
            members.append(re.escape(chr(value)))
        elif name == "RANGE":
            members.append(f"{re.escape(chr(value[0]))}-{re.escape(chr(value[1]))}")
        else:  # NEGATE, CATEGORY (\d, \w...): too wide to be worth a screen
            return None
    return members
