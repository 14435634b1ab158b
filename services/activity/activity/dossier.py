"""A lead's dossier: what its accepted activities have delivered so far. Pure.

Kept on the lead's row and folded forward by each activity, so a stage gate reads one row and
logging an activity writes one: no scan of the lead's history on either path.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Folded:
    dossier: dict[str, Any]
    first_contact: bool  # the rep's first activity on this lead
    key_people_covered: int


def person_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def fold(
    dossier: Mapping[str, Any],
    *,
    activity_type: str,
    rep_id: str,
    delivers: Iterable[str],
    facts: Mapping[str, Any],
    key_people: Iterable[str],
    overridden: bool = False,
) -> Folded:
    """The dossier after one more accepted activity (the given one is left unchanged)."""
    after = {key: _copied(value) for key, value in dossier.items()}
    after["activities"] = after.get("activities", 0) + 1
    if overridden:  # accepted by a supervisor against the rules (the lead's timeline shows it)
        after["overrides"] = after.get("overrides", 0) + 1
    counts = after.setdefault("counts", {})
    for name in [activity_type, *delivers]:
        counts[name] = counts.get(name, 0) + 1
    reps = after.setdefault("reps", [])
    first_contact = rep_id not in reps
    if first_contact:
        reps.append(rep_id)
    people = after.setdefault("key_people", [])
    known = {person_key(p) for p in people}
    for name in key_people:
        if name.strip() and person_key(name) not in known:
            known.add(person_key(name))
            people.append(" ".join(name.split()))
    # The newest mention of a fact wins: plans and budgets change over a deal.
    if facts.get("decision_maker"):
        after["decision_maker"] = facts["decision_maker"]
    if facts.get("budget_min") is not None or facts.get("budget_max") is not None:
        after["budget"] = {"min": facts.get("budget_min"), "max": facts.get("budget_max")}
    if facts.get("next_step"):
        after["next_step"] = facts["next_step"]
    return Folded(after, first_contact, len(people))


def _copied(value: Any) -> Any:
    """A deep copy of a JSON document (what a dossier is), without deepcopy's bookkeeping."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return copy.deepcopy(value)


def gate_facts(
    dossier: Mapping[str, Any], *, owner_id: str | None, reason: str | None = None
) -> dict[str, Any]:
    """The facts a stage gate reads (see activity.gates)."""
    return {
        **dossier.get("counts", {}),
        "activities": dossier.get("activities", 0),
        "key_people": len(dossier.get("key_people", [])),
        "decision_maker": dossier.get("decision_maker"),
        "budget": dossier.get("budget"),
        "next_step": dossier.get("next_step"),
        "owner": owner_id,
        "reason": reason.strip() if reason else None,
    }
