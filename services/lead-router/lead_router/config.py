"""lead-router settings (`SALESRAIL_LEAD_ROUTER_*` overrides `SALESRAIL_*`)."""

from typing import ClassVar

from pydantic import Field

from lead_router.enrichment.settings import EnrichmentSettings
from salesrail.settings import ServiceSettings


class Settings(ServiceSettings, EnrichmentSettings):
    service_name: ClassVar[str] = "lead-router"
    default_port: ClassVar[int] = 8001

    # The same customer arriving again within this window is a duplicate of the first lead.
    duplicate_window_days: float = Field(default=90, gt=0)
    # rapidfuzz similarity (0-100) of normalised company names that counts as the same company.
    duplicate_name_threshold: float = Field(default=92, ge=50, le=100)
    # How often a replica looks for a rule version another replica stored.
    rules_refresh_s: float = Field(default=2.0, gt=0)
    # One notification attempt (DNS, connect, answer); well under consumer_ack_wait_s.
    notify_timeout_s: float = Field(default=10.0, gt=0)
    # Host names, *.domains, IPs or CIDRs that may be private (e.g. an intranet webhook).
    notify_allow_hosts: list[str] = Field(default_factory=list)
