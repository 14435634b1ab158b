"""sla-monitor's own context: the policy versions and the scheduler, for the service's life."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from salesrail.rules_engine import rule_engine
from salesrail.runtime import ServiceRuntime
from sla_monitor.config import Settings
from sla_monitor.policybook import PolicyBook
from sla_monitor.scheduler import Scheduler

SCHEDULER_CHECK = "scheduler"


@dataclass(frozen=True)
class SlaContext:
    book: PolicyBook
    scheduler: Scheduler


@asynccontextmanager
async def lifespan(runtime: ServiceRuntime) -> AsyncIterator[SlaContext]:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    book = PolicyBook(rule_engine())
    await book.load(runtime.unit_of_work)
    scheduler = Scheduler(
        db=runtime.db,
        unit_of_work=runtime.unit_of_work,
        book=book,
        clock=runtime.clock,
        batch_size=settings.fire_batch_size,
        max_sleep_s=settings.scheduler_max_sleep_s,
        stall_s=settings.scheduler_stall_s,
    )
    scheduler.start()
    # /readyz answers 503 naming "scheduler" when it died or stalled.
    runtime.extra_checks[SCHEDULER_CHECK] = scheduler.healthy
    try:
        yield SlaContext(book=book, scheduler=scheduler)
    finally:
        runtime.extra_checks.pop(SCHEDULER_CHECK, None)
        await scheduler.stop()
