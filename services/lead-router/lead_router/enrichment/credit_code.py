"""Unified social credit codes (统一社会信用代码, GB 32100-2015): format and check character."""

from __future__ import annotations

import re

# The standard's 31 characters: digits and capitals without I, O, S, V, Z (easily misread).
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {char: value for value, char in enumerate(ALPHABET)}
# Weight of position i is 3**i mod 31 (the standard's table, positions 1-17).
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
# Registration authority + organisation type, 6-digit division code, 9-character organisation
# code, check character.
_SHAPE = re.compile(rf"[{ALPHABET}]{{2}}\d{{6}}[{ALPHABET}]{{10}}")


class InvalidCreditCode(ValueError):
    """A string that is not a well-formed unified social credit code."""


def check_character(first17: str) -> str:
    """The 18th character for the first 17 (GB 32100-2015, section 5)."""
    total = sum(_VALUE[char] * weight for char, weight in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalize_credit_code(raw: str) -> str:
    """Upper-cased, spaces removed, format and check character verified; raises otherwise."""
    code = "".join(raw.split()).upper()
    if len(code) != 18:
        raise InvalidCreditCode(f"credit code {raw!r} has {len(code)} characters, not 18")
    if not _SHAPE.fullmatch(code):
        raise InvalidCreditCode(
            f"credit code {raw!r} is malformed: positions 3-8 must be digits and no position may"
            " hold I, O, S, V or Z"
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        raise InvalidCreditCode(
            f"credit code {raw!r} fails the GB 32100-2015 check: last character should be"
            f" {expected!r}"
        )
    return code


def usable_credit_code(raw: str | None) -> str | None:
    """The normalised code, or None when absent or invalid (a caller then looks up by name)."""
    if not raw or not raw.strip():
        return None
    try:
        return normalize_credit_code(raw)
    except InvalidCreditCode:
        return None
