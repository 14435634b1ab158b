"""Enrichment settings; lead-router's Settings embeds these fields (SALESRAIL_REGISTRY_URL...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class EnrichmentSettings(BaseModel):
    """Which registry to ask and how patiently; every duration is in seconds."""

    model_config = ConfigDict(extra="ignore")

    enrichment_provider: Literal["offline", "http"] = "offline"
    # Intake scores and routes on what is known when the budget runs out (brief: within 3 s).
    enrichment_budget_s: float = Field(default=3.0, gt=0)
    # Offline provider: None means the data file bundled with lead-router.
    registry_data_file: Path | None = None
    # HTTP provider.
    registry_url: str = ""
    registry_token: SecretStr | None = None
    registry_timeout_s: float = Field(default=2.0, gt=0)
    registry_retries: int = Field(default=2, ge=0)
    registry_backoff_s: float = Field(default=0.2, ge=0)
    registry_backoff_max_s: float = Field(default=2.0, ge=0)
    registry_breaker_failures: int = Field(default=5, ge=1)
    registry_breaker_reset_s: float = Field(default=30.0, ge=0)
    registry_cache_ttl_s: float = Field(default=24 * 3600.0, gt=0)
    # Shorter: a company registered today should be found tomorrow.
    registry_not_found_ttl_s: float = Field(default=3600.0, gt=0)
    registry_cache_size: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _http_needs_url(self) -> EnrichmentSettings:
        if self.enrichment_provider == "http" and not self.registry_url:
            raise ValueError("enrichment_provider 'http' needs registry_url")
        if self.registry_url and not self.registry_url.startswith(("http://", "https://")):
            raise ValueError("registry_url must start with http:// or https://")
        return self

    @classmethod
    def of(cls, settings: Any) -> EnrichmentSettings:
        """The enrichment fields of a larger settings object (missing ones take defaults)."""
        return cls.model_validate(settings, from_attributes=True)
