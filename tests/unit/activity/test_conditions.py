"""The `when` language: compiled once, each distinct case evaluated once. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from activity.conditions import Checks, FactKind, check_when, compile_when
from salesrail.rules_engine import Condition, rule_engine

KINDS: dict[str, FactKind] = {
    "photos": "count",
    "transcript": "text",
    "answered": "flag",
    "match": "word",
}


class CountingRules:
    """Stands in for durable-rules' AllMatches and counts evaluations."""

    def __init__(self, engine: Any, rules: Sequence[tuple[str, Condition]]) -> None:
        self._real = engine.all_matches("counting", rules)
        self.calls = 0

    def evaluate(self, facts: dict[str, Any]) -> list[str]:
        self.calls += 1
        return self._real.evaluate(facts)


class CountingEngine:
    def __init__(self) -> None:
        self.rules: CountingRules | None = None

    def all_matches(self, _label: str, rules: Sequence[tuple[str, Condition]]) -> CountingRules:
        self.rules = CountingRules(rule_engine(), rules)
        return self.rules


def test_each_distinct_case_goes_through_durable_rules_once() -> None:
    engine = CountingEngine()
    checks = Checks(
        engine,  # type: ignore[arg-type]
        "t",
        [("photo", {"photos": {"min": 1}}), ("memo", {"transcript": "known"})],
        KINDS,
    )
    assert checks.passed({"photos": 3, "transcript": "一段话"}) == {"photo", "memo"}
    # More photos, another text, facts the rules do not read: the same case to the rules.
    assert checks.passed({"photos": 30, "transcript": "另一段", "colour": "red"}) == {
        "photo",
        "memo",
    }
    assert checks.passed({"photos": 0}) == frozenset()
    assert engine.rules is not None and engine.rules.calls == 2


def test_flags_tell_true_false_and_unanswered_apart() -> None:
    checks = Checks(
        rule_engine(),
        "t",
        [
            ("yes", {"answered": True}),
            ("no", {"answered": False}),
            ("known", {"answered": "known"}),
        ],
        KINDS,
    )
    assert checks.passed({"answered": True}) == {"yes", "known"}
    assert checks.passed({"answered": False}) == {"no", "known"}
    assert checks.passed({"answered": None}) == frozenset()


def test_any_holds_when_one_alternative_holds() -> None:
    when = {"any": [{"photos": {"min": 2}}, {"match": ["match"]}], "transcript": "known"}
    checks = Checks(rule_engine(), "t", [("ok", when)], KINDS)
    assert checks.passed({"photos": 2, "transcript": "x"}) == {"ok"}
    assert checks.passed({"match": "match", "transcript": "x"}) == {"ok"}
    assert checks.passed({"photos": 1, "match": "mismatch", "transcript": "x"}) == frozenset()
    assert checks.passed({"photos": 5}) == frozenset()


def test_an_empty_condition_always_holds() -> None:
    assert compile_when({}) == {"_always": 1}


@pytest.mark.parametrize(
    ("when", "complaint"),
    [
        ({"colour": "known"}, "unknown fact"),
        ({"photos": "known"}, "count"),
        ({"photos": {"least": 1}}, "count"),
        ({"photos": {"min": 1.5}}, "whole numbers"),
        ({"answered": "yes"}, "flag"),
        ({"match": "match"}, "list of values"),
        ({"transcript": ["a"]}, "free text"),
        ({"any": []}, "non-empty list"),
        ({"any": [{"colour": "known"}]}, r"when\.any\[0\]: unknown fact"),
    ],
)
def test_a_condition_that_does_not_fit_its_fact_is_named(when: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        check_when(when, KINDS)
