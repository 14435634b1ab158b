"""What each activity type requires (the shipped rules/activity_requirements.yaml), without
broker or database: durable-rules in process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from activity.requirements import CompiledRequirements, RequirementsDocument
from activity.rulebook import DEFAULT_DIR, REQUIREMENTS_FILE, RulesInvalid, load_rulebook, parse
from salesrail.rules_engine import rule_engine

CHECKLIST = {
    "checklist_freight_included": True,
    "checklist_instalments_allowed": False,
    "checklist_technical_parameters_attached": True,
}


@pytest.fixture(scope="module")
def requirements() -> CompiledRequirements:
    return load_rulebook(DEFAULT_DIR, engine=rule_engine()).requirements


def missing(requirements: CompiledRequirements, type_: str, **facts: Any) -> list[str]:
    return [r.field for r in requirements.check(type_, facts).missing]


def test_the_seeds_activity_types_are_all_known(requirements: CompiledRequirements) -> None:
    assert set(requirements.types) >= {
        "call",
        "visit",
        "meeting",
        "demo",
        "quote",
        "contract",
        "needs_list",
        "note",
    }


def test_a_visit_needs_a_photo_and_a_voice_memo(requirements: CompiledRequirements) -> None:
    assert missing(requirements, "visit") == ["attachments", "transcript"]
    assert missing(requirements, "visit", photos=1, transcript="王总说预算50万") == []
    assert missing(requirements, "visit", photos=2, audio=1) == []
    assert missing(requirements, "visit", audio=1, pdfs=1) == ["attachments"]


def test_a_visit_is_on_time_within_two_hours(requirements: CompiledRequirements) -> None:
    assert requirements.rules_of("visit").on_time_within == timedelta(hours=2)
    assert requirements.rules_of("call").on_time_within is None


def test_a_quote_with_every_checklist_item_answered_passes_even_when_answered_no(
    requirements: CompiledRequirements,
) -> None:
    assert missing(requirements, "quote", **CHECKLIST) == []


@pytest.mark.parametrize("unanswered", sorted(CHECKLIST))
def test_one_unanswered_checklist_item_and_the_quote_cannot_be_filed(
    requirements: CompiledRequirements, unanswered: str
) -> None:
    facts = {**CHECKLIST, unanswered: None}
    item = unanswered.removeprefix("checklist_")
    assert missing(requirements, "quote", **facts) == [f"checklist.{item}"]


def test_a_contract_needs_its_signed_page_and_a_party_that_matches(
    requirements: CompiledRequirements,
) -> None:
    assert missing(requirements, "contract") == ["attachments", "party_name"]
    matched = requirements.check(
        "contract", {"documents": 1, "party_name": "x", "party_match": "match"}
    )
    assert matched.missing == []
    assert matched.delivers == ["contract_party_matched"]
    mismatch = requirements.check(
        "contract", {"documents": 1, "party_name": "x", "party_match": "mismatch"}
    )
    assert [r.name for r in mismatch.missing] == ["party_matches"]
    assert mismatch.overridable
    assert mismatch.delivers == []


def test_a_missing_signed_page_cannot_be_overridden(requirements: CompiledRequirements) -> None:
    verdict = requirements.check("contract", {"party_name": "x", "party_match": "mismatch"})
    assert [r.name for r in verdict.missing] == ["signed_page", "party_matches"]
    assert not verdict.overridable


def test_a_meeting_with_minutes_delivers_meeting_minutes(
    requirements: CompiledRequirements,
) -> None:
    assert requirements.check("meeting", {"minutes": "议程…"}).delivers == ["meeting_minutes"]
    assert requirements.check("meeting", {"documents": 1}).delivers == ["meeting_minutes"]
    assert requirements.check("meeting", {}).delivers == []


def test_a_call_requires_nothing_and_a_note_its_text(requirements: CompiledRequirements) -> None:
    assert missing(requirements, "call") == []
    assert missing(requirements, "note") == ["summary"]
    assert missing(requirements, "note", summary="客户在出差") == []


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        (
            "types: {visit: {requires: [{name: p, field: f, message: m, when: {colour: known}}]}}",
            "unknown fact",
        ),
        (
            "types: {visit: {requires: [{name: p, field: f, message: m, when: {photos: known}}]}}",
            "count",
        ),
        (
            "types: {visit: {requires: [{name: p, field: f, message: m, when: {summary: [a]}}]}}",
            "free text",
        ),
        ("types: {visit: {on_time_within: soon}}", "on_time_within"),
        ("types: {}", "types"),
        ("types: [", "not YAML"),
    ],
)
def test_a_bad_requirements_file_is_refused_naming_the_problem(source: str, complaint: str) -> None:
    with pytest.raises(RulesInvalid, match=complaint):
        parse(source, RequirementsDocument, name=REQUIREMENTS_FILE)
