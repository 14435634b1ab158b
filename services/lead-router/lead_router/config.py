"""lead-router settings (`SALESRAIL_LEAD_ROUTER_*` overrides `SALESRAIL_*`)."""

from functools import cached_property
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from lead_router.enrichment.settings import EnrichmentSettings
from salesrail.notify import DEFAULT_RATES, Rate, Sealer
from salesrail.notify.sealing import InvalidKey, parse_keys
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
    # Messages per window a channel type accepts (the platforms' robot limits by default);
    # e.g. SALESRAIL_LEAD_ROUTER_NOTIFY_RATE_LIMITS='{"webhook": {"messages": 50, "per_s": 60}}'.
    notify_rate_limits: dict[str, Rate] = Field(default_factory=lambda: dict(DEFAULT_RATES))

    # Fernet keys sealing the channels' URLs and secrets in the database, comma-separated: the
    # first seals, all open (rotation: a new key first, the old one after it). Without any, a
    # channel cannot be stored (422), and channels stored in clear before keep working.
    channel_keys: SecretStr | None = None

    @field_validator("channel_keys")
    @classmethod
    def _check_channel_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        try:  # a wrong key stops the start, rather than every delivery
            parse_keys(value.get_secret_value())
        except InvalidKey as exc:
            raise InvalidKey(f"SALESRAIL_CHANNEL_KEYS: {exc}") from None
        return value

    @cached_property
    def channel_sealer(self) -> Sealer | None:
        keys = self.channel_keys
        return Sealer.from_text(keys.get_secret_value()) if keys is not None else None

    @field_validator("notify_rate_limits")
    @classmethod
    def _keep_platform_limits(cls, rates: dict[str, Rate]) -> dict[str, Rate]:
        # Setting the webhook's limit must not lift the robots' published ones.
        return {**DEFAULT_RATES, **rates}
