"""Use cases of sla-monitor: each runs in one unit of work (state + outgoing events)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import structlog
from sqlalchemy import select

from salesrail.db.upsert import insert_ignore
from salesrail.unit_of_work import UnitOfWork
from sla_monitor import rules
from sla_monitor.models import SlaClock

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]

log = structlog.get_logger(__name__)

_CLOCK_KEY = ["entity_type", "entity_id", "policy", "cycle"]


async def start_clock(
    *,
    uow: UnitOfWork,
    policy: rules.Policy,
    entity_id: str,
    started_at: datetime,
    cycle: int = 1,
) -> bool:
    """Start a policy's clock on an entity once; True if this call started it.

    The same start arriving again (a redelivery, or the same lead announced twice under
    another event id) finds the unique key taken and changes nothing. ON CONFLICT rather
    than look-then-insert, so two replicas racing on the same lead cannot fail either one.
    """
    started = await insert_ignore(
        uow.session,
        SlaClock,
        dict(
            policy=policy.name,
            entity_type=policy.entity_type,
            entity_id=entity_id,
            cycle=cycle,
            started_at=started_at,
            due_at=rules.due_at(started_at, policy.duration),
            state=rules.ClockState.RUNNING.value,
            created_at=uow.now(),
        ),
        conflict=_CLOCK_KEY,
    )
    if started:
        log.info("clock.started", policy=policy.name, entity_id=entity_id, cycle=cycle)
    return started


async def list_clocks(
    *, unit_of_work: UnitOfWorkFactory, entity_type: str, entity_id: str
) -> list[SlaClock]:
    """Every clock of one entity, oldest first."""
    async with unit_of_work() as uow:
        rows = await uow.session.scalars(
            select(SlaClock)
            .where(SlaClock.entity_type == entity_type, SlaClock.entity_id == entity_id)
            .order_by(SlaClock.started_at, SlaClock.policy, SlaClock.cycle)
        )
        return list(rows)
