"""What a company registry tells us about a company, and the provider interface."""

from __future__ import annotations

from datetime import date
from typing import Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from lead_router.enrichment.credit_code import normalize_credit_code


class CompanyFacts(BaseModel):
    """Registry facts of one company; any fact the registry lacks is None."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registered_capital_cny: float | None = Field(default=None, ge=0)
    founded_on: date | None = None
    insured_headcount: int | None = Field(default=None, ge=0)
    industry: str | None = Field(default=None, max_length=100)
    credit_code: str | None = None
    # The registered name that matched, so a reviewer can see which company the facts belong to.
    legal_name: str | None = Field(default=None, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    fetched_at: AwareDatetime

    @field_validator("credit_code")
    @classmethod
    def _valid_credit_code(cls, value: str | None) -> str | None:
        return None if value is None else normalize_credit_code(value)

    def years_since_founding(self, on: date) -> int | None:
        """Full years from founding to `on` (0 before the first anniversary); None if unknown."""
        if self.founded_on is None:
            return None
        founded = self.founded_on
        years = on.year - founded.year - ((on.month, on.day) < (founded.month, founded.day))
        return max(years, 0)


@runtime_checkable
class EnrichmentProvider(Protocol):
    """A company registry; `name` labels metrics and logs."""

    name: str

    async def lookup(
        self, *, company_name: str, credit_code: str | None = None
    ) -> CompanyFacts | None:
        """Facts of the company (credit code first, else name); None when the registry has none."""
        ...


class EnrichmentError(Exception):
    """A lookup that could not get an answer from the registry."""


class RegistryUnavailable(EnrichmentError):
    """The registry could not be reached or answered 5xx (retried, counts against the breaker)."""


class RegistryRejected(EnrichmentError):
    """The registry refused the request (4xx other than 404) or sent an unreadable answer."""
