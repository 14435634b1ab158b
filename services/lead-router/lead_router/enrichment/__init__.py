"""Company-registry enrichment of leads: facts, providers (offline file, HTTP) and the Enricher.

Intake builds one Enricher at start-up with `build_enricher(settings, on_late_facts=...)`, calls
`await enricher.enrich(...)` per lead and `await enricher.close()` at shutdown.
"""

from __future__ import annotations

from lead_router.enrichment.breaker import BreakerState, CircuitBreaker, CircuitOpen
from lead_router.enrichment.credit_code import (
    InvalidCreditCode,
    normalize_credit_code,
    usable_credit_code,
)
from lead_router.enrichment.enricher import (
    LOOKUPS,
    Enricher,
    EnrichmentOutcome,
    EnrichmentStatus,
    LateFactsCallback,
)
from lead_router.enrichment.facts import (
    CompanyFacts,
    EnrichmentError,
    EnrichmentProvider,
    RegistryRejected,
    RegistryUnavailable,
)
from lead_router.enrichment.http import HttpRegistryProvider
from lead_router.enrichment.offline import (
    BUNDLED_REGISTRY,
    OfflineRegistryProvider,
    RegistryDataError,
)
from lead_router.enrichment.settings import EnrichmentSettings
from salesrail.clock import Clock, system_clock


def build_provider(
    settings: EnrichmentSettings, *, clock: Clock = system_clock
) -> EnrichmentProvider:
    """The provider the settings name."""
    if settings.enrichment_provider == "http":
        return HttpRegistryProvider(settings, clock=clock)
    return OfflineRegistryProvider(settings.registry_data_file or BUNDLED_REGISTRY, clock=clock)


def build_enricher(
    settings: EnrichmentSettings,
    *,
    on_late_facts: LateFactsCallback | None = None,
    clock: Clock = system_clock,
) -> Enricher:
    """An Enricher over the configured provider; it closes the provider on `close()`."""
    return Enricher(
        build_provider(settings, clock=clock),
        on_late_facts=on_late_facts,
        budget_s=settings.enrichment_budget_s,
    )


__all__ = [
    "BUNDLED_REGISTRY",
    "LOOKUPS",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "CompanyFacts",
    "Enricher",
    "EnrichmentError",
    "EnrichmentOutcome",
    "EnrichmentProvider",
    "EnrichmentSettings",
    "EnrichmentStatus",
    "HttpRegistryProvider",
    "InvalidCreditCode",
    "LateFactsCallback",
    "OfflineRegistryProvider",
    "RegistryDataError",
    "RegistryRejected",
    "RegistryUnavailable",
    "build_enricher",
    "build_provider",
    "normalize_credit_code",
    "usable_credit_code",
]
