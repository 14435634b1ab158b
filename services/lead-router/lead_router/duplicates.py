"""Finding an earlier lead of the same customer: the same phone, else a similar company name."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, case, func, select, text, union
from sqlalchemy.ext.asyncio import AsyncSession

from lead_router.models import Lead
from salesrail.db import driver
from salesrail.db.bulk import is_postgresql
from salesrail.text.company_names import company_region as region_of
from salesrail.text.company_names import key_similarity

__all__ = [
    "CANDIDATES_SQL",
    "CANDIDATE_LIMIT",
    "Candidate",
    "CandidatePool",
    "DuplicateMatch",
    "Probe",
    "best_match",
    "candidate_from_row",
    "candidate_parameters",
    "find_duplicate",
    "stored_candidates",
]

_LEADS: Any = Lead.__table__

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
    company_block: str = ""


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


@dataclass(frozen=True)
class Probe:
    """A new lead, as much of it as looking for its earlier self needs."""

    phone: str | None
    company_key: str
    company_block: str
    since: datetime  # earliest received_at that still counts (the duplicate window)
    company_region: str | None = None
    exclude_id: str | None = None

    def may_match(self, candidate: Candidate) -> bool:
        if candidate.received_at < self.since or candidate.lead_id == self.exclude_id:
            return False
        if self.phone and candidate.phone == self.phone:
            return True
        return bool(self.company_key and candidate.company_block == self.company_block)


async def stored_candidates(session: AsyncSession, probes: Sequence[Probe]) -> list[Candidate]:
    """Earlier leads that any of `probes` could duplicate, in one query for a whole batch.

    Same phone, or the same company block (at most CANDIDATE_LIMIT per block, exact names and
    the most recent first). Leads marked `duplicate` are left out: a duplicate links to the
    original. Each probe then keeps what concerns it (`Probe.may_match`).
    """
    params = candidate_parameters(probes)
    if not params["phones"] and not params["blocks"]:
        return []
    if is_postgresql(session):
        # A fixed text straight to asyncpg: nothing to build, cache or wrap for each batch.
        rows = await driver.fetch(session, _CANDIDATES_POSTGRESQL, params)
    else:
        built = _candidates_query(
            params["since"], params["phones"], params["blocks"], params["keys"]
        )
        rows = [row._mapping for row in (await session.execute(built)).all()]
    return [candidate_from_row(row) for row in rows]


def candidate_parameters(probes: Sequence[Probe]) -> dict[str, Any]:
    """The parameters of `CANDIDATES_SQL` for `probes`."""
    return {
        "since": min((p.since for p in probes), default=datetime.max.replace(tzinfo=UTC)),
        "phones": sorted({p.phone for p in probes if p.phone}),
        "blocks": sorted({p.company_block for p in probes if p.company_block and p.company_key}),
        "keys": sorted({p.company_key for p in probes if p.company_key}),
    }


def candidate_from_row(row: Any) -> Candidate:
    """A row of `CANDIDATES_SQL` (any mapping with its columns)."""
    return Candidate(
        lead_id=row["id"],
        owner_id=row["owner_id"],
        phone=row["phone"],
        company_key=row["company_key"],
        received_at=row["received_at"],
        company_region=_region(row["company_region"], row["company_name"]),
        company_block=row["company_block"],
    )


def _region(stored: str | None, company_name: str) -> str | None:
    """A candidate's place: as stored ("" for none), or found in its name (leads stored before
    the place was kept)."""
    if stored is None:
        return region_of(company_name)
    return stored or None


_CANDIDATE_COLUMNS = (
    "id, owner_id, phone, company_key, company_block, company_region, company_name, received_at"
)
# PostgreSQL. Public so that a batch can read its candidates in a statement of its own making
# (lead_router.intake reads them with the reps the batch's decisions lock).
CANDIDATES_SQL = (
    f"SELECT {_CANDIDATE_COLUMNS} FROM leads "
    "WHERE received_at >= :since AND status != 'duplicate' "
    "AND phone = ANY(CAST(:phones AS text[])) "
    f"UNION SELECT {_CANDIDATE_COLUMNS} FROM ("
    f"SELECT {_CANDIDATE_COLUMNS}, row_number() OVER (PARTITION BY company_block ORDER BY "
    "CASE WHEN company_key = ANY(CAST(:keys AS text[])) THEN 0 ELSE 1 END, received_at DESC"
    ") AS rank FROM leads "
    "WHERE received_at >= :since AND status != 'duplicate' "
    "AND company_block = ANY(CAST(:blocks AS text[]))"
    f") AS ranked WHERE rank <= {CANDIDATE_LIMIT}"
)
_CANDIDATES_POSTGRESQL = text(CANDIDATES_SQL)


def _candidates_query(
    since: datetime, phones: list[str], blocks: list[str], keys: list[str]
) -> Any:
    """The same query as _CANDIDATES_POSTGRESQL, built for the other databases (SQLite)."""
    leads = _LEADS.c
    live = and_(leads.received_at >= since, leads.status != "duplicate")
    columns = [
        leads.id,
        leads.owner_id,
        leads.phone,
        leads.company_key,
        leads.company_block,
        leads.company_region,
        leads.company_name,
        leads.received_at,
    ]
    parts = []
    if phones:
        parts.append(select(*columns).where(live, leads.phone.in_(phones)))
    if blocks:
        rank = func.row_number().over(
            partition_by=leads.company_block,
            order_by=(case((leads.company_key.in_(keys), 0), else_=1), leads.received_at.desc()),
        )
        ranked = select(*columns, rank.label("rank")).where(live, leads.company_block.in_(blocks))
        ranked_rows = ranked.subquery()
        parts.append(
            select(*(ranked_rows.c[c.key] for c in columns)).where(
                ranked_rows.c.rank <= CANDIDATE_LIMIT
            )
        )
    return union(*parts) if len(parts) > 1 else parts[0]


class CandidatePool:
    """Earlier leads indexed by phone and company block, so each probe looks at its own."""

    def __init__(self, candidates: Iterable[Candidate] = ()) -> None:
        self._by_phone: dict[str, list[Candidate]] = defaultdict(list)
        self._by_block: dict[str, list[Candidate]] = defaultdict(list)
        for candidate in candidates:
            self.add(candidate)

    def add(self, candidate: Candidate) -> None:
        self._by_phone[candidate.phone].append(candidate)
        if candidate.company_block:
            self._by_block[candidate.company_block].append(candidate)

    def match(self, probe: Probe, *, threshold: float) -> DuplicateMatch | None:
        near = [*self._by_phone.get(probe.phone or "", ())]
        if probe.company_key:
            near += self._by_block.get(probe.company_block, ())
        relevant = {c.lead_id: c for c in near if probe.may_match(c)}
        return best_match(
            relevant.values(),
            phone=probe.phone,
            company_key=probe.company_key,
            threshold=threshold,
            company_region=probe.company_region,
        )


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
) -> DuplicateMatch | None:
    """The earlier lead (received at or after `since`) that a new lead duplicates, if any."""
    probe = Probe(phone, company_key, company_block, since, company_region, exclude_id)
    pool = CandidatePool(await stored_candidates(session, [probe]))
    return pool.match(probe, threshold=threshold)
