"""Which earlier lead a new one duplicates: pure matching, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lead_router.duplicates import Candidate, DuplicateMatch, best_match
from salesrail.text.company_names import company_region, normalize_company_name

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


def candidate(
    lead_id: str,
    company_name: str,
    *,
    phone: str = "+8613800000000",
    minutes: int = 0,
    owner_id: str | None = "rep-zhang",
) -> Candidate:
    return Candidate(
        lead_id=lead_id,
        owner_id=owner_id,
        phone=phone,
        company_key=normalize_company_name(company_name),
        received_at=T0 + timedelta(minutes=minutes),
        company_region=company_region(company_name),
    )


def match(
    candidates: list[Candidate],
    company_name: str,
    *,
    phone: str | None = None,
    threshold: float = 90.0,
) -> DuplicateMatch | None:
    return best_match(
        candidates,
        phone=phone,
        company_key=normalize_company_name(company_name),
        threshold=threshold,
        company_region=company_region(company_name),
    )


def test_the_same_phone_wins_over_a_better_company_name() -> None:
    candidates = [
        candidate("a", "杭州某某紧固件有限公司", minutes=5),
        candidate(
            "b", "宁波另一家机械有限公司", phone="+8613912345678", minutes=9, owner_id="rep-li"
        ),
    ]
    found = match(candidates, "杭州某某紧固件有限公司", phone="+8613912345678")
    assert found == DuplicateMatch("b", "rep-li", "phone", None)


def test_of_several_phone_matches_the_earliest_lead_is_the_original() -> None:
    candidates = [candidate("late", "甲", minutes=30), candidate("early", "乙", minutes=1)]
    found = match(candidates, "丙", phone="+8613800000000")
    assert found is not None and found.lead_id == "early"


def test_a_similar_company_name_above_the_threshold_matches() -> None:
    candidates = [candidate("a", "杭州某某紧固件公司", phone="+8613911111111")]
    found = match(candidates, "某某紧固件(杭州)有限公司", phone="+8613922222222")
    assert found == DuplicateMatch("a", "rep-zhang", "company_name", 100.0)


def test_the_most_similar_name_wins_and_ties_go_to_the_earliest() -> None:
    candidates = [
        candidate("close", "杭州某某紧固件厂", minutes=1),  # 91
        candidate("exact-late", "某某紧固件有限公司", minutes=20),
        candidate("exact-early", "杭州某某紧固件有限公司", minutes=10),
    ]
    found = match(candidates, "杭州某某紧固件公司", threshold=85)
    assert found is not None
    assert (found.lead_id, found.similarity) == ("exact-early", 100.0)


def test_below_the_threshold_or_in_another_city_is_not_a_duplicate() -> None:
    candidates = [
        candidate("other-trade", "杭州某某五金有限公司"),
        candidate("other-city", "宁波某某紧固件有限公司"),
    ]
    assert match(candidates, "杭州某某紧固件有限公司") is None
    capped = match(candidates, "杭州某某紧固件有限公司", threshold=40)
    assert capped is not None and (capped.lead_id, capped.similarity) == ("other-city", 50.0)


def test_without_a_phone_or_a_company_name_nothing_matches() -> None:
    candidates = [candidate("a", "某某紧固件")]
    assert best_match(candidates, phone=None, company_key="", threshold=0) is None
    assert best_match([], phone="+8613800000000", company_key="某某", threshold=90) is None


def test_a_lead_without_an_owner_is_still_the_original() -> None:
    found = match([candidate("pooled", "某某紧固件", owner_id=None)], "某某紧固件")
    assert found == DuplicateMatch("pooled", None, "company_name", 100.0)
