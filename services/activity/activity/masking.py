"""Personal data in a lead's timeline, masked for those who may not see it in full. Pure.

Phone numbers keep their first 3 and last 4 digits (the project's one masking rule); a
person's name keeps its first character (王总 -> 王*, Li Wei -> L*****).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from salesrail.logging import mask_phone_numbers


def mask_name(name: str) -> str:
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


class Masker:
    """Masks the given people's names and every phone number in text."""

    def __init__(self, names: Iterable[str]) -> None:
        # Longest first: 王建国 is masked whole before 王 alone could match inside it.
        self._names = sorted(
            {n.strip() for n in names if len(n.strip()) >= 2}, key=len, reverse=True
        )

    def text(self, value: str | None) -> str | None:
        if not value:
            return value
        for name in self._names:
            value = value.replace(name, mask_name(name))
        return mask_phone_numbers(value)

    def any(self, value: Any) -> Any:
        """Every string inside a JSON-like value."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.any(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.any(v) for v in value]
        return value


def masked_activity(item: dict[str, Any], masker: Masker) -> dict[str, Any]:
    """A timeline activity as seen by someone who is not its owner's side."""
    return {
        **item,
        "summary": masker.text(item["summary"]),
        "transcript": masker.text(item["transcript"]),
        "details": masker.any(item["details"]),
        "facts": masker.any(item["facts"]),
        "key_people": [mask_name(n) for n in item["key_people"]],
        "flags": masker.any(item["flags"]),
    }
