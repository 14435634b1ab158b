"""A company registry over HTTP, with timeouts, retries, a circuit breaker and a TTL cache.

The API this adapter expects (a thin proxy in front of Tianyancha, Qichacha or an in-house
registry speaks it):

    GET {registry_url}/companies/{credit_code}
        200 -> a company object; 404 -> the registry does not know the code
    GET {registry_url}/companies?name={company name as the lead gave it}
        200 -> {"items": [company, ...]}, best match first, possibly empty
    Authorization: Bearer {registry_token}   (sent when a token is configured)

    company object (unknown fields ignored, any fact may be null or absent):
        {"credit_code": "91330106176749365P", "name": "杭州恒固紧固件有限公司",
         "registered_capital_cny": 10000000, "founded_on": "2009-04-17",
         "insured_headcount": 186, "industry": "制造业"}

Only an item whose normalised name equals the lead's counts as a match (a search engine's "best
match" may be another company). Connect errors, timeouts and 5xx are retried with exponential
back-off and jitter and count against the breaker; 404 means unknown; any other 4xx (bad token,
rate limit) or an unreadable body fails at once without a retry: retrying cannot fix it.
Answers are cached by credit code and by name (normalised, with its place and exact spelling:
which namesake is picked depends on both); "not found" for a shorter time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import structlog
from cachetools import TTLCache
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from lead_router.enrichment.breaker import CircuitBreaker
from lead_router.enrichment.credit_code import usable_credit_code
from lead_router.enrichment.facts import CompanyFacts, RegistryRejected, RegistryUnavailable
from lead_router.enrichment.names import (
    company_region,
    normalize_company_name,
    pick_namesake,
    spelling_key,
)
from lead_router.enrichment.settings import EnrichmentSettings
from salesrail.clock import Clock, system_clock

log = structlog.get_logger(__name__)

# ("code", code) or ("name", normalised name, place named in it or "", spelling): namesakes
# normalise alike (杭州/宁波华通机械, 恒通机械有限公司/恒通机械股份有限公司), and pick_namesake
# tells them apart by the place and then the exact spelling, so both are part of the key.
CacheKey = tuple[str, ...]


class HttpRegistryProvider:
    """`lookup` asks the registry by credit code, then by name; call `aclose()` at shutdown."""

    name = "http"

    def __init__(
        self,
        settings: EnrichmentSettings,
        *,
        clock: Clock = system_clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not settings.registry_url:
            raise ValueError("HttpRegistryProvider needs settings.registry_url")
        self.settings = settings
        self._clock = clock
        headers = {"Accept": "application/json"}
        if settings.registry_token is not None:
            headers["Authorization"] = f"Bearer {settings.registry_token.get_secret_value()}"
        self._client = httpx.AsyncClient(
            base_url=settings.registry_url,
            headers=headers,
            timeout=httpx.Timeout(settings.registry_timeout_s),
            transport=transport,
        )
        self._source = f"http:{self._client.base_url.host}"
        self.breaker = CircuitBreaker(
            failure_threshold=settings.registry_breaker_failures,
            reset_s=settings.registry_breaker_reset_s,
            name="registry",
        )
        self._found: TTLCache[CacheKey, CompanyFacts] = TTLCache(
            maxsize=settings.registry_cache_size, ttl=settings.registry_cache_ttl_s
        )
        self._missing: TTLCache[CacheKey, bool] = TTLCache(
            maxsize=settings.registry_cache_size, ttl=settings.registry_not_found_ttl_s
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def lookup(
        self, *, company_name: str, credit_code: str | None = None
    ) -> CompanyFacts | None:
        """Facts by credit code if it is valid and known, else by name; errors propagate."""
        code = usable_credit_code(credit_code)
        if code is not None:
            facts = await self._cached(
                ("code", code), lambda: self._fetch_by_code(code), asked_name=company_name
            )
            if facts is not None:
                return facts
        normalized = normalize_company_name(company_name)
        if not normalized:
            return None
        return await self._cached(
            _name_key(company_name),
            lambda: self._fetch_by_name(company_name, normalized),
            asked_name=company_name,
        )

    def forget(self) -> None:
        """Empty both caches (tests, or an operator after fixing registry data)."""
        self._found.clear()
        self._missing.clear()

    async def _cached(
        self,
        key: CacheKey,
        fetch: Callable[[], Awaitable[CompanyFacts | None]],
        *,
        asked_name: str,
    ) -> CompanyFacts | None:
        if (hit := self._found.get(key)) is not None:
            return hit
        if key in self._missing:
            return None
        facts = await fetch()
        if facts is None:
            self._missing[key] = True
            return None
        self._found[key] = facts
        # The same company asked the other way round is a hit too.
        if facts.credit_code:
            self._found[("code", facts.credit_code)] = facts
        # By name only for the name that was asked: a search for another spelling of it may pick
        # another namesake (or none, when several match).
        if (
            facts.legal_name
            and normalize_company_name(facts.legal_name)
            and spelling_key(facts.legal_name) == spelling_key(asked_name)
        ):
            self._found[_name_key(facts.legal_name)] = facts
        return facts

    async def _fetch_by_code(self, code: str) -> CompanyFacts | None:
        body = await self._get(f"/companies/{code}")
        if body is None:
            return None
        return self._facts(body)

    async def _fetch_by_name(self, company_name: str, normalized: str) -> CompanyFacts | None:
        body = await self._get("/companies", params={"name": company_name.strip()})
        if body is None:
            return None
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise RegistryRejected("registry search answer has no 'items' list")
        matches = [
            item
            for item in items
            if isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and normalize_company_name(item["name"]) == normalized
        ]
        chosen = pick_namesake(matches, company_name, lambda item: item["name"])
        return None if chosen is None else self._facts(chosen)

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The decoded JSON body, or None on 404; retried only while the registry is unwell."""
        # A new AsyncRetrying per call: one instance keeps its iteration state on itself.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.registry_retries + 1),
            # backoff * 2**n plus up to one backoff of jitter, so retries of many leads spread.
            wait=wait_exponential_jitter(
                multiplier=self.settings.registry_backoff_s,
                max=self.settings.registry_backoff_max_s,
                jitter=self.settings.registry_backoff_s,
            ),
            retry=retry_if_exception_type(RegistryUnavailable),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(path, params)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _attempt(self, path: str, params: dict[str, str] | None) -> Any:
        # One HTTP request is one breaker call, so an open breaker also stops further retries.
        with self.breaker.guard(is_failure=lambda exc: isinstance(exc, RegistryUnavailable)):
            try:
                response = await self._client.get(path, params=params)
            except httpx.TransportError as exc:  # connect errors, timeouts, dropped connections
                raise RegistryUnavailable(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code >= 500:
                raise RegistryUnavailable(f"registry answered {response.status_code}")
            if response.status_code == 404:
                return None
            if response.status_code >= 400:
                raise RegistryRejected(f"registry refused the request: {response.status_code}")
            try:
                return response.json()
            except ValueError as exc:
                raise RegistryRejected("registry answered with a body that is not JSON") from exc

    def _facts(self, item: Any) -> CompanyFacts:
        if not isinstance(item, dict):
            raise RegistryRejected("registry company record is not an object")
        try:
            return CompanyFacts(
                registered_capital_cny=item.get("registered_capital_cny"),
                founded_on=item.get("founded_on"),
                insured_headcount=item.get("insured_headcount"),
                industry=item.get("industry"),
                credit_code=item.get("credit_code"),
                legal_name=item.get("name"),
                source=self._source,
                fetched_at=self._clock.now(),
            )
        except ValidationError as exc:
            fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
            raise RegistryRejected(f"registry company record has invalid {fields}") from exc


def _name_key(company_name: str) -> CacheKey:
    return (
        "name",
        normalize_company_name(company_name),
        company_region(company_name) or "",
        spelling_key(company_name),
    )


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.info(
        "enrichment.registry_retry",
        attempt=state.attempt_number,
        wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
        error=str(error),
    )
