"""Policies as data: the shipped defaults, validation naming the bad field, condition matching."""

from __future__ import annotations

from datetime import timedelta

import pytest

from salesrail.rules_engine import rule_engine
from sla_monitor.policies import PoliciesInvalid, compile_policies, parse, parse_duration
from sla_monitor.policybook import DEFAULTS


@pytest.fixture(scope="module")
def defaults():  # type: ignore[no-untyped-def]
    return compile_policies(
        parse(DEFAULTS.read_text(encoding="utf-8")), version=1, engine=rule_engine()
    )


def actions(policy_set, event_type, **data):  # type: ignore[no-untyped-def]
    return [(m.policy, m.action) for m in policy_set.matches(event_type, data)]


def test_the_shipped_policies_are_the_seeds_rules(defaults) -> None:  # type: ignore[no-untyped-def]
    assert list(defaults.policies) == [
        "first_touch_48h",
        "untouched_72h",
        "stalled_5d",
        "ticket_48h",
        "no_new_contact_3d",
        "daily_clearance",
        "proposal_yellow",
        "proposal_red",
    ]
    assert defaults.policies["ticket_48h"].warning.after == timedelta(hours=24)
    assert defaults.policies["stalled_5d"].duration == timedelta(days=5)


def test_a_received_lead_starts_only_its_first_touch_clock(defaults) -> None:  # type: ignore[no-untyped-def]
    assert actions(defaults, "lead.received", lead_id="l1") == [("first_touch_48h", "start")]


def test_a_stage_change_restarts_the_stall_clock_unless_the_lead_is_won_or_lost(defaults) -> None:  # type: ignore[no-untyped-def]
    assert actions(defaults, "lead.stage_changed", lead_id="l", to="demo", by="r") == [
        ("stalled_5d", "restart"),
        ("daily_clearance", "restart"),  # an update by the rep who changed it
    ]
    assert ("stalled_5d", "stop") in actions(defaults, "lead.stage_changed", lead_id="l", to="won")


def test_a_low_proposal_with_few_key_people_restarts_yellow_and_red(defaults) -> None:  # type: ignore[no-untyped-def]
    found = actions(
        defaults,
        "activity.logged",
        lead_id="l",
        rep_id="r",
        proposal_completion=0.5,
        key_people_covered=1,
    )
    assert ("proposal_yellow", "restart") in found and ("proposal_red", "restart") in found
    found = actions(
        defaults,
        "activity.logged",
        lead_id="l",
        rep_id="r",
        proposal_completion=0.5,
        key_people_covered=3,
    )
    assert ("proposal_yellow", "restart") in found and ("proposal_red", "stop") in found


def test_events_no_policy_mentions_match_nothing(defaults) -> None:  # type: ignore[no-untyped-def]
    assert actions(defaults, "lead.rescored", lead_id="l") == []


def problems(source: str) -> list[dict[str, str]]:
    with pytest.raises(PoliciesInvalid) as caught:
        parse(source)
    return caught.value.problems


def test_a_bad_policy_is_refused_naming_the_policy_and_the_field() -> None:
    source = """
policies:
  - name: first_touch_48h
    entity: lead
    start: [{event: lead.received}]
    duration: 48 hours
    breach: {severity: high, notify: [owner]}
"""
    assert problems(source) == [
        {
            "policy": "first_touch_48h",
            "field": "duration",
            "message": "Value error, a duration is written like '48h', '5d', '30min', "
            "got '48 hours'",
        }
    ]


def test_a_policy_naming_an_unknown_calendar_or_recipient_is_refused() -> None:
    source = """
policies:
  - name: p1
    entity: lead
    start: [{event: lead.received}]
    duration: 1h
    calendar: martian
    breach: {severity: high, notify: [somebody]}
"""
    found = problems(source)
    assert [(p["policy"], p["field"]) for p in found] == [("p1", "breach.notify[0]")]
    source = source.replace("[somebody]", "[owner]")
    assert problems(source)[0]["message"] == "no calendar named 'martian'"


def test_a_condition_takes_exactly_one_operator() -> None:
    source = """
policies:
  - name: p1
    entity: lead
    restart: [{event: activity.logged, when: [{field: x, below: 1, above: 0}]}]
    duration: 1h
    breach: {severity: high, notify: [owner]}
"""
    [problem] = problems(source)
    assert problem["policy"] == "p1" and problem["field"] == "restart[0].when[0]"


def test_duplicate_policy_names_and_non_yaml_are_refused() -> None:
    assert problems("policies: [")[0]["field"] == "yaml"
    one = (
        "{name: a, entity: lead, start: [{event: x}], duration: 1h,"
        " breach: {severity: s, notify: []}}"
    )
    assert "unique" in problems(f"policies: [{one}, {one}]")[0]["message"]


def test_durations_read_in_the_usual_units() -> None:
    assert parse_duration("48h") == timedelta(hours=48)
    assert parse_duration("5d") == timedelta(days=5)
    assert parse_duration("30min") == timedelta(minutes=30)
    assert parse_duration(90) == timedelta(seconds=90)
