"""Who may take a lead, in which order: strategies, availability, caps. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lead_router.routing_rules import Assign, Strategy


@dataclass(frozen=True)
class RepState:
    id: str
    status: str  # active | away | inactive
    open_leads: int
    cap: int | None
    team_id: str | None = None

    def unavailable_because(self) -> str | None:
        if self.status != "active":
            return self.status
        if self.cap is not None and self.open_leads >= self.cap:
            return f"at cap {self.cap}"
        return None


@dataclass(frozen=True)
class Candidates:
    """Reps to try in order (the first whose cap still holds takes the lead), and why others
    were passed over."""

    order: tuple[str, ...]
    skipped: tuple[str, ...]
    strategy: Strategy | None


def candidates(
    assign: Assign,
    pool: Sequence[RepState],
    *,
    cursor: int = 0,
    exclude: frozenset[str] = frozenset(),
) -> Candidates:
    """`pool`: the named rep, the listed reps (in the rule's order) or the team's members."""
    by_id = {rep.id: rep for rep in pool}
    wanted = [assign.rep] if assign.rep else list(assign.reps or sorted(by_id))
    skipped = []
    available = []
    for rep_id in wanted:
        rep = by_id.get(rep_id)
        reason = (
            "unknown rep"
            if rep is None
            else ("previous owner" if rep_id in exclude else rep.unavailable_because())
        )
        if reason:
            skipped.append(f"{rep_id} ({reason})")
        else:
            available.append(rep)
    if assign.strategy is Strategy.ROUND_ROBIN and wanted:
        # Rotate over the full list so positions stay fair when someone is away for a while.
        start = cursor % len(wanted)
        rotation = {rep_id: (i - start) % len(wanted) for i, rep_id in enumerate(wanted)}
        available.sort(key=lambda rep: rotation[rep.id])
    elif assign.strategy is Strategy.LEAST_LOADED:
        position = {rep_id: i for i, rep_id in enumerate(wanted)}
        available.sort(key=lambda rep: (rep.open_leads, position[rep.id]))
    return Candidates(tuple(r.id for r in available), tuple(skipped), assign.strategy)


def describe_pick(picked: str | None, found: Candidates) -> str:
    """'round-robin picked rep-li; skipped rep-zhang (away)'."""
    how = {Strategy.ROUND_ROBIN: "round-robin", Strategy.LEAST_LOADED: "least-loaded"}.get(
        found.strategy,
        "rule",  # type: ignore[arg-type]
    )
    text = f"{how} picked {picked}" if picked else "no rep available: to the public pool"
    if found.skipped:
        text += f"; skipped {', '.join(found.skipped)}"
    return text
