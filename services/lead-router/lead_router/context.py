"""lead-router's own context, built once the database and bus are up (see ServiceRuntime)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from lead_router.config import Settings
from lead_router.enrichment import Enricher, build_enricher
from lead_router.enrichment.facts import CompanyFacts
from lead_router.intake import IntakeBatcher
from lead_router.rulebook import Rulebook
from salesrail.clock import Clock
from salesrail.rules_engine import rule_engine
from salesrail.runtime import ServiceRuntime
from salesrail.text import regions

log = structlog.get_logger(__name__)


@dataclass
class LeadRouterContext:
    settings: Settings
    rulebook: Rulebook
    enricher: Enricher
    clock: Clock
    intake: IntakeBatcher = field(init=False)


@contextlib.asynccontextmanager
async def lead_router_context(runtime: ServiceRuntime) -> AsyncIterator[LeadRouterContext]:
    from lead_router import service  # the use cases need the context they are part of

    settings: Settings = runtime.settings  # type: ignore[assignment]
    # Build the place-name index now, not in the first request (about half a second).
    await asyncio.to_thread(regions.warm_up)
    rulebook = Rulebook(rule_engine())
    await rulebook.load(runtime.unit_of_work)

    async def on_late_facts(lead_id: str, facts: CompanyFacts) -> None:
        await service.apply_late_facts(
            unit_of_work=runtime.unit_of_work, context=context, lead_id=lead_id, facts=facts
        )

    enricher = build_enricher(settings, on_late_facts=on_late_facts, clock=runtime.clock)
    context = LeadRouterContext(
        settings=settings, rulebook=rulebook, enricher=enricher, clock=runtime.clock
    )
    context.intake = IntakeBatcher(unit_of_work=runtime.unit_of_work, context=context)
    context.intake.start()
    refresher = asyncio.create_task(_refresh_rules(runtime, rulebook, settings.rules_refresh_s))
    try:
        yield context
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
        await context.intake.stop()
        await enricher.close()


async def _refresh_rules(runtime: ServiceRuntime, rulebook: Rulebook, every_s: float) -> Any:
    while True:
        await asyncio.sleep(every_s)
        try:
            await rulebook.refresh(runtime.unit_of_work)
        except Exception as exc:  # the database may be away for a moment
            log.warning("rules.refresh_failed", error=repr(exc))
