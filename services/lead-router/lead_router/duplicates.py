"""Finding an earlier lead of the same customer: the same phone, else a similar company name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lead_router.models import Lead
from salesrail.text.company_names import company_region as region_of
from salesrail.text.company_names import key_similarity

__all__ = ["CANDIDATE_LIMIT", "Candidate", "DuplicateMatch", "best_match", "find_duplicate"]

# Candidates compared per lookup. A block is an index lookup, but a common first pair of
# characters can hold thousands of leads over a long window; comparing them all would make
# intake slower as the table grows. Phone and exact-name matches are fetched first, so the
# limit only ever drops the oldest near-misses (200 rapidfuzz ratios take well under 1 ms).
CANDIDATE_LIMIT = 200


@dataclass(frozen=True)
class DuplicateMatch:
    """The earlier lead a new one duplicates, and why."""

    lead_id: str
    owner_id: str | None
    matched_on: Literal["phone", "company_name"]
    similarity: float | None  # the company-name score, 0..100; None for a phone match


@dataclass(frozen=True)
class Candidate:
    """An earlier lead, as much of it as matching needs."""

    lead_id: str
    owner_id: str | None
    phone: str
    company_key: str
    received_at: datetime
    company_region: str | None = None  # the place its company name names (杭州市), if any


def best_match(
    candidates: Iterable[Candidate],
    *,
    phone: str | None,
    company_key: str,
    threshold: float,
    company_region: str | None = None,
) -> DuplicateMatch | None:
    """The phone match, else the most similar company name >= threshold; the earliest on ties.

    `company_region` is the place the new lead's company name names: a candidate in another
    city (杭州某某紧固件 vs 宁波某某紧固件) is another customer, whatever the names' score.
    """
    ordered = sorted(candidates, key=lambda c: (c.received_at, c.lead_id))
    if phone:
        for candidate in ordered:
            if candidate.phone == phone:
                return DuplicateMatch(candidate.lead_id, candidate.owner_id, "phone", None)
    best: DuplicateMatch | None = None
    for candidate in ordered if company_key else ():
        score = key_similarity(
            company_key,
            candidate.company_key,
            region_a=company_region,
            region_b=candidate.company_region,
        )
        # Strictly better only: of equal scores the earliest lead, met first, stays.
        if score >= threshold and (best is None or score > (best.similarity or 0.0)):
            best = DuplicateMatch(candidate.lead_id, candidate.owner_id, "company_name", score)
    return best


async def find_duplicate(
    session: AsyncSession,
    *,
    phone: str | None,
    company_key: str,
    company_block: str,
    since: datetime,
    threshold: float,
    exclude_id: str | None = None,
    company_region: str | None = None,
    extra: Iterable[Candidate] = (),
) -> DuplicateMatch | None:
    """The earlier lead (received at or after `since`) that a new lead duplicates, if any.

    Leads already marked `duplicate` are never returned: a duplicate links to the original.
    `extra`: earlier leads not in the table yet (the same intake batch).
    """
    matches = []
    if phone:
        matches.append(Lead.phone == phone)
    if company_block and company_key:
        matches.append(Lead.company_block == company_block)
    unsaved = [c for c in extra if c.received_at >= since]
    if not matches:
        return None
    query = (
        select(
            Lead.id,
            Lead.owner_id,
            Lead.phone,
            Lead.company_key,
            Lead.company_name,
            Lead.received_at,
        )
        .where(Lead.received_at >= since, Lead.status != "duplicate", or_(*matches))
        .order_by(
            case((Lead.phone == (phone or ""), 0), else_=1),
            case((Lead.company_key == company_key, 0), else_=1),
            Lead.received_at.desc(),
        )
        .limit(CANDIDATE_LIMIT)
    )
    if exclude_id is not None:
        query = query.where(Lead.id != exclude_id)
    rows = (await session.execute(query)).all()
    candidates = [
        Candidate(
            lead_id=row.id,
            owner_id=row.owner_id,
            phone=row.phone,
            company_key=row.company_key,
            received_at=row.received_at,
            company_region=region_of(row.company_name),
        )
        for row in rows
    ] + unsaved
    return best_match(
        candidates,
        phone=phone,
        company_key=company_key,
        threshold=threshold,
        company_region=company_region,
    )
