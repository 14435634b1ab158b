"""Facts read from a visit memo's transcript: decision maker, budget (CNY), next step, people."""

from __future__ import annotations

from pathlib import Path

import pytest

from activity.memo import (
    DEFAULT_PATTERNS,
    MemoPatternsInvalid,
    extract_memo_facts,
    key_people,
    load_memo_patterns,
)


def budget(text: str) -> tuple[int | None, int | None]:
    facts = extract_memo_facts(text).facts
    return facts["budget_min"], facts["budget_max"]  # type: ignore[return-value]


def test_a_complete_chinese_memo_gives_every_fact() -> None:
    memo = extract_memo_facts("决策人是王总，预算50-80万，下一步下周二去现场做演示。")
    assert memo.facts == {
        "decision_maker": "王总",
        "budget_min": 500_000,
        "budget_max": 800_000,
        "next_step": "下周二去现场做演示",
    }
    assert memo.missing == []


def test_a_complete_english_memo_gives_every_fact() -> None:
    memo = extract_memo_facts(
        "Met the team in Ningbo. The decision maker is their CFO, Ms. Li. Budget around "
        "RMB 1.2 million. Next steps are a site visit and a demo with Director Wang."
    )
    assert memo.facts == {
        "decision_maker": "Ms. Li",
        "budget_min": 1_200_000,
        "budget_max": 1_200_000,
        "next_step": "a site visit and a demo with Director Wang",
    }
    assert memo.missing == []


def test_missing_facts_are_named_not_refused() -> None:
    memo = extract_memo_facts("预算大概30万左右，决策人还没确定，下一步待定")
    assert memo.facts == {
        "decision_maker": None,
        "budget_min": 300_000,
        "budget_max": 300_000,
        "next_step": None,
    }
    assert memo.missing == ["decision_maker", "next_step"]


def test_an_empty_memo_misses_everything() -> None:
    assert extract_memo_facts("").missing == ["decision_maker", "budget", "next_step"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("预算50-80万", (500_000, 800_000)),
        ("预算在50万到80万之间", (500_000, 800_000)),
        ("客户预算大约 60～90 万元", (600_000, 900_000)),
        ("预算大概30万左右", (300_000, 300_000)),
        ("他们今年预算有200万", (2_000_000, 2_000_000)),
        ("预算五十到八十万", (500_000, 800_000)),
        ("预算一百五十万", (1_500_000, 1_500_000)),
        ("预算三千五百万", (35_000_000, 35_000_000)),
        ("预算1.5个亿", (150_000_000, 150_000_000)),
        ("预算50w", (500_000, 500_000)),
        ("预算300000元", (300_000, 300_000)),
        ("预算不超过100万", (None, 1_000_000)),
        ("预算控制在80万以内", (None, 800_000)),
        ("预算至少50万", (500_000, None)),
        ("计划投入500万做产线改造", (5_000_000, 5_000_000)),
        ("budget 500k", (500_000, 500_000)),
        ("Budget is about RMB 300,000.", (300_000, 300_000)),
        ("a budget of 1.2m for phase one", (1_200_000, 1_200_000)),
        ("budget 800k-1m", (800_000, 1_000_000)),
        ("budget between 300,000 and 500,000 yuan", (300_000, 500_000)),
        ("budget up to 2 million", (None, 2_000_000)),
        ("they have a 500K budget for the new line", (500_000, 500_000)),
        ("Budget: 80-50万", (500_000, 800_000)),
    ],
)
def test_budgets_are_normalised_to_cny(text: str, expected: tuple[int | None, int | None]) -> None:
    assert budget(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "没有预算",
        "预算还没定，要等集团批",
        "预算3个月内批下来",  # months, not money
        "预算审批要走两轮",
        "the 2025 budget is not approved yet",  # a year, not money
        "budget: $50k",  # dollars: not a CNY budget
        "budget is USD 80k",
        "We sold 500k units last year",
        "their budget meeting is on the 3rd",
        "the budget was cut by 20%",
        "去年采购了300万的设备",  # spent, not a budget
        "预算" + "9" * 400 + "万",  # a transcription glitch, beyond any number
    ],
)
def test_these_say_no_budget(text: str) -> None:
    assert "budget" in extract_memo_facts(text).missing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("决策人是王总", "王总"),
        ("决策人：李工", "李工"),
        ("最终决策人应该是采购部的张经理", "张经理"),
        ("拍板的是欧阳总监", "欧阳总监"),
        ("这个项目王总说了算", "王总"),
        ("最后由陈厂长拍板", "陈厂长"),
        ("赵总拍板，预算没问题", "赵总"),
        ("决策人是他们老板", "他们老板"),
        ("The decision maker is Mr. Chen.", "Mr. Chen"),
        ("decision-maker: Ms Li (CFO)", "Ms. Li"),
        ("Mr Chen makes the final decision", "Mr. Chen"),
        ("Final say is with Director Wang.", "Director Wang"),
        ("Wang Zong is the decision maker", "Wang Zong"),
        ("decision maker: the plant manager, budget 500k", "the plant manager"),
        ("decision maker: Drake from IT", "Drake from IT"),
    ],
)
def test_the_decision_maker_is_found(text: str, expected: str) -> None:
    assert extract_memo_facts(text).facts["decision_maker"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "决策人还没确定",
        "决策人是谁还不清楚",
        "决策人待定",
        "这事不是王总拍板",
        "王总不管这块",  # a person, but not said to decide
        "decision maker unknown",
        "decision maker is not yet identified",
        "We don't know who the decision maker is.",
        "Mr. Chen attended the meeting",
        "the manager makes the final decision",  # no name
    ],
)
def test_these_name_no_decision_maker(text: str) -> None:
    assert extract_memo_facts(text).facts["decision_maker"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("下一步：下周二去现场做演示。", "下周二去现场做演示"),
        ("下一步是安排技术交流，预算50万", "安排技术交流"),
        ("后续安排：月底前提交方案", "月底前提交方案"),
        ("王总说可以，约了下周三演示", "下周三演示"),
        (
            "Next step: send the quote to Mr. Chen by Friday.",
            "send the quote to Mr. Chen by Friday",
        ),
        ("next step is to schedule a demo next Tuesday", "schedule a demo next Tuesday"),
        (
            "Follow-up: technical Q&A with their IT team; budget TBD",
            "technical Q&A with their IT team",
        ),
        ("We agreed to run a pilot in March.", "run a pilot in March"),
    ],
)
def test_the_next_step_is_found(text: str, expected: str) -> None:
    assert extract_memo_facts(text).facts["next_step"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "下一步待定",
        "下一步还不清楚",
        "下一步看情况再说",
        "next step: TBD",
        "the next step is unclear",
        "no next step yet",
        "The stepper motor is next to the panel.",
    ],
)
def test_these_give_no_next_step(text: str) -> None:
    assert extract_memo_facts(text).facts["next_step"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("王总和李工都在，张经理没来", ["王总", "李工", "张经理"]),
        ("见了欧阳总监和刘老师，王总也来了，又跟王总确认了一遍", ["欧阳总监", "刘老师", "王总"]),
        ("met Mr. Chen and Director Wang; Mr Chen will call back", ["Mr. Chen", "Director Wang"]),
        ("陪同的有Ms. Li和张工", ["Ms. Li", "张工"]),
        ("Wang Zong said ok; Li Gong will check the drawings", ["Wang Zong", "Li Gong"]),
    ],
)
def test_key_people_are_the_named_people_each_once(text: str, expected: list[str]) -> None:
    assert key_people(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "总部在上海，工厂在宁波",
        "合同总价50万总共分三期",  # 50万总价: 万 is a unit here, not a surname
        "高工资招不到员工",
        "采购负责人和IT经理参加了会议",  # roles without names
        "the plant manager and the CFO joined",
        "周工作日都可以",
        "Miss Monday's deadline and we lose the slot",
    ],
)
def test_these_name_no_key_people(text: str) -> None:
    assert key_people(text) == []


def test_the_shipped_patterns_load() -> None:
    patterns = load_memo_patterns(DEFAULT_PATTERNS)
    assert patterns.units["万"] == 10_000
    assert len(patterns.budget.patterns) >= 5


def _patterns_with(tmp_path: Path, old: str, new: str) -> Path:
    source = DEFAULT_PATTERNS.read_text(encoding="utf-8")
    assert old in source
    path = tmp_path / "memo_patterns.yaml"
    path.write_text(source.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "'{cn_budget}{cn_filler}{cur}(?P<amount>",
            "'{cn_budget}(?P<amount>(",
            "not a valid regex",
        ),
        ("(?P<value>{cn_person})(?:来|亲自)", "({cn_person})(?:来|亲自)", "needs the named group"),
        (
            "'{cn_budget}{cn_filler}{cur}(?P<amount>",
            "'{nope}(?P<amount>",
            "unknown fragment {nope}",
        ),
        (
            "(?P<amount>{num})\\s*(?P<unit>{unit})?'",
            "(?P<amount>{num})(?P<max>1)'",
            "amount is one",
        ),
        ("万: 10000", "万: 0", "positive"),
        ("unitless_minimum: 10000", "unitless_minimum: ten", "unitless_minimum"),
        ("\nkey_people:", "\nkey_persons:", "key_persons"),
    ],
)
def test_a_broken_patterns_file_is_refused_saying_where(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(MemoPatternsInvalid, match="memo_patterns.yaml") as refused:
        load_memo_patterns(_patterns_with(tmp_path, old, new))
    assert message in str(refused.value)


def test_patterns_loaded_from_another_file_are_used(tmp_path: Path) -> None:
    path = _patterns_with(tmp_path, "'(?:下一步|", "'(?:下阶段|下一步|")
    memo = extract_memo_facts("下阶段：报价", load_memo_patterns(path))
    assert memo.facts["next_step"] == "报价"
