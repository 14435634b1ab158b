"""The durable-rules adapter: first match in order, all matches, presence, big rule sets."""

import time

from salesrail.rules_engine import (
    CHUNK,
    absent,
    all_of,
    any_of,
    at_least,
    at_most,
    equals,
    present,
    rule_engine,
)


def test_the_first_matching_rule_in_order_wins() -> None:
    rules = rule_engine().first_match(
        "t",
        [
            (
                "hz-fasteners",
                all_of([equals("city", "杭州市"), any_of("category", ["紧固件", "fasteners"])]),
            ),
            ("zhejiang-a", all_of([equals("province", "浙江省"), equals("grade", "A")])),
            ("everyone", all_of([])),
        ],
    )
    assert (
        rules.evaluate(
            {"city": "杭州市", "category": "fasteners", "province": "浙江省", "grade": "A"}
        )
        == "hz-fasteners"
    )
    assert (
        rules.evaluate({"city": "宁波市", "category": "x", "province": "浙江省", "grade": "A"})
        == "zhejiang-a"
    )
    assert rules.evaluate({"city": "北京市"}) == "everyone"


def test_no_match_is_none_and_leaves_nothing_behind() -> None:
    rules = rule_engine().first_match("t", [("big", at_least("score", 80))])
    for _ in range(3):
        assert rules.evaluate({"score": 10}) is None
    assert rules.evaluate({"score": 90}) == "big"


def test_every_matching_rule_fires_and_presence_is_a_condition() -> None:
    rules = rule_engine().all_matches(
        "t",
        [
            ("old", at_least("years", 5)),
            ("small", at_most("staff", 49)),
            ("budget", present("budget")),
            ("no-budget", absent("budget")),
        ],
    )
    assert rules.evaluate({"years": 6, "staff": 10}) == ["old", "small", "no-budget"]
    assert rules.evaluate({"years": 1, "staff": 100, "budget": 0}) == ["budget"]
    assert rules.evaluate({"years": 6, "staff": 10}) == ["old", "small", "no-budget"]


def test_rule_sets_larger_than_the_engine_can_hold_still_keep_their_order() -> None:
    # 450 rules: more than one chunk. Rule i wants city c{i % 300} and n = i // 300.
    count = CHUNK * 2 + 50
    rules = rule_engine().first_match(
        "big",
        [
            (f"r{i}", all_of([equals("city", f"c{i % 300}"), equals("n", i // 300)]))
            for i in range(count)
        ],
    )
    assert rules.evaluate({"city": "c7", "n": 0}) == "r7"
    assert rules.evaluate({"city": "c7", "n": 1}) == "r307"  # found in a later chunk
    assert rules.evaluate({"city": "c299", "n": 1}) is None


def test_many_rule_sets_cost_nothing_while_idle() -> None:
    # durable-rules' own Host re-arms two timer threads per ruleset every 0.2 s: with 200
    # rulesets an idle process spent about a quarter of a core on them.
    engine = rule_engine()
    for i in range(200):
        engine.first_match(f"idle{i}", [("a", equals("city", f"c{i}"))])
    started = time.process_time()
    time.sleep(1.0)
    assert time.process_time() - started < 0.05
    assert (
        engine.first_match("idle-check", [("a", equals("city", "x"))]).evaluate({"city": "x"})
        == "a"
    )
