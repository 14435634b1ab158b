"""Company names for registry look-ups: the shared normaliser, and picking among namesakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from salesrail.text.company_names import company_region, normalize_company_name

__all__ = ["company_region", "normalize_company_name", "pick_namesake", "spelling_key"]

T = TypeVar("T")


def spelling_key(name: str) -> str:
    """A full name compared as written, ignoring spaces and full- vs half-width brackets."""
    return "".join(name.split()).replace("（", "(").replace("）", ")")


def pick_namesake(
    candidates: Sequence[T], company_name: str, name_of: Callable[[T], str]
) -> T | None:
    """The one candidate meant by `company_name` among those with its normalised name, or None.

    Same trade name in two cities (杭州华通机械 / 宁波华通机械): the place the lead's name gives
    decides, else the exact full name; when neither does, no facts beat the wrong company's.
    """
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if (region := company_region(company_name)) is not None:
        local = [c for c in candidates if company_region(name_of(c)) == region]
        if len(local) == 1:
            return local[0]
    spelled = spelling_key(company_name)
    exact = [c for c in candidates if spelling_key(name_of(c)) == spelled]
    return exact[0] if len(exact) == 1 else None
