"""Enrichment without a network: credit codes, the offline registry, the Enricher, the breaker."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from lead_router.enrichment import (
    BUNDLED_REGISTRY,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    CompanyFacts,
    Enricher,
    InvalidCreditCode,
    OfflineRegistryProvider,
    RegistryDataError,
    normalize_credit_code,
)
from lead_router.enrichment.credit_code import check_character
from lead_router.enrichment.offline import COLUMNS, load_registry
from salesrail.clock import FrozenClock

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
HENGGU = "91330106176749365P"  # 杭州恒固紧固件有限公司 in the bundled file
# The worked example of GB 32100-2015 itself.
STANDARD_EXAMPLE = "91350100M000100Y43"


def lookups(provider: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "salesrail_enrichment_lookups_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0.0


@pytest.fixture(scope="module")
def registry() -> OfflineRegistryProvider:
    return OfflineRegistryProvider(clock=FrozenClock(NOW))


# --- credit codes -------------------------------------------------------------------------------


def test_the_standards_example_code_is_valid_and_normalised() -> None:
    assert normalize_credit_code(STANDARD_EXAMPLE) == STANDARD_EXAMPLE
    assert normalize_credit_code(" 9135 0100m000100y43 ") == STANDARD_EXAMPLE
    assert check_character(STANDARD_EXAMPLE[:17]) == "3"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350100M000100Y44", "check"),
        ("91350100M000100Y4", "17 characters"),
        ("91350100M000100I43", "malformed"),  # I is not in the standard's alphabet
        ("913501A0M000100Y43", "malformed"),  # the division code is digits only
    ],
)
def test_bad_credit_codes_are_refused_with_the_reason(code: str, reason: str) -> None:
    with pytest.raises(InvalidCreditCode, match=reason):
        normalize_credit_code(code)


def test_every_code_in_the_bundled_registry_is_valid_and_the_data_is_varied() -> None:
    entries = load_registry(BUNDLED_REGISTRY)
    assert len(entries) >= 60
    assert all(normalize_credit_code(e.credit_code) == e.credit_code for e in entries)
    assert len({e.city for e in entries}) >= 10
    assert any(e.founded_on and e.founded_on.year > NOW.year - 5 for e in entries)
    assert any(e.insured_headcount is not None and e.insured_headcount < 50 for e in entries)
    assert any(e.industry != "制造业" for e in entries)


# --- facts --------------------------------------------------------------------------------------


def facts(**values: object) -> CompanyFacts:
    return CompanyFacts.model_validate({"source": "test", "fetched_at": NOW, **values})


def test_years_since_founding_counts_full_years_only() -> None:
    founded = facts(founded_on=date(2021, 3, 2))
    assert founded.years_since_founding(date(2026, 3, 1)) == 4
    assert founded.years_since_founding(date(2026, 3, 2)) == 5
    assert founded.years_since_founding(date(2020, 1, 1)) == 0
    assert facts().years_since_founding(date(2026, 3, 1)) is None


def test_facts_are_frozen_and_need_an_aware_time_and_a_valid_code() -> None:
    with pytest.raises(ValidationError):
        facts().registered_capital_cny = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="timezone"):
        facts(fetched_at=datetime(2026, 3, 1, 9, 30))
    with pytest.raises(ValidationError, match="check"):
        facts(credit_code="91350100M000100Y44")
    assert facts(credit_code=STANDARD_EXAMPLE.lower()).credit_code == STANDARD_EXAMPLE


# --- offline registry ---------------------------------------------------------------------------


async def test_lookup_by_credit_code_wins_over_the_name(registry: OfflineRegistryProvider) -> None:
    found = await registry.lookup(company_name="深圳市安迅物流有限公司", credit_code=HENGGU.lower())
    assert found is not None
    assert found.legal_name == "杭州恒固紧固件有限公司"
    assert found.credit_code == HENGGU
    assert found.registered_capital_cny == 10_000_000
    assert found.founded_on == date(2009, 4, 17)
    assert found.insured_headcount == 186
    assert found.industry == "制造业"
    assert found.source == "offline:registry.csv"
    assert found.fetched_at == NOW


@pytest.mark.parametrize(
    "name",
    [
        "杭州恒固紧固件有限公司",
        "杭州市恒固紧固件有限公司",
        "恒固紧固件",
        " 杭州 恒固紧固件 有限公司 ",
        "杭州恒固紧固件有限责任公司",
        "恒固紧固件（杭州）有限公司",
    ],
)
async def test_lookup_by_name_variants(registry: OfflineRegistryProvider, name: str) -> None:
    found = await registry.lookup(company_name=name)
    assert found is not None and found.credit_code == HENGGU


async def test_an_invalid_credit_code_falls_back_to_the_name(
    registry: OfflineRegistryProvider,
) -> None:
    found = await registry.lookup(company_name="恒固紧固件", credit_code="91330106176749365Q")
    assert found is not None and found.credit_code == HENGGU


@pytest.mark.parametrize(
    ("name", "founded"),
    [
        ("华通机械有限公司", None),  # 杭州 or 宁波? No facts beat the wrong company's.
        ("宁波华通机械有限公司", date(2018, 10, 12)),
        ("杭州华通机械", date(2011, 9, 9)),
        ("华通机械（宁波）有限公司", date(2018, 10, 12)),
        ("浙江杭州华通机械有限公司", date(2011, 9, 9)),
    ],
)
async def test_a_trade_name_in_two_cities_is_told_apart_by_the_place(
    registry: OfflineRegistryProvider, name: str, founded: date | None
) -> None:
    found = await registry.lookup(company_name=name)
    assert (found.founded_on if found else None) == founded


async def test_an_unknown_company_is_none(registry: OfflineRegistryProvider) -> None:
    assert await registry.lookup(company_name="北京从未注册过的公司有限公司") is None
    assert await registry.lookup(company_name="", credit_code=STANDARD_EXAMPLE) is None


async def test_a_blank_fact_in_the_file_is_none(registry: OfflineRegistryProvider) -> None:
    found = await registry.lookup(company_name="成都锦程商贸有限公司")
    assert found is not None and found.insured_headcount is None


async def test_each_lookup_has_its_own_fetch_time() -> None:
    clock = FrozenClock(NOW)
    provider = OfflineRegistryProvider(clock=clock)
    first = await provider.lookup(company_name="恒固紧固件")
    clock.advance(timedelta(hours=1))
    second = await provider.lookup(company_name="恒固紧固件")
    assert first is not None and second is not None
    assert second.fetched_at - first.fetched_at == timedelta(hours=1)


# --- refused data files -------------------------------------------------------------------------

GOOD_ROW = f"{HENGGU},杭州恒固紧固件有限公司,杭州,制造业,10000000,2009-04-17,186"


def data_file(tmp_path: Path, *rows: str, header: str = ",".join(COLUMNS)) -> Path:
    path = tmp_path / "registry.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (
            "91330212MA67CKDFXF,宁波华通机械有限公司,宁波,制造业,6000000,2018-10-12,45",
            r"line 3 \(宁波华通机械有限公司\): credit code .* check: last character should be 'E'",
        ),
        (
            "9133021MA67CKDFXE,宁波华通机械有限公司,宁波,制造业,6000000,2018-10-12,45",
            r"line 3 \(宁波华通机械有限公司\): credit code .* 17 characters",
        ),
        (
            ",宁波华通机械有限公司,宁波,制造业,6000000,2018-10-12,45",
            r"line 3 \(宁波华通机械有限公司\): credit_code is empty",
        ),
        (
            "91330212MA67CKDFXE,宁波华通机械有限公司,宁波,制造业,6000000,2018-13-12,45",
            r"line 3 \(宁波华通机械有限公司\): .*month",
        ),
        (
            "91330212MA67CKDFXE,宁波华通机械有限公司,宁波,制造业,6000000,2018-10-12,-4",
            r"line 3 \(宁波华通机械有限公司\): .*negative",
        ),
        (
            GOOD_ROW.replace("杭州恒固", "杭州另一家"),
            rf"line 3 \(杭州另一家紧固件有限公司\): credit code {HENGGU} already on line 2",
        ),
    ],
)
def test_a_bad_row_is_refused_naming_the_line(tmp_path: Path, bad_row: str, message: str) -> None:
    with pytest.raises(RegistryDataError, match=message):
        OfflineRegistryProvider(data_file(tmp_path, GOOD_ROW, bad_row))


def test_a_file_without_a_needed_column_is_refused(tmp_path: Path) -> None:
    header = ",".join(c for c in COLUMNS if c != "founded_on")
    with pytest.raises(RegistryDataError, match="missing columns.*founded_on"):
        load_registry(data_file(tmp_path, header=header))


# --- the Enricher -------------------------------------------------------------------------------


class SlowRegistry:
    """A provider that answers after a delay (or raises), for the Enricher's own logic."""

    name = "slow-test"

    def __init__(self, delay_s: float, error: Exception | None = None) -> None:
        self.delay_s = delay_s
        self.error = error

    async def lookup(
        self, *, company_name: str, credit_code: str | None = None
    ) -> CompanyFacts | None:
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return facts(legal_name=company_name)


async def test_offline_enrichment_is_complete_or_not_found(
    registry: OfflineRegistryProvider,
) -> None:
    enricher = Enricher(registry)
    found_before = lookups("offline", "found")
    outcome = await enricher.enrich(lead_id="L1", company_name="恒固紧固件", credit_code=None)
    assert outcome.status == "complete"
    assert outcome.facts is not None and outcome.facts.credit_code == HENGGU
    missing = await enricher.enrich(lead_id="L2", company_name="无此公司", credit_code=None)
    assert missing.status == "not_found" and missing.facts is None
    assert lookups("offline", "found") == found_before + 1
    assert enricher.running == 0


async def test_a_provider_error_never_escapes_and_is_counted() -> None:
    enricher = Enricher(SlowRegistry(0.0, error=RuntimeError("registry bug")))
    before = lookups("slow-test", "failed")
    outcome = await enricher.enrich(lead_id="L3", company_name="恒固", budget_s=0.5)
    assert outcome.status == "failed" and outcome.error == "RuntimeError: registry bug"
    assert lookups("slow-test", "failed") == before + 1


async def test_past_the_budget_the_facts_arrive_late_through_the_callback() -> None:
    late: list[tuple[str, CompanyFacts]] = []

    async def on_late_facts(lead_id: str, found: CompanyFacts) -> None:
        late.append((lead_id, found))

    enricher = Enricher(SlowRegistry(0.3), on_late_facts=on_late_facts)
    started = time.monotonic()
    outcome = await enricher.enrich(lead_id="L4", company_name="恒固", budget_s=0.1)
    assert outcome.status == "pending"
    assert time.monotonic() - started < 0.25
    assert late == []
    assert await enricher.wait_for_late_lookups(timeout_s=2)
    assert [(lead_id, f.legal_name) for lead_id, f in late] == [("L4", "恒固")]


async def test_a_failing_late_callback_is_contained() -> None:
    async def on_late_facts(lead_id: str, found: CompanyFacts) -> None:
        raise RuntimeError("re-scoring failed")

    enricher = Enricher(SlowRegistry(0.1), on_late_facts=on_late_facts)
    before = lookups("slow-test", "late_found")
    outcome = await enricher.enrich(lead_id="L5", company_name="x", budget_s=0.01)
    assert outcome.status == "pending"
    assert await enricher.wait_for_late_lookups(timeout_s=2)
    assert lookups("slow-test", "late_found") == before + 1


async def test_close_cancels_late_lookups() -> None:
    late: list[str] = []

    async def on_late_facts(lead_id: str, found: CompanyFacts) -> None:
        late.append(lead_id)

    enricher = Enricher(SlowRegistry(5.0), on_late_facts=on_late_facts)
    outcome = await enricher.enrich(lead_id="L6", company_name="x", budget_s=0.01)
    assert outcome.status == "pending"
    assert enricher.running == 1
    started = time.monotonic()
    await enricher.close()
    assert time.monotonic() - started < 0.5
    assert enricher.running == 0 and late == []
    closed = await enricher.enrich(lead_id="L7", company_name="x", budget_s=0.01)
    assert closed.status == "failed"


# --- the circuit breaker ------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker) -> None:
    with pytest.raises(ConnectionError), breaker.guard():
        raise ConnectionError("down")


def test_the_breaker_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_s=10, clock=FakeTime())
    fail(breaker)
    fail(breaker)
    with breaker.guard():
        pass  # a success in between resets the count
    fail(breaker)
    fail(breaker)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_the_breaker_half_opens_for_one_trial_after_the_reset_time() -> None:
    clock = FakeTime()
    breaker = CircuitBreaker(failure_threshold=1, reset_s=10, clock=clock)
    fail(breaker)
    clock.now += 9.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the one trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller meanwhile fails fast
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN  # a failed trial reopens for a full reset time
    clock.now += 10
    with breaker.guard():
        pass
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0


def test_answers_that_are_not_failures_keep_the_breaker_closed() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_s=10, clock=FakeTime())
    with pytest.raises(PermissionError), breaker.guard(is_failure=lambda e: False):
        raise PermissionError("401")
    assert breaker.state is BreakerState.CLOSED


def test_a_cancelled_trial_frees_the_half_open_slot() -> None:
    clock = FakeTime()
    breaker = CircuitBreaker(failure_threshold=1, reset_s=1, clock=clock)
    fail(breaker)
    clock.now += 1
    with pytest.raises(asyncio.CancelledError), breaker.guard():
        raise asyncio.CancelledError
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the next caller may try
