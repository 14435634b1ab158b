"""What intake calls: registry facts within a time budget, late facts through a callback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import structlog
from prometheus_client import Counter

from lead_router.enrichment.breaker import CircuitOpen
from lead_router.enrichment.facts import CompanyFacts, EnrichmentError, EnrichmentProvider

log = structlog.get_logger(__name__)

LOOKUPS = Counter(
    "salesrail_enrichment_lookups_total",
    "Company-registry look-ups by how they ended (late_* = after the intake budget)",
    ["provider", "outcome"],
)

EnrichmentStatus = Literal["complete", "not_found", "pending", "failed"]
LateFactsCallback = Callable[[str, CompanyFacts], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EnrichmentOutcome:
    """`facts` only with "complete"; `error` says why a "failed" lookup failed."""

    status: EnrichmentStatus
    facts: CompanyFacts | None = None
    error: str | None = None


@dataclass(slots=True)
class _Lookup:
    lead_id: str
    # Set by `enrich` when the budget ran out: the lookup then reports through the callback.
    late: bool = False


class Enricher:
    """Runs provider lookups so that intake never waits past its budget and never fails."""

    def __init__(
        self,
        provider: EnrichmentProvider,
        *,
        on_late_facts: LateFactsCallback | None = None,
        budget_s: float = 3.0,
    ) -> None:
        self.provider = provider
        self.provider_name: str = getattr(provider, "name", type(provider).__name__)
        self.budget_s = budget_s
        self._on_late_facts = on_late_facts
        # Strong references: the event loop keeps only weak ones to running tasks.
        self._tasks: set[asyncio.Task[EnrichmentOutcome]] = set()
        self._closed = False

    @property
    def answers_immediately(self) -> bool:
        """True when no look-up ever waits (the offline registry): asking again is free."""
        return bool(getattr(self.provider, "answers_immediately", False))

    async def enrich(
        self,
        *,
        lead_id: str,
        company_name: str,
        credit_code: str | None = None,
        budget_s: float | None = None,
    ) -> EnrichmentOutcome:
        """The outcome within `budget_s` (default: the Enricher's); "pending" keeps looking."""
        if self._closed:
            return EnrichmentOutcome("failed", error="enricher is closed")
        lookup = _Lookup(lead_id)
        if self.answers_immediately:
            # No timer and no task: the offline provider never waits (intake's hot path).
            return await self._run(lookup, company_name, credit_code)
        budget = self.budget_s if budget_s is None else budget_s
        task = asyncio.create_task(
            self._run(lookup, company_name, credit_code), name=f"enrich:{lead_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait({task}, timeout=budget)
        except asyncio.CancelledError:
            # The caller gave up (request cancelled): nobody is left to use late facts.
            task.cancel()
            raise
        if not task.done():
            # No await between the check and the flag: the task cannot finish in between.
            lookup.late = True
            log.info("enrichment.pending", lead_id=lead_id, budget_s=budget)
            return EnrichmentOutcome("pending")
        if task.cancelled():
            return EnrichmentOutcome("failed", error="lookup cancelled")
        return task.result()

    async def wait_for_late_lookups(self, timeout_s: float | None = None) -> bool:
        """Wait until no lookup runs (callbacks included); False if `timeout_s` ran out first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._tasks:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel running lookups, wait for them, and close the provider if it can be closed."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if (aclose := getattr(self.provider, "aclose", None)) is not None:
            await aclose()

    async def _run(
        self, lookup: _Lookup, company_name: str, credit_code: str | None
    ) -> EnrichmentOutcome:
        """Never raises (except on cancellation): every failure becomes a "failed" outcome."""
        try:
            facts = await self.provider.lookup(company_name=company_name, credit_code=credit_code)
        except asyncio.CancelledError:
            self._count("cancelled", lookup)
            raise
        except CircuitOpen as exc:
            self._count("circuit_open", lookup)
            outcome = EnrichmentOutcome("failed", error=str(exc))
        except EnrichmentError as exc:
            self._count("failed", lookup)
            log.warning("enrichment.failed", lead_id=lookup.lead_id, error=str(exc))
            outcome = EnrichmentOutcome("failed", error=str(exc))
        except Exception as exc:
            self._count("failed", lookup)
            log.exception("enrichment.crashed", lead_id=lookup.lead_id, provider=self.provider_name)
            outcome = EnrichmentOutcome("failed", error=f"{type(exc).__name__}: {exc}")
        else:
            self._count("found" if facts is not None else "not_found", lookup)
            outcome = EnrichmentOutcome(
                "complete" if facts is not None else "not_found", facts=facts
            )
        if lookup.late:
            await self._deliver_late(lookup, outcome)
        return outcome

    async def _deliver_late(self, lookup: _Lookup, outcome: EnrichmentOutcome) -> None:
        log.info("enrichment.late_result", lead_id=lookup.lead_id, status=outcome.status)
        if outcome.facts is None or self._on_late_facts is None:
            return
        try:
            await self._on_late_facts(lookup.lead_id, outcome.facts)
        except Exception:
            # Intake's re-scoring failed; the lead keeps its first score, the error is visible.
            log.exception("enrichment.late_callback_failed", lead_id=lookup.lead_id)

    def _count(self, outcome: str, lookup: _Lookup) -> None:
        label = f"late_{outcome}" if lookup.late and outcome != "cancelled" else outcome
        LOOKUPS.labels(provider=self.provider_name, outcome=label).inc()
