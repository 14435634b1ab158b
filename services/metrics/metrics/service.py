"""Use cases of metrics: each runs in one unit of work."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date

from sqlalchemy import insert, select, update

from metrics import rules
from metrics.models import LeadIntakeDaily
from metrics.schemas import DayCount, LeadIntakeOut
from salesrail.events.catalog import LeadReceived
from salesrail.http.problems import invalid_field
from salesrail.unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


async def count_lead(*, uow: UnitOfWork, received: LeadReceived) -> None:
    """Add one lead to its business day and source."""
    day = rules.business_day(received.received_at)
    # Increment in the database, not in Python: replicas counting at once lose no lead.
    bumped = await uow.session.execute(
        update(LeadIntakeDaily)
        .where(LeadIntakeDaily.day == day, LeadIntakeDaily.source == received.source)
        .values(count=LeadIntakeDaily.count + 1)
        .execution_options(synchronize_session=False)
    )
    if bumped.rowcount == 0:
        # A replica inserting the same first row makes this fail; the retry then increments.
        await uow.session.execute(
            insert(LeadIntakeDaily).values(day=day, source=received.source, count=1)
        )


async def lead_intake(*, unit_of_work: UnitOfWorkFactory, start: date, end: date) -> LeadIntakeOut:
    """Leads received per day and source from `start` to `end`, both included."""
    try:
        rules.check_period(start, end)
    except rules.InvalidPeriod as exc:
        raise invalid_field(exc.field, str(exc), location="query", code=exc.code) from exc
    async with unit_of_work() as uow:
        rows = (
            await uow.session.scalars(
                select(LeadIntakeDaily)
                .where(LeadIntakeDaily.day >= start, LeadIntakeDaily.day <= end)
                .order_by(LeadIntakeDaily.day, LeadIntakeDaily.source)
            )
        ).all()
    days = [DayCount(day=row.day, source=row.source, count=row.count) for row in rows]
    return LeadIntakeOut(from_=start, to=end, total=sum(d.count for d in days), days=days)
