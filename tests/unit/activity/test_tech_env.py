"""Technical-environment changes mentioned in a memo, from the configured phrases."""

from __future__ import annotations

from pathlib import Path

import pytest

from activity.tech_env import (
    DEFAULT_PHRASES,
    TechEnvPhrasesInvalid,
    detect_tech_env_change,
    load_tech_env_phrases,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("客户明年要做系统迁移，顺便ERP替换", ["system_migration", "erp_replacement"]),
        ("他们IT架构调整后再谈", ["it_architecture_upgrade"]),
        ("二期要做架构升级", ["it_architecture_upgrade"]),
        ("车间设备更换预计下半年", ["equipment_replacement"]),
        ("产线改造的预算已经批了", ["production_line_retrofit"]),
        ("今年准备上MES系统", ["mes_replacement"]),
        ("网络改造和机房搬迁一起做", ["system_migration", "network_upgrade"]),
        ("The customer plans an IT architecture upgrade in Q3.", ["it_architecture_upgrade"]),
        ("They are replacing their old machines with CNC lathes", ["equipment_replacement"]),
        ("switching from Kingdee to SAP next spring", ["erp_replacement"]),
        ("the MES rollout starts in May", ["mes_replacement"]),
        ("migrating the data warehouse servers to Aliyun", ["system_migration"]),
    ],
)
def test_mentioned_changes_are_named(text: str, expected: list[str]) -> None:
    assert detect_tech_env_change(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ERP替换",
        "erp 替换",
        "ＥＲＰ替换",  # full-width letters
        "Erp  替 换",
        "ERP Replacement",
        "erp-replacement",
        "ERP\nreplacement",
    ],
)
def test_spacing_case_and_width_do_not_matter(text: str) -> None:
    assert detect_tech_env_change(text) == ["erp_replacement"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "系统很稳定，今年没有变化",
        "数据要迁移吗？客户没说",  # 迁移 alone is not a system migration
        "upgrade the sales team's skills",
        "sometimes replacement parts arrive late",  # "mes" inside a word
        "The customer's ERP works fine.",
        "equipment list attached",
        "Their network is slow.",
    ],
)
def test_unrelated_text_mentions_no_change(text: str) -> None:
    assert detect_tech_env_change(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "暂时不考虑设备更换",
        "今年没有系统迁移的计划",
        "不需要做产线改造",
        "We are not planning a system migration.",
        "no plans for new equipment this year",
        "They don't need a new ERP",
    ],
)
def test_a_negated_mention_does_not_count(text: str) -> None:
    assert detect_tech_env_change(text) == []


def test_a_negation_in_another_clause_does_not_cancel_a_mention() -> None:
    assert detect_tech_env_change("没有问题，下一步做系统迁移") == ["system_migration"]
    assert detect_tech_env_change("We don't need a new ERP, but the MES rollout starts soon") == [
        "mes_replacement"
    ]


def test_the_shipped_phrases_cover_the_issues_examples() -> None:
    names = [name for name, _ in load_tech_env_phrases(DEFAULT_PHRASES).changes]
    assert {
        "it_architecture_upgrade",
        "system_migration",
        "equipment_replacement",
        "erp_replacement",
        "mes_replacement",
        "production_line_retrofit",
    } <= set(names)


def _phrases(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tech_env_phrases.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("changes: []", "changes"),
        ("changes:\n  - name: a\n", "give phrases or patterns"),
        ("changes:\n  - name: a\n    phrases: [x]\n  - name: a\n    phrases: [y]\n", "unique"),
        ("changes:\n  - name: Bad Name\n    phrases: [x]\n", "name"),
        ("changes:\n  - name: a\n    patterns: ['(']\n", "not a valid regex"),
        ("changes:\n  - name: a\n    phrases: ['  ']\n", "an empty phrase"),
        ("changes:\n  - name: a\n    phrases: [x]\n    colour: red\n", "colour"),
        ("changes: [", "tech_env_phrases.yaml"),
    ],
)
def test_a_broken_phrases_file_is_refused_saying_why(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(TechEnvPhrasesInvalid, match="tech_env_phrases.yaml") as refused:
        load_tech_env_phrases(_phrases(tmp_path, text))
    assert message in str(refused.value)


def test_phrases_from_another_file_are_used(tmp_path: Path) -> None:
    phrases = load_tech_env_phrases(
        _phrases(tmp_path, "changes:\n  - name: plc_upgrade\n    phrases: [PLC升级]\n")
    )
    assert detect_tech_env_change("明年 plc 升级", phrases) == ["plc_upgrade"]
    assert detect_tech_env_change("系统迁移", phrases) == []
