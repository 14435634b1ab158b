"""First-character screens: a regex's matches begin with one of these characters, so a text
without any is not searched. Answers are the same with or without them."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from activity.memo import default_memo_patterns, extract_memo_facts, key_people
from activity.screens import first_chars
from activity.tech_env import default_tech_env_phrases, detect_tech_env_change


@pytest.mark.parametrize(
    ("pattern", "flags", "expected"),
    [
        (r"(?<![a-z0-9])erp(?![a-z0-9])", re.IGNORECASE, "[e]"),
        (r"(?:replac(?:e|ing)|switch(?:ing)?) (?:\w+ ){0,3}mes\b", 0, "[rs]"),
        (r"a?b", 0, "[ab]"),
        (r"(?:a|)?[x-z]+", 0, "[ax-z]"),
        (r"(?-i:[A-Z][a-z]+)\s+zong", re.IGNORECASE, "[A-Z]"),
        (r"^\s*决策人", re.MULTILINE, None),  # \s: any whitespace
        (r"a*", 0, None),  # may be empty
        (r"x|", 0, None),
        (r"(?=a)", 0, None),
        (r"\w+x", 0, None),
        (r"[^a]b", 0, None),
        (r".b", 0, None),
        (r"(a)\1", 0, "[a]"),
        (r"(a)?\1b", 0, None),  # the group may be unset: the reference may begin it
    ],
)
def test_the_first_characters_of_a_pattern(pattern: str, flags: int, expected: str | None) -> None:
    screen = first_chars(re.compile(pattern, flags))
    assert (screen.pattern if screen else None) == expected
    if screen is not None:
        assert screen.flags & re.IGNORECASE  # a superset whatever the pattern's own flags


def test_a_screen_ignores_case_as_the_pattern_does() -> None:
    pattern = re.compile(r"(?<![a-z])mes\b", re.IGNORECASE)
    screen = first_chars(pattern)
    assert screen is not None
    for text in ("MES", "mes", "\u017fmes", "ſ", "K", "\u212a"):  # long s, Kelvin sign
        if pattern.search(text):
            assert screen.search(text)


def _texts() -> list[str]:
    """Every string of the memo and tech-env tests, and a few more, each alone and joined."""
    here = Path(__file__).parent
    found: list[str] = []
    for name in ("test_memo.py", "test_tech_env.py"):
        tree = ast.parse((here / name).read_text(encoding="utf-8"))
        found += [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ]
    found += [
        "电话回访：客户关心交期\n决策人是王总，预算50-80万，下一步：下周安排方案演示",
        "ＥＲＰ替换，ＭＥＳ升级",
        "Mr. Chen says the ERP replacement is on hold; Wang Zong decides.",
        "",
        " ",
    ]
    return [*dict.fromkeys(found), "\n".join(found)]


def test_tech_env_answers_the_same_with_and_without_screens() -> None:
    phrases = default_tech_env_phrases()
    assert any(screen is not None for screen in phrases.screens)
    unscreened = dataclasses.replace(phrases, screens=())
    for text in _texts():
        assert detect_tech_env_change(text, phrases) == detect_tech_env_change(text, unscreened)


def test_memo_answers_the_same_with_and_without_screens() -> None:
    patterns = default_memo_patterns()
    assert any(screen is not None for screen in patterns.key_people_screens)
    unscreened = dataclasses.replace(
        patterns,
        decision_maker=dataclasses.replace(patterns.decision_maker, screens=()),
        budget=dataclasses.replace(patterns.budget, screens=()),
        next_step=dataclasses.replace(patterns.next_step, screens=()),
        key_people_screens=(),
    )
    for text in _texts():
        assert extract_memo_facts(text, patterns) == extract_memo_facts(text, unscreened)
        assert key_people(text, patterns) == key_people(text, unscreened)
