"""The HTTP registry adapter against a real registry server on 127.0.0.1 that the test steers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from lead_router.enrichment import (
    BreakerState,
    CompanyFacts,
    Enricher,
    EnrichmentSettings,
    HttpRegistryProvider,
)

TOKEN = "registry-test-token"
HENGGU = {
    "credit_code": "91330106176749365P",
    "name": "杭州恒固紧固件有限公司",
    "registered_capital_cny": 10_000_000,
    "founded_on": "2009-04-17",
    "insured_headcount": 186,
    "industry": "制造业",
    "legal_representative": "(ignored)",
}
JINGDA = {
    "credit_code": "91330212774431429Y",
    "name": "宁波精达紧固件制造有限公司",
    "registered_capital_cny": 30_000_000,
    "founded_on": "2003-08-22",
    "insured_headcount": None,
    "industry": "制造业",
}

# Namesakes in two cities, as the bundled registry has them.
HUATONG = [
    {"credit_code": "913301105428498182", "name": "杭州华通机械有限公司", "industry": "制造业"},
    {"credit_code": "91330212MA67CKDFXE", "name": "宁波华通机械有限公司", "industry": "制造业"},
]


@dataclass(frozen=True)
class Step:
    """What the registry does with one request: wait, then answer `status` (None = normally)."""

    status: int | None = None
    delay_s: float = 0.0


class FakeRegistry:
    """State shared with the server thread: the companies, a script of steps, what arrived."""

    def __init__(self) -> None:
        self.companies = {c["credit_code"]: c for c in (HENGGU, JINGDA, *HUATONG)}
        self.script: deque[Step] = deque()
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()

    def then(self, *steps: Step) -> None:
        with self._lock:
            self.script.extend(steps)

    def take(self, request: Request) -> Step:
        with self._lock:
            self.requests.append(str(request.url.path) + "?" + str(request.url.query))
            return self.script.popleft() if self.script else Step()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)


def registry_app(registry: FakeRegistry) -> FastAPI:
    app = FastAPI()

    async def answer(request: Request, found: Callable[[], Any]) -> JSONResponse:
        step = registry.take(request)
        await asyncio.sleep(step.delay_s)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "bad token"}, status_code=401)
        if step.status is not None:
            return JSONResponse({"error": "scripted"}, status_code=step.status)
        body = found()
        return JSONResponse(body or {"error": "unknown"}, status_code=200 if body else 404)

    @app.get("/api/v1/companies/{code}")
    async def by_code(code: str, request: Request) -> JSONResponse:
        return await answer(request, lambda: registry.companies.get(code))

    @app.get("/api/v1/companies")
    async def by_name(name: str, request: Request) -> JSONResponse:
        def search() -> dict[str, Any]:
            # A loose search engine, as real registries are: any shared 2-character chunk.
            chunks = {name[i : i + 2] for i in range(len(name) - 1)} - {"有限", "公司", "限公"}
            hits = [c for c in registry.companies.values() if any(k in c["name"] for k in chunks)]
            return {"items": hits}

        return await answer(request, search)

    return app


@pytest.fixture(scope="module")
def registry_server() -> Iterator[tuple[FakeRegistry, str]]:
    registry = FakeRegistry()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        registry_app(registry), log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "registry server did not start"
        time.sleep(0.01)
    try:
        yield registry, f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@pytest.fixture
def registry(registry_server: tuple[FakeRegistry, str]) -> FakeRegistry:
    registry_server[0].reset()
    return registry_server[0]


@pytest.fixture
def registry_url(registry_server: tuple[FakeRegistry, str]) -> str:
    return registry_server[1]


def settings(url: str, **overrides: Any) -> EnrichmentSettings:
    values: dict[str, Any] = {
        "enrichment_provider": "http",
        "registry_url": url,
        "registry_token": TOKEN,
        "registry_timeout_s": 0.5,
        "registry_retries": 2,
        "registry_backoff_s": 0.01,
        "registry_backoff_max_s": 0.05,
        "registry_breaker_failures": 5,
        "registry_breaker_reset_s": 0.3,
        "registry_not_found_ttl_s": 0.2,
    }
    values.update(overrides)
    return EnrichmentSettings.model_validate(values)


class LateFacts:
    def __init__(self) -> None:
        self.received: list[tuple[str, CompanyFacts]] = []

    async def __call__(self, lead_id: str, facts: CompanyFacts) -> None:
        self.received.append((lead_id, facts))


@pytest.fixture
async def late() -> LateFacts:
    return LateFacts()


@pytest.fixture
async def make_enricher(late: LateFacts) -> AsyncIterator[Callable[..., Enricher]]:
    made: list[Enricher] = []

    def make(url: str, **overrides: Any) -> Enricher:
        enricher = Enricher(
            # A budget far above what a local registry needs, even on a busy machine: the tests
            # of the budget itself pass their own.
            HttpRegistryProvider(settings(url, **overrides)),
            on_late_facts=late,
            budget_s=3.0,
        )
        made.append(enricher)
        return enricher

    yield make
    for enricher in made:
        await enricher.close()


MakeEnricher = Callable[..., Enricher]


def lookups(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "salesrail_enrichment_lookups_total", {"provider": "http", "outcome": outcome}
    )
    return value or 0.0


def breaker_of(enricher: Enricher) -> Any:
    assert isinstance(enricher.provider, HttpRegistryProvider)
    return enricher.provider.breaker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_facts_by_credit_code_map_the_registry_json(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url)
    outcome = await enricher.enrich(
        lead_id="L1", company_name="随便写的名字", credit_code=" 91330106176749365p"
    )
    assert outcome.status == "complete", outcome.error
    facts = outcome.facts
    assert facts is not None
    assert (facts.registered_capital_cny, facts.insured_headcount) == (10_000_000, 186)
    assert facts.founded_on is not None and facts.founded_on.isoformat() == "2009-04-17"
    assert (facts.industry, facts.legal_name) == ("制造业", "杭州恒固紧固件有限公司")
    assert facts.source == "http:127.0.0.1" and facts.fetched_at.tzinfo is not None
    assert registry.requests == ["/api/v1/companies/91330106176749365P?"]


async def test_an_unknown_code_falls_back_to_a_name_search_that_must_match(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url)
    bad_code = HENGGU["credit_code"][:-1] + "0"
    outcome = await enricher.enrich(
        lead_id="L2", company_name="宁波市精达紧固件制造有限公司", credit_code=bad_code
    )
    # The invalid code is never sent; the search also returns 恒固 (shares 紧固), which is ignored.
    assert outcome.status == "complete"
    assert outcome.facts is not None and outcome.facts.credit_code == JINGDA["credit_code"]
    assert outcome.facts.insured_headcount is None
    [request] = registry.requests
    assert request.startswith("/api/v1/companies?name=")
    unknown = await enricher.enrich(
        lead_id="L3", company_name="紧固件贸易有限公司", credit_code="91350100M000100Y43"
    )
    assert unknown.status == "not_found" and unknown.facts is None
    assert registry.count == 3  # 404 for the code, then a search without an exact match


async def test_namesakes_in_two_cities_are_told_apart_by_the_place(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url)
    ningbo = await enricher.enrich(lead_id="H1", company_name="宁波华通机械")
    assert ningbo.facts is not None and ningbo.facts.legal_name == "宁波华通机械有限公司"
    assert ningbo.facts.registered_capital_cny is None  # absent in the answer
    # Normalised alike, yet not answered from the cache entry of the Ningbo one.
    unsure = await enricher.enrich(lead_id="H2", company_name="华通机械有限公司")
    assert unsure.status == "not_found"
    hangzhou = await enricher.enrich(lead_id="H3", company_name="杭州华通机械有限公司")
    assert hangzhou.facts is not None and hangzhou.facts.legal_name == "杭州华通机械有限公司"
    assert registry.count == 3


async def test_5xx_is_retried_until_the_registry_answers(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url, registry_retries=2)
    registry.then(Step(status=500), Step(status=503))
    outcome = await enricher.enrich(lead_id="L4", company_name="杭州恒固紧固件有限公司")
    assert outcome.status == "complete"
    assert registry.count == 3
    assert breaker_of(enricher).state is BreakerState.CLOSED


async def test_a_timeout_is_retried(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url, registry_timeout_s=0.2)
    registry.then(Step(delay_s=0.5))
    outcome = await enricher.enrich(lead_id="L5", company_name="恒固紧固件", budget_s=1.5)
    assert outcome.status == "complete"
    assert registry.count == 2


async def test_retries_give_up_and_the_lead_still_gets_an_outcome(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url, registry_retries=1)
    registry.then(Step(status=502), Step(status=502))
    before = lookups("failed")
    outcome = await enricher.enrich(lead_id="L6", company_name="恒固紧固件")
    assert outcome.status == "failed" and outcome.error == "registry answered 502"
    assert registry.count == 2
    assert lookups("failed") == before + 1


async def test_4xx_is_not_retried(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    wrong_token = make_enricher(registry_url, registry_token="stale", registry_retries=3)
    outcome = await wrong_token.enrich(lead_id="L7", company_name="恒固紧固件")
    assert outcome.status == "failed" and "401" in (outcome.error or "")
    assert registry.count == 1
    rate_limited = make_enricher(registry_url, registry_retries=3)
    registry.then(Step(status=429))
    assert (await rate_limited.enrich(lead_id="L8", company_name="恒固紧固件")).status == "failed"
    assert registry.count == 2
    assert breaker_of(rate_limited).state is BreakerState.CLOSED  # the registry did answer


async def test_an_unreachable_registry_fails_quickly_without_raising(
    make_enricher: MakeEnricher,
) -> None:
    enricher = make_enricher(f"http://127.0.0.1:{free_port()}/api/v1")
    started = time.monotonic()
    outcome = await enricher.enrich(lead_id="L9", company_name="恒固紧固件")
    assert outcome.status == "failed" and "ConnectError" in (outcome.error or "")
    assert time.monotonic() - started < 0.5


async def test_the_breaker_opens_fails_fast_and_half_opens_after_the_reset_time(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(
        registry_url, registry_retries=0, registry_breaker_failures=3, registry_breaker_reset_s=0.3
    )
    breaker = breaker_of(enricher)
    registry.then(*[Step(status=500)] * 3)
    for n in range(3):
        failed = await enricher.enrich(lead_id=f"B{n}", company_name="恒固紧固件")
        assert failed.status == "failed"
    assert registry.count == 3 and breaker.state is BreakerState.OPEN

    fast_before = lookups("circuit_open")
    started = time.monotonic()
    refused = await enricher.enrich(lead_id="B3", company_name="恒固紧固件")
    assert refused.status == "failed" and "open" in (refused.error or "")
    assert time.monotonic() - started < 0.05
    assert registry.count == 3  # nothing reached the registry
    assert lookups("circuit_open") == fast_before + 1

    await asyncio.sleep(0.3)
    assert breaker.state is BreakerState.HALF_OPEN
    registry.then(Step(status=500))  # the trial fails: open again at once
    assert (await enricher.enrich(lead_id="B4", company_name="恒固紧固件")).status == "failed"
    assert registry.count == 4 and breaker.state is BreakerState.OPEN
    assert (await enricher.enrich(lead_id="B5", company_name="恒固紧固件")).status == "failed"
    assert registry.count == 4

    await asyncio.sleep(0.3)
    recovered = await enricher.enrich(lead_id="B6", company_name="恒固紧固件")
    assert recovered.status == "complete"
    assert registry.count == 5 and breaker.state is BreakerState.CLOSED


async def test_an_opening_breaker_stops_the_remaining_retries(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url, registry_retries=5, registry_breaker_failures=2)
    registry.then(*[Step(status=500)] * 6)
    outcome = await enricher.enrich(lead_id="B7", company_name="恒固紧固件")
    assert outcome.status == "failed" and "open" in (outcome.error or "")
    assert registry.count == 2


async def test_the_cache_answers_by_name_and_by_code_without_a_request(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url)
    first = await enricher.enrich(lead_id="C1", company_name="杭州恒固紧固件有限公司")
    assert first.status == "complete" and registry.count == 1
    again = await enricher.enrich(lead_id="C2", company_name="杭州恒固紧固件有限公司")
    by_code = await enricher.enrich(
        lead_id="C3", company_name="x", credit_code=HENGGU["credit_code"]
    )
    assert again.facts == first.facts and by_code.facts == first.facts
    assert registry.count == 1
    # Another spelling is asked again: which namesake it picks depends on the spelling.
    by_variant = await enricher.enrich(lead_id="C4", company_name="恒固紧固件（杭州）有限公司")
    assert by_variant.facts is not None and by_variant.facts.credit_code == HENGGU["credit_code"]
    assert registry.count == 2


# Namesakes in one place, told apart only by the exact spelling.
HENGTONG = {"credit_code": "91330100MA2B0C1D25", "name": "恒通机械有限公司", "industry": "制造业"}
HENGTONG_GROUP = {
    "credit_code": "91330100MA2H7T4K9W",
    "name": "恒通机械股份有限公司",
    "industry": "批发业",
}


@pytest.fixture
def hengtong(registry: FakeRegistry) -> Iterator[FakeRegistry]:
    for company in (HENGTONG, HENGTONG_GROUP):
        registry.companies[company["credit_code"]] = company
    try:
        yield registry
    finally:
        for company in (HENGTONG, HENGTONG_GROUP):
            registry.companies.pop(company["credit_code"], None)


async def test_names_that_normalise_alike_do_not_share_a_cache_entry(
    hengtong: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url, registry_not_found_ttl_s=60)
    # Matches both: no facts beat the wrong company's, and that is not the answer for either.
    unsure = await enricher.enrich(lead_id="T1", company_name="恒通机械")
    assert unsure.status == "not_found"
    plain = await enricher.enrich(lead_id="T2", company_name="恒通机械有限公司")
    group = await enricher.enrich(lead_id="T3", company_name="恒通机械股份有限公司")
    assert plain.facts is not None and plain.facts.credit_code == HENGTONG["credit_code"]
    assert group.facts is not None and group.facts.credit_code == HENGTONG_GROUP["credit_code"]
    assert hengtong.count == 3
    # Each answer is now cached under its own spelling.
    assert (await enricher.enrich(lead_id="T4", company_name="恒通机械有限公司")).facts == (
        plain.facts
    )
    assert (await enricher.enrich(lead_id="T5", company_name="恒通机械")).status == "not_found"
    assert hengtong.count == 3


async def test_facts_found_by_code_answer_by_name_only_for_the_name_that_was_asked(
    hengtong: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url)
    by_code = await enricher.enrich(
        lead_id="K1", company_name="恒通机械", credit_code=HENGTONG_GROUP["credit_code"]
    )
    assert by_code.facts is not None and by_code.facts.legal_name == "恒通机械股份有限公司"
    plain = await enricher.enrich(lead_id="K2", company_name="恒通机械有限公司")
    assert plain.facts is not None and plain.facts.credit_code == HENGTONG["credit_code"]
    assert hengtong.count == 2
    # Asked by code under its own legal name: that name is then answered from the cache.
    other = make_enricher(registry_url)
    await other.enrich(
        lead_id="K3", company_name="恒通机械有限公司", credit_code=HENGTONG["credit_code"]
    )
    assert hengtong.count == 3
    again = await other.enrich(lead_id="K4", company_name="恒通机械有限公司")
    assert again.facts is not None and again.facts.credit_code == HENGTONG["credit_code"]
    assert hengtong.count == 3


async def test_not_found_is_cached_for_a_shorter_time(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url, registry_not_found_ttl_s=0.2)
    for lead_id in ("N1", "N2"):
        outcome = await enricher.enrich(lead_id=lead_id, company_name="苏州从未登记有限公司")
        assert outcome.status == "not_found"
    assert registry.count == 1
    await asyncio.sleep(0.25)
    await enricher.enrich(lead_id="N3", company_name="苏州从未登记有限公司")
    assert registry.count == 2


async def test_failures_are_not_cached(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher
) -> None:
    enricher = make_enricher(registry_url, registry_retries=0)
    registry.then(Step(status=500))
    assert (await enricher.enrich(lead_id="F1", company_name="恒固紧固件")).status == "failed"
    assert (await enricher.enrich(lead_id="F2", company_name="恒固紧固件")).status == "complete"
    assert registry.count == 2


async def test_a_slow_registry_leaves_the_lead_pending_and_the_facts_arrive_late(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher, late: LateFacts
) -> None:
    enricher = make_enricher(registry_url, registry_timeout_s=2.0)
    registry.then(Step(delay_s=0.8))
    late_before = lookups("late_found")
    started = time.monotonic()
    outcome = await enricher.enrich(lead_id="S1", company_name="恒固紧固件", budget_s=0.3)
    elapsed = time.monotonic() - started
    assert outcome.status == "pending" and outcome.facts is None
    assert 0.3 <= elapsed < 0.6  # well before the registry's answer at 0.8 s
    assert late.received == []

    assert await enricher.wait_for_late_lookups(timeout_s=3)
    [(lead_id, facts)] = late.received
    assert lead_id == "S1" and facts.credit_code == HENGGU["credit_code"]
    assert lookups("late_found") == late_before + 1
    # The late answer was cached: the next lead of that company is complete at once.
    again = await enricher.enrich(lead_id="S2", company_name="恒固紧固件", budget_s=0.3)
    assert again.status == "complete" and registry.count == 1


async def test_close_cancels_a_lookup_still_waiting_for_the_registry(
    registry: FakeRegistry, registry_url: str, make_enricher: MakeEnricher, late: LateFacts
) -> None:
    enricher = make_enricher(registry_url, registry_timeout_s=2.0)
    registry.then(Step(delay_s=0.6))
    outcome = await enricher.enrich(lead_id="S3", company_name="恒固紧固件", budget_s=0.2)
    assert outcome.status == "pending" and enricher.running == 1
    started = time.monotonic()
    await enricher.close()
    assert time.monotonic() - started < 0.3
    assert enricher.running == 0 and late.received == []


async def test_a_slow_registry_never_slows_intake_and_late_facts_rescore_the_lead(
    registry: FakeRegistry,
    registry_url: str,
    database_url: str,
    auth_database_url: str,
    fresh_nats_url: str,
    tmp_path: Any,
) -> None:
    from lead_router.config import Settings
    from lead_router.main import create_app
    from salesrail.auth.principal import Role
    from tests.support.apps import api_key, running
    from tests.support.bus import envelope_of, wait_for_messages

    app = create_app(
        Settings(
            database_url=database_url,
            auth_database_url=auth_database_url,
            nats_url=fresh_nats_url,
            data_dir=tmp_path,
            **settings(registry_url, registry_timeout_s=5.0, enrichment_budget_s=0.3).model_dump(),
        )
    )
    registry.then(Step(delay_s=2.5))
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        started = time.monotonic()
        answer = await client.post(
            "/v1/leads",
            headers=ops,
            json={
                "source": "expo",
                "company_name": HENGGU["name"],
                "contact_name": "周经理",
                "phone": "13566667777",
                "city": "杭州",
                "category": "紧固件",
            },
        )
        took = time.monotonic() - started
        rescored = await wait_for_messages(fresh_nats_url, "salesrail.lead.rescored", timeout_s=15)
        later = (await client.get(f"/v1/leads/{answer.json()['id']}", headers=ops)).json()
    assert answer.status_code == 201
    # The registry answers after 2.5 s; the budget is 0.3 s (room left for a busy machine).
    assert took < 2.0, "intake waited for the registry beyond its budget"
    assert answer.json()["enrichment_status"] == "pending"
    assert answer.json()["enrichment"] == {}
    event = envelope_of(rescored[0])["data"]
    assert event["lead_id"] == answer.json()["id"]
    assert event["score"] > answer.json()["score"]
    assert later["enrichment_status"] == "complete"
    assert later["enrichment"]["insured_headcount"] == 186
    assert later["score"] == event["score"] and later["grade"] == event["grade"]
