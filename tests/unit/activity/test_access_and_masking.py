"""Who may act on a lead and see its personal data; masking; party checks; cursors. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activity import rules
from activity.masking import Masker, mask_name, masked_activity
from activity.party_match import match_party
from salesrail.auth import Principal, Role
from salesrail.http.cursors import decode_cursor, encode_cursor
from salesrail.http.problems import ProblemError


def caller(role: Role, rep_id: str | None = None, team_id: str | None = None) -> Principal:
    return Principal(subject="t", role=role, via="jwt", rep_id=rep_id, team_id=team_id)


def test_the_owner_the_teams_supervisor_and_admin_may_act_on_a_lead() -> None:
    assert rules.may_act(caller(Role.REP, "rep-zhang"), "rep-zhang", "east")
    assert rules.may_act(caller(Role.SUPERVISOR, team_id="east"), "rep-zhang", "east")
    assert rules.may_act(caller(Role.ADMIN), "rep-zhang", None)


@pytest.mark.parametrize(
    "who",
    [
        caller(Role.REP, "rep-li"),
        caller(Role.REP, None),
        caller(Role.SUPERVISOR, team_id="west"),
        caller(Role.SUPERVISOR),
        caller(Role.OPS),
        caller(Role.PRESALES),
    ],
)
def test_nobody_else_may_act_on_a_lead(who: Principal) -> None:
    assert not rules.may_act(who, "rep-zhang", "east")


def test_a_supervisor_cannot_act_on_a_lead_whose_team_is_unknown() -> None:
    assert not rules.may_act(caller(Role.SUPERVISOR, team_id="east"), "rep-zhang", None)


def test_only_the_teams_supervisor_or_admin_may_override() -> None:
    assert rules.may_override(caller(Role.SUPERVISOR, team_id="east"), "rep-zhang", "east")
    assert rules.may_override(caller(Role.ADMIN), "rep-zhang", "east")
    assert not rules.may_override(caller(Role.REP, "rep-zhang"), "rep-zhang", "east")


def test_a_visit_logged_within_two_hours_is_on_time() -> None:
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    within = timedelta(hours=2)
    assert rules.on_time(at, at + timedelta(hours=2), within) is True
    assert rules.on_time(at, at + timedelta(hours=2, seconds=1), within) is False
    assert rules.on_time(at, at + timedelta(days=3), None) is None


def test_names_keep_their_first_character() -> None:
    assert mask_name("王总") == "王*"
    assert mask_name("欧阳建国") == "欧***"
    assert mask_name("Li Wei") == "L*****"


def test_an_activity_is_masked_for_those_outside_the_owners_side() -> None:
    item = {
        "summary": "见了王建国和李工",
        "transcript": "王建国说预算50万，电话13812345678，李工负责技术",
        "details": {"contacts": ["王建国", "李工"], "checklist": {"freight_included": True}},
        "facts": {"decision_maker": "王建国", "budget_min": 500000},
        "key_people": ["王建国", "李工"],
        "flags": [],
    }
    masked = masked_activity(item, Masker(["王建国", "李工"]))
    assert masked["summary"] == "见了王**和李*"
    assert "13812345678" not in masked["transcript"]
    assert "138****5678" in masked["transcript"]
    assert "王建国" not in masked["transcript"] and "李工" not in masked["transcript"]
    assert masked["details"]["contacts"] == ["王**", "李*"]
    assert masked["details"]["checklist"] == {"freight_included": True}
    assert masked["facts"] == {"decision_maker": "王**", "budget_min": 500000}
    assert masked["key_people"] == ["王**", "李*"]


@pytest.mark.parametrize(
    ("party", "company", "matched"),
    [
        ("杭州某某紧固件有限公司", "杭州某某紧固件有限公司", True),
        ("杭州某某紧固件公司", "杭州某某紧固件有限公司", True),
        ("某某紧固件(杭州)有限公司", "杭州某某紧固件有限公司", True),
        ("宁波某某紧固件有限公司", "杭州某某紧固件有限公司", False),
        ("上海另一家机床有限公司", "杭州某某紧固件有限公司", False),
        ("杭州某某紧固件有限公司", None, False),
    ],
)
def test_a_contracts_party_must_be_the_leads_company(
    party: str, company: str | None, matched: bool
) -> None:
    found = match_party(party, company, threshold=85)
    assert found.matched is matched, found.explain()


def test_a_cursor_comes_back_as_it_was_given() -> None:
    at = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor((at, "a-b-c"))) == (at, "a-b-c")


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", encode_cursor.__name__])
def test_a_cursor_this_service_did_not_give_is_refused(cursor: str) -> None:
    with pytest.raises(ProblemError):
        decode_cursor(cursor)
