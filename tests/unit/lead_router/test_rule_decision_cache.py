"""Remembered rule decisions: the same answers as durable-rules without a cache, a trace written
from the lead on a cache hit, a cache per compiled version, and a bound."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from lead_router.routing_rules import LeadFacts, RoutingDocument, _condition, compile_routing
from lead_router.scoring_rules import ScoringDocument, compile_scoring
from salesrail.rules_engine import (
    DecisionCache,
    RuleEngine,
    absent,
    all_of,
    any_of,
    at_least,
    at_most,
    equals,
    present,
    rule_engine,
)


@pytest.fixture
def posts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ruleset durable-rules is asked about, in order."""
    engine = rule_engine()
    asked: list[str] = []
    post, assert_and_retract = engine._post, engine._assert_and_retract

    def counted_post(ruleset: str, facts: dict[str, Any]) -> list[str]:
        asked.append(ruleset)
        return post(ruleset, facts)

    def counted_assert(ruleset: str, facts: dict[str, Any]) -> list[str]:
        asked.append(ruleset)
        return assert_and_retract(ruleset, facts)

    monkeypatch.setattr(engine, "_post", counted_post)
    monkeypatch.setattr(engine, "_assert_and_retract", counted_assert)
    return asked


RULES = [
    ("hz-fasteners", all_of([equals("city", "杭州市"), any_of("category", ["紧固件", "x"])])),
    ("big", all_of([at_least("score", 80), at_most("score", 95)])),
    ("exact-7", equals("n", 7)),
    ("half", equals("ratio", 0.5)),
    ("flag", equals("flag", True)),
    ("one-word", equals("code", "1")),
    ("known-budget", present("budget")),
    ("no-budget", all_of([absent("budget"), equals("grade", "A")])),
]
# Each fact holds values of the kind its rules compare it with: durable-rules 2.0.28 answers
# cross-kind comparisons ("0.5" == 0.5, True == 7) differently from one ruleset to the next, so
# those values are keyed by their exact value and are not compared here.
VALUES: dict[str, list[Any]] = {
    "city": [None, "杭州市", "宁波市", "杭州", ""],
    "category": [None, "紧固件", "x", "y", "X"],
    "score": [None, 0, 79, 80, 80.0, 79.5, 95, 95.5, 96, -1, 10**20],
    "n": [None, 6, 7, 7.0, 8, 6.9999],
    "ratio": [None, 0.5, 0.4, 1, 0],
    "flag": [None, True, False],
    "code": [None, "1", "01", " 1", "2"],
    "budget": [None, 0, 10_000, "unknown", False],
    "grade": [None, "A", "B"],
    "unread": [None, "anything", 3, True],
}


def _random_facts(rng: random.Random) -> dict[str, Any]:
    facts = {name: rng.choice(values) for name, values in VALUES.items()}
    return {k: v for k, v in facts.items() if v is not None or rng.random() < 0.5}


def test_cached_decisions_are_the_engines_own_for_every_kind_of_value() -> None:
    engine = rule_engine()
    plain_first = engine.first_match("plain", RULES)
    cached_first = engine.first_match("cached", RULES, cache=DecisionCache(10_000))
    plain_all = engine.all_matches("plain", RULES)
    cached_all = engine.all_matches("cached", RULES, cache=DecisionCache(10_000))
    rng = random.Random(7)
    for _ in range(600):
        facts = _random_facts(rng)
        assert cached_first.evaluate(facts) == plain_first.evaluate(facts), facts
        assert cached_all.evaluate(facts) == plain_all.evaluate(facts), facts


def test_facts_no_rule_reads_and_numbers_between_the_same_thresholds_share_a_decision(
    posts: list[str],
) -> None:
    rules = rule_engine().first_match("t", RULES, cache=DecisionCache(100))
    assert rules.evaluate({"score": 81, "category": "z", "unread": "a"}) == "big"
    asked = len(posts)
    assert rules.evaluate({"score": 90, "category": "y", "unread": "b"}) == "big"  # y, z: no rule's
    assert rules.evaluate({"score": 94, "category": "y"}) == "big"
    assert len(posts) == asked
    assert rules.evaluate({"score": 95, "category": "y"}) == "big"  # on a threshold: asked
    assert rules.evaluate({"score": 96, "category": "y"}) is None  # above it: asked
    assert rules.evaluate({"score": 94.5, "category": "y"}) == "big"  # a float: asked
    assert len(posts) == asked + 3
    assert rules.evaluate({"score": 81, "category": "紧固件"}) == "big"  # a word a rule names
    assert len(posts) == asked + 4


def test_values_compared_across_kinds_are_keyed_by_their_exact_value(posts: list[str]) -> None:
    rules = rule_engine().first_match(
        "t", [("odd", {"$gte": {"n": "5"}})], cache=DecisionCache(100)
    )
    assert rules.evaluate({"n": 6}) == "odd"  # durable-rules compares "5" with 6 itself
    assert rules.evaluate({"n": 7}) == "odd"
    assert rules.evaluate({"n": 6}) == "odd"
    assert len(posts) == 2


def test_a_condition_the_key_cannot_classify_is_never_cached(posts: list[str]) -> None:
    rules = rule_engine().first_match(
        "t", [("a-code", {"$mt": {"code": "a.*"}})], cache=DecisionCache(100)
    )
    assert rules.evaluate({"code": "abc"}) == "a-code"
    assert rules.evaluate({"code": "abc"}) == "a-code"
    assert rules.evaluate({"code": "b"}) is None
    assert len(posts) == 3


def test_the_cache_keeps_at_most_its_size_and_forgets_the_oldest_first() -> None:
    cache = DecisionCache(3)
    for i in range(5):
        cache.put(i, str(i))
    assert len(cache) == 3
    assert cache.get(0) is None and cache.get(1) is None
    assert [cache.get(i) for i in (2, 3, 4)] == ["2", "3", "4"]
    with pytest.raises(ValueError):
        DecisionCache(0)


def test_all_matches_answers_a_fresh_list_each_time() -> None:
    rules = rule_engine().all_matches("t", RULES, cache=DecisionCache(10))
    first = rules.evaluate({"budget": 5})
    first.append("changed")
    assert rules.evaluate({"budget": 5}) == ["known-budget"]


# --- routing ---------------------------------------------------------------------------------


def _routing(rules: list[dict[str, Any]], version: int, engine: RuleEngine | None = None) -> Any:
    document = RoutingDocument.model_validate({"rules": rules, "default": {"pool": "public"}})
    return compile_routing(document, version=version, engine=engine or rule_engine())


def _lead(**facts: Any) -> LeadFacts:
    base: dict[str, Any] = {"city": "杭州市", "province": "浙江省", "category": "紧固件"}
    return LeadFacts(**{**base, **facts})


def test_a_routing_trace_on_a_cache_hit_names_this_leads_facts(posts: list[str]) -> None:
    routing = _routing(
        [
            {
                "name": "hz-vip",
                "when": {"city": ["杭州"], "tags": ["VIP", "回访"], "score": {"min": 60}},
                "assign": {"rep": "rep-zhang"},
            }
        ],
        version=1,
    )
    first = routing.match(_lead(score=70, tags=("vip",), grade="A"))
    asked = len(posts)
    second = routing.match(_lead(score=88, tags=("Vip",), grade="B", source="展会"))
    assert len(posts) == asked  # the same case for the rule: remembered
    assert first.rule is not None and second.rule is not None
    assert first.explanation == "rule hz-vip matched city=杭州市, tags=vip, score=70"
    assert second.explanation == "rule hz-vip matched city=杭州市, tags=Vip, score=88"
    third = routing.match(_lead(score=61, tags=("回访", "x")))
    assert third.explanation == "rule hz-vip matched city=杭州市, tags=回访, score=61"
    assert routing.match(_lead(score=59, tags=("vip",))).rule is None
    assert routing.match(_lead(score=None, tags=("vip",))).rule is None
    assert routing.match(_lead(score=60, tags=())).rule is None
    fallback = routing.match(_lead(score=60, tags=()))
    assert fallback.explanation == "no rule matched; default: the public pool"


def test_first_match_wins_on_cache_hits_too() -> None:
    routing = _routing(
        [
            {"name": "hz-a", "when": {"city": ["杭州"], "grade": ["A"]}, "assign": {"rep": "a"}},
            {"name": "zj", "when": {"province": ["浙江"]}, "assign": {"rep": "z"}},
            {"name": "all", "assign": {"team": "everyone"}},
        ],
        version=1,
    )
    for _ in range(2):
        assert routing.match(_lead(grade="A")).assign.rep == "a"
        assert routing.match(_lead(grade="B")).assign.rep == "z"
        assert routing.match(_lead(city="宁波市", grade="A")).assign.rep == "z"
        assert routing.match(_lead(city=None, province="江苏省")).assign.team == "everyone"


def test_a_new_rules_version_decides_afresh_and_the_old_keeps_its_own() -> None:
    def rules(rep: str) -> list[dict[str, Any]]:
        when = {"city": ["杭州"], "category": ["紧固件"]}
        return [{"name": "hz", "when": when, "assign": {"rep": rep}}]

    old = _routing(rules("rep-old"), version=1)
    assert old.match(_lead()).assign.rep == "rep-old"
    new = _routing(rules("rep-new"), version=2)
    assert new.match(_lead()).assign.rep == "rep-new"
    assert old.match(_lead()).assign.rep == "rep-old"
    narrower = _routing(
        [{"name": "hz", "when": {"city": ["杭州"], "category": ["机床"]}, "assign": {"rep": "x"}}],
        version=3,
    )
    assert narrower.match(_lead()).rule is None


def test_routing_over_many_varied_leads_agrees_with_uncached_durable_rules() -> None:
    engine = rule_engine()
    rules = [
        {
            "name": "hz-f",
            "when": {"city": ["杭州"], "category": ["紧固件"]},
            "assign": {"rep": "a"},
        },
        {"name": "sh-hi", "when": {"city": ["上海"], "score": {"min": 50}}, "assign": {"rep": "b"}},
        {"name": "zj-a", "when": {"province": ["浙江"], "grade": ["A"]}, "assign": {"rep": "c"}},
        {
            "name": "fair",
            "when": {"tags": ["展会"], "source": ["Web Form"]},
            "assign": {"rep": "d"},
        },
    ]
    routing = _routing(rules, version=1, engine=engine)
    places = [("杭州市", "浙江省"), ("宁波市", "浙江省"), ("上海市", "上海市"), (None, "江苏省")]
    rng = random.Random(3)
    for city, province in itertools.islice(itertools.cycle(places), 400):
        lead = LeadFacts(
            city=city,
            province=province,
            category=rng.choice(["紧固件", "机床"]),
            grade=rng.choice([None, "A", "B"]),
            source=rng.choice([None, "web  form", "referral"]),
            score=rng.choice([None, 0, 49, 50, 51, 100]),
            tags=tuple(rng.sample(["展会", "vip"], rng.randrange(0, 3))),
        )
        uncached = engine.first_match("check", _bucket_rules(routing, city))
        expected = uncached.evaluate(lead.as_facts(routing._tag_ids))
        got = routing.match(lead)
        assert (got.rule.name if got.rule else None) == expected, lead


def _bucket_rules(routing: Any, city: str | None) -> list[tuple[str, Any]]:
    """The rules a lead of this city is compared with, in order, as compile_routing writes them."""
    members = [
        c
        for c in routing._rules.values()
        if c.cities is None or (city is not None and city in c.cities)
    ]
    return [(c.rule.name, _condition(c, routing._tag_ids)) for c in members]


# --- scoring ---------------------------------------------------------------------------------

SCORING = {
    "base": 10,
    "factors": [
        {"name": "old", "when": {"years_since_founding": {"min": 5}}, "points": 20},
        {
            "name": "factory",
            "when": {"industry": ["制造业", "Manufacturing"]},
            "points": 30,
            "reason": "制造业",
        },
        {"name": "fair", "when": {"tags": ["展会"]}, "points": 5},
        {"name": "budget", "when": {"budget": "known"}, "points": 10, "reason": "预算明确"},
    ],
    "grades": {"A": 60, "B": 30},
    "qualified": {"when": {"budget": "known", "purchase_timeframe": "known"}},
}


def _scoring(document: dict[str, Any], version: int) -> Any:
    parsed = ScoringDocument.model_validate(document)
    return compile_scoring(parsed, version=version, engine=rule_engine())


def test_scoring_on_a_cache_hit_answers_the_same_card_with_fresh_reasons(
    posts: list[str],
) -> None:
    scoring = _scoring(SCORING, version=1)
    facts = {
        "years_since_founding": 8,
        "industry": " manufacturing ",
        "tags": ["展会", "vip"],
        "budget": 50_000.0,
        "purchase_timeframe": "三个月内",
        "email": "a@example.cn",
        "city": "杭州市",
    }
    first = scoring.score(facts)
    asked = len(posts)
    first.reasons.append({"factor": "changed"})
    again = scoring.score({**facts, "years_since_founding": 20, "email": None, "city": "宁波市"})
    assert len(posts) == asked
    assert again.score == 75 and again.grade == "A" and again.qualified
    assert [r["factor"] for r in again.reasons] == ["old", "factory", "fair", "budget"]
    assert again.reasons[1] == {"factor": "factory", "points": 30, "reason": "制造业"}
    card = scoring.score({**facts, "years_since_founding": 4, "purchase_timeframe": None})
    assert (card.score, card.grade, card.qualified) == (55, "B", False)
    assert scoring.score({}).score == 10


def test_a_new_scoring_version_is_not_answered_from_the_old_ones_cache() -> None:
    facts = {"years_since_founding": 8}
    assert _scoring(SCORING, version=1).score(facts).score == 30
    changed = {**SCORING, "factors": [{**SCORING["factors"][0], "points": 50}]}
    assert _scoring(changed, version=2).score(facts).score == 60
