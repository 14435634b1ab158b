"""Stage gates (the shipped rules/stage_gates.yaml) and how a stage may move. Pure."""

from __future__ import annotations

import pytest

from activity import rules
from activity.dossier import fold, gate_facts
from activity.gates import CompiledGates, GatesDocument, lead_fact_kinds
from activity.rulebook import DEFAULT_DIR, GATES_FILE, RulesInvalid, load_rulebook, parse
from salesrail.rules_engine import rule_engine


@pytest.fixture(scope="module")
def gates() -> CompiledGates:
    return load_rulebook(DEFAULT_DIR, engine=rule_engine()).gates


def test_every_stage_after_contact_has_at_least_two_checks(gates: CompiledGates) -> None:
    stages = gates.document.stages
    assert set(stages) == set(rules.STAGES) - {"contact"}
    assert all(len(checks) >= 2 for checks in stages.values())


def test_needs_confirmed_needs_a_document_and_a_decision_maker(gates: CompiledGates) -> None:
    nothing = [
        m.check.name for m in gates.missing(["needs_confirmed"], gate_facts({}, owner_id="r"))
    ]
    assert nothing == ["needs_documented", "decision_maker_known"]
    minutes = {"counts": {"meeting": 1, "meeting_minutes": 1}, "decision_maker": "王总"}
    assert gates.missing(["needs_confirmed"], gate_facts(minutes, owner_id="r")) == []


def test_demo_needs_a_demo_and_two_key_people(gates: CompiledGates) -> None:
    one = {"counts": {"demo": 1}, "key_people": ["王总"]}
    assert [m.field for m in gates.missing(["demo"], gate_facts(one, owner_id="r"))] == [
        "deliverables.demo.key_people_covered"
    ]
    two = {**one, "key_people": ["王总", "李工"]}
    assert gates.missing(["demo"], gate_facts(two, owner_id="r")) == []


def test_lost_needs_a_reason_and_some_contact(gates: CompiledGates) -> None:
    facts = gate_facts({"activities": 1}, owner_id="r", reason="  ")
    assert [m.check.name for m in gates.missing(["lost"], facts)] == ["reason_given"]
    facts = gate_facts({"activities": 1}, owner_id="r", reason="预算取消")
    assert gates.missing(["lost"], facts) == []


def test_completion_is_the_share_of_the_next_gate_already_met(gates: CompiledGates) -> None:
    assert gates.completion("needs_confirmed", gate_facts({}, owner_id="r")) == 0.0
    half = {"decision_maker": "王总"}
    assert gates.completion("needs_confirmed", gate_facts(half, owner_id="r")) == 0.5
    assert gates.completion(None, gate_facts(half, owner_id="r")) is None


def test_moving_forward_checks_every_gate_entered() -> None:
    move = rules.plan_move("contact", "negotiation")
    assert move.gates == ("needs_confirmed", "demo", "negotiation")
    assert not move.needs_reason
    assert rules.plan_move("negotiation", "won").gates == ("won",)


def test_losing_checks_only_the_lost_gate() -> None:
    assert rules.plan_move("demo", "lost").gates == ("lost",)


@pytest.mark.parametrize(("current", "target"), [("demo", "contact"), ("negotiation", "demo")])
def test_going_back_needs_a_reason_and_no_gate(current: str, target: rules.Stage) -> None:
    move = rules.plan_move(current, target)
    assert move.needs_reason and move.gates == ()


@pytest.mark.parametrize(
    ("current", "target", "gates"),
    [("lost", "demo", ()), ("won", "negotiation", ()), ("lost", "won", ("won",))],
)
def test_reopening_a_closed_lead_needs_a_reason(
    current: str, target: rules.Stage, gates: tuple[str, ...]
) -> None:
    move = rules.plan_move(current, target)
    assert move.needs_reason and move.gates == gates


def test_moving_to_the_current_stage_is_refused() -> None:
    with pytest.raises(rules.SameStage):
        rules.plan_move("demo", "demo")


def test_the_next_stage_of_a_closed_lead_is_none() -> None:
    assert rules.next_stage("contact") == "needs_confirmed"
    assert rules.next_stage("negotiation") == "won"
    assert rules.next_stage("won") is None and rules.next_stage("lost") is None


def test_a_dossier_counts_types_deliverables_people_and_reps() -> None:
    first = fold(
        {},
        activity_type="meeting",
        rep_id="rep-zhang",
        delivers=["meeting_minutes"],
        facts={"decision_maker": "王总", "budget_min": 500000, "budget_max": None},
        key_people=["王总", " 李工 "],
    )
    assert first.first_contact and first.key_people_covered == 2
    second = fold(
        first.dossier,
        activity_type="call",
        rep_id="rep-zhang",
        delivers=[],
        facts={},
        key_people=["王总", "李工"],
    )
    assert not second.first_contact and second.key_people_covered == 2
    assert second.dossier["counts"] == {"meeting": 1, "meeting_minutes": 1, "call": 1}
    assert second.dossier["activities"] == 2
    assert second.dossier["budget"] == {"min": 500000, "max": None}
    assert first.dossier["activities"] == 1  # folding returns a new dossier


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("stages: {demo: [{name: a, when: {demo: {min: 1}}, message: m}]}", "at least 2"),
        (
            "stages: {closed: [{name: a, when: {x: known}, message: m},"
            " {name: b, when: {y: known}, message: m}]}",
            "unknown stages",
        ),
        (
            "stages: {needs_confirmed: [{name: a, when: {x: known}, message: m},"
            " {name: b, when: {y: known}, message: m}]}",
            "stages without a gate",
        ),
    ],
)
def test_a_bad_gates_file_is_refused(source: str, complaint: str) -> None:
    with pytest.raises(RulesInvalid, match=complaint):
        parse(source, GatesDocument, name=GATES_FILE)


def test_a_gate_reading_a_fact_no_lead_has_is_refused() -> None:
    checks = [
        {"name": "a", "when": {"colour": "known"}, "message": "m"},
        {"name": "b", "when": {"demo": {"min": 1}}, "message": "m"},
    ]
    stages = {stage: checks for stage in rules.STAGES if stage != "contact"}
    document = GatesDocument.model_validate({"stages": stages})
    with pytest.raises(ValueError, match="unknown fact 'colour'"):
        CompiledGates(document, rule_engine(), lead_fact_kinds(["demo"], []))
