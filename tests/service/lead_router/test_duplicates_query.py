"""The duplicate query on a real database (both backends), schema from the real migrations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text

import lead_router
from lead_router.duplicates import DuplicateMatch, Probe, find_duplicate, stored_candidates
from lead_router.intake import _lock_customers
from lead_router.models import Lead
from salesrail.db import Database, migrate
from salesrail.db.migrate import PLUMBING_VERSIONS
from salesrail.text.company_names import company_block, company_region, normalize_company_name
from tests.support.servers import PostgresDatabases

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
WINDOW = timedelta(days=30)
PHONE = "+8613857112345"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        await migrate(
            database, [PLUMBING_VERSIONS, Path(lead_router.__file__).parent / "migrations"]
        )
        yield database
    finally:
        await database.dispose()


def lead(
    company_name: str,
    *,
    phone: str = "+8613900000000",
    age: timedelta = timedelta(hours=1),
    status: str = "assigned",
    owner_id: str | None = "rep-zhang",
    duplicate_of: str | None = None,
    company_region: str | None = None,  # as intake keeps it; None: a lead stored before that
) -> Lead:
    key = normalize_company_name(company_name)
    received_at = NOW - age
    return Lead(
        id=str(uuid.uuid4()),
        source="website",
        external_id=None,
        idempotency_key=None,
        company_name=company_name,
        company_key=key,
        company_block=company_block(key),
        company_region=company_region,
        contact_name="王建国",
        phone=phone,
        email=None,
        city="杭州",
        city_name="杭州市",
        province="浙江省",
        category="紧固件",
        tags=[],
        status=status,
        owner_id=owner_id,
        duplicate_of=duplicate_of,
        score_reasons=[],
        enrichment={},
        enrichment_status="done",
        route="test",
        received_at=received_at,
        created_at=received_at,
        created_by="test",
    )


async def insert(db: Database, *leads: Lead) -> None:
    async with db.transaction() as session:
        session.add_all(leads)


async def find(
    db: Database,
    company_name: str,
    *,
    phone: str | None = None,
    exclude_id: str | None = None,
    threshold: float = 90.0,
) -> DuplicateMatch | None:
    key = normalize_company_name(company_name)
    async with db.transaction() as session:
        return await find_duplicate(
            session,
            phone=phone,
            company_key=key,
            company_block=company_block(key),
            since=NOW - WINDOW,
            threshold=threshold,
            exclude_id=exclude_id,
            company_region=company_region(company_name),
        )


async def test_the_same_phone_within_the_window_is_a_duplicate(db: Database) -> None:
    original = lead("杭州恒通紧固件有限公司", phone=PHONE, age=timedelta(days=29))
    await insert(db, original)
    found = await find(db, "完全不同的公司", phone=PHONE)
    assert found == DuplicateMatch(original.id, "rep-zhang", "phone", None)


async def test_nothing_outside_the_window_matches(db: Database) -> None:
    await insert(db, lead("杭州恒通紧固件有限公司", phone=PHONE, age=WINDOW + timedelta(seconds=1)))
    assert await find(db, "杭州恒通紧固件有限公司", phone=PHONE) is None


async def test_a_similar_company_name_in_the_same_block_matches(db: Database) -> None:
    original = lead("杭州恒通紧固件公司", owner_id="rep-li")
    await insert(db, original, lead("杭州恒通五金有限公司"), lead("宁波恒通紧固件有限公司"))
    found = await find(db, "恒通紧固件(杭州)有限公司", phone="+8613700000000")
    assert found == DuplicateMatch(original.id, "rep-li", "company_name", 100.0)
    assert await find(db, "恒通机械有限公司", phone="+8613700000000") is None


async def test_a_lead_is_compared_with_the_place_stored_with_an_earlier_one(db: Database) -> None:
    # Its name names no place, but intake kept 宁波市 for it: a 杭州 company is another customer.
    await insert(db, lead("恒通紧固件有限公司", company_region="宁波市"))
    assert await find(db, "杭州恒通紧固件有限公司") is None
    assert await find(db, "宁波恒通紧固件有限公司") is not None
    # Kept as naming no place (""): nothing conflicts.
    await insert(db, lead("华达阀门有限公司", company_region=""))
    assert await find(db, "杭州华达阀门有限公司") is not None
    # Stored before places were kept (NULL): the place is found in its name, as before.
    await insert(db, lead("宁波精工机械有限公司"))
    assert await find(db, "杭州精工机械有限公司") is None
    assert await find(db, "宁波精工机械有限公司") is not None


async def test_a_duplicate_is_never_returned_only_its_original(db: Database) -> None:
    original = lead("杭州恒通紧固件有限公司", phone=PHONE, age=timedelta(days=2), owner_id="rep-li")
    copy = lead(
        "杭州恒通紧固件有限公司",
        phone=PHONE,
        age=timedelta(days=3),
        status="duplicate",
        owner_id=None,
        duplicate_of=original.id,
    )  # older, but a copy
    await insert(db, original, copy)
    assert (await find(db, "杭州恒通紧固件有限公司", phone=PHONE)) == DuplicateMatch(
        original.id, "rep-li", "phone", None
    )
    only_copy = lead("杭州华达阀门有限公司", status="duplicate", duplicate_of="gone")
    await insert(db, only_copy)
    assert await find(db, "杭州华达阀门有限公司") is None


async def test_exclude_id_leaves_out_the_lead_itself(db: Database) -> None:
    itself = lead("杭州恒通紧固件有限公司", phone=PHONE)
    await insert(db, itself)
    assert await find(db, "杭州恒通紧固件有限公司", phone=PHONE, exclude_id=itself.id) is None
    assert await find(db, "杭州恒通紧固件有限公司", phone=PHONE) is not None


async def test_phone_and_exact_name_matches_survive_a_crowded_block(db: Database) -> None:
    # More near-misses in the block than the query fetches, all newer than the original.
    crowd = [lead(f"恒通{i:03d}贸易有限公司", age=timedelta(minutes=i)) for i in range(230)]
    original = lead("恒通紧固件有限公司", age=timedelta(days=5))
    await insert(db, original, *crowd)
    found = await find(db, "恒通紧固件有限公司")
    assert found is not None and found.lead_id == original.id


async def test_the_batch_candidates_query_is_planned_for_its_values_on_every_batch(
    postgres_databases: PostgresDatabases,
) -> None:
    """PostgreSQL caches a generic plan of a prepared statement at its sixth run and keeps it
    until the next ANALYZE. Made while the table was small (a new database, a first import),
    it scanned every lead for each batch's candidates; the intake batch asks for plans made
    for the values at hand."""
    url = await postgres_databases.create("plans")
    database = Database(url, pool_size=1, max_overflow=0)  # one connection: one plan cache
    try:
        await migrate(
            database, [PLUMBING_VERSIONS, Path(lead_router.__file__).parent / "migrations"]
        )
        for n in range(8):  # the intake batch's first statements, batch after batch
            phone = f"+86139000000{n:02d}"
            key = normalize_company_name(f"杭州恒通{n}紧固件有限公司")
            async with database.transaction() as session:
                item = SimpleNamespace(
                    lead=SimpleNamespace(phone=phone, company_block=company_block(key))
                )
                await _lock_customers(SimpleNamespace(session=session), [item])  # type: ignore[arg-type]
                probe = Probe(phone, key, company_block(key), since=NOW - WINDOW)
                await stored_candidates(session, [probe])
        async with database.transaction() as session:
            plans = (
                await session.execute(
                    text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                        "WHERE statement LIKE '%PARTITION BY company_block%' "
                        "AND statement NOT LIKE '%pg_prepared_statements%'"
                    )
                )
            ).all()
    finally:
        await database.dispose()
    assert [tuple(row) for row in plans] == [(0, 8)]
