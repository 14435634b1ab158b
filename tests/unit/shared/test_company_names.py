"""One company-name normaliser for the project: what it strips, what it keeps, how it compares."""

from __future__ import annotations

import pytest
from rapidfuzz import fuzz

from salesrail.text.company_names import (
    REGION_CONFLICT_CAP,
    company_block,
    company_region,
    company_similarity,
    key_similarity,
    normalize_company_name,
    regions_conflict,
)

THRESHOLD = 90.0  # a sensible duplicate threshold


def test_the_platform_notes_example_90_raw_100_after_stripping() -> None:
    a, b = "杭州某某紧固件公司", "杭州某某紧固件有限公司"
    assert fuzz.ratio(a, b) == 90
    assert company_similarity(a, b) == 100


@pytest.mark.parametrize(
    ("name", "normalised", "region"),
    [
        ("杭州某某紧固件有限公司", "某某紧固件", "杭州市"),
        ("某某紧固件(杭州)有限公司", "某某紧固件", "杭州市"),
        ("某某紧固件（杭州）有限公司", "某某紧固件", "杭州市"),  # full-width brackets
        ("杭州某某紧固件公司", "某某紧固件", "杭州市"),
        ("宁波某某紧固件有限公司", "某某紧固件", "宁波市"),
        ("浙江杭州某某", "某某", "杭州市"),
        ("浙江省杭州市某某紧固件股份有限公司", "某某紧固件", "杭州市"),
        ("浙江某某机械有限责任公司", "某某机械", "浙江省"),
        ("  杭州 某某·紧固件 有限公司 ", "某某紧固件", "杭州市"),
        ("某某集团有限公司", "某某", None),
        ("某某集团股份有限公司", "某某", None),
        ("某某集团", "某某", None),
        ("某某有限公司杭州分公司", "某某", "杭州市"),
        ("某某紧固件有限公司宁波分公司", "某某紧固件", "宁波市"),
        ("某某有限公司(杭州分公司)", "某某", "杭州市"),
        ("某某有限公司（分公司）", "某某", None),
        ("某某投资(有限合伙)", "某某投资", None),
        ("阿里巴巴(中国)有限公司", "阿里巴巴", None),  # 阿里 is also 阿里地区: not stripped
        ("某某（科技）有限公司", "某某科技", None),  # not a marker: kept, brackets dropped
        ("某某紧固件厂", "某某紧固件厂", None),  # a factory may be its own legal unit
        ("东方电气股份有限公司", "东方电气", None),  # 东方市 is county-level: a trade name here
        ("北京某某科技有限公司", "某某科技", "北京市"),
        ("浙江省杭州市萧山区某某紧固件有限公司", "某某紧固件", "杭州市"),
        ("义乌市某某贸易有限公司", "某某贸易", "金华市"),  # a full county-level name is a place
        ("义乌某某贸易有限公司", "义乌某某贸易", None),  # a bare one may be a trade name
        ("杭州萧山某某有限公司", "萧山某某", "杭州市"),
        ("义乌市场发展集团有限公司", "义乌市场发展", None),  # 市场 is a market, not 义乌市
        ("杭州市场营销策划有限公司", "市场营销策划", "杭州市"),
        ("恩施州某某茶业有限公司", "某某茶业", "恩施土家族苗族自治州"),
        ("ACME Fasteners Co., Ltd.", "acmefasteners", None),
        ("Acme Fasteners Co.,Ltd", "acmefasteners", None),
        ("ACME FASTENERS LIMITED", "acmefasteners", None),
        ("Hangzhou Acme Fasteners Co., Ltd.", "acmefasteners", "杭州市"),
        ("Acme Fasteners (Hangzhou) Co., Ltd.", "acmefasteners", "杭州市"),
        ("Apple Inc.", "apple", None),
        ("Acme Holdings LLC", "acme", None),
        ("Ｈａｎｇｚｈｏｕ ＡＣＭＥ　有限公司", "acme", "杭州市"),  # full-width Latin
        ("华为技术有限公司", "华为技术", None),
    ],
)
def test_normalisation(name: str, normalised: str, region: str | None) -> None:
    assert normalize_company_name(name) == normalised
    assert company_region(name) == region


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("杭州有限公司", "杭州"),
        ("浙江杭州有限公司", "杭州"),
        ("浙江省杭州市有限公司", "杭州"),
        ("北京公司", "北京"),
        ("有限公司", "有限公司"),
        ("集团", "集团"),
        ("(杭州)", "杭州"),
        ("Hangzhou Co., Ltd.", "hangzhou"),
        ("Company", "company"),
        ("天津港集团有限公司", "天津港"),
    ],
)
def test_a_name_that_is_only_a_place_or_a_legal_form_never_becomes_empty(
    name: str, normalised: str
) -> None:
    assert normalize_company_name(name) == normalised


def test_normalising_twice_changes_nothing() -> None:
    for name in (
        "杭州某某紧固件有限公司",
        "ACME Fasteners Co., Ltd.",
        "浙江杭州有限公司",
        "某某(科技)",
    ):
        once = normalize_company_name(name)
        assert normalize_company_name(once) == once


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ("某某紧固件(杭州)有限公司", True),
        ("杭州某某紧固件公司", True),
        ("某某紧固件有限公司", True),  # no place given: no conflict
        ("浙江某某紧固件有限公司", True),  # Hangzhou is in Zhejiang
        ("浙江省杭州市某某紧固件股份有限公司", True),
        ("某某紧固件厂", True),  # one extra character in a name of six: 91
        ("某某紧固件有限公司杭州分公司", True),
        ("宁波某某紧固件有限公司", False),  # another city: another company, another territory
        ("某某紧固件(宁波)有限公司", False),
        ("江苏某某紧固件有限公司", False),  # another province
        ("杭州某某五金有限公司", False),
        ("杭州某某机械有限公司", False),
        ("杭州某达紧固件有限公司", False),  # one character of the trade name differs: 80
        ("义乌市某某紧固件有限公司", False),  # 义乌 is in 金华
    ],
)
def test_similarity_against_a_hangzhou_fastener_maker(other: str, same: bool) -> None:
    score = company_similarity("杭州某某紧固件有限公司", other)
    assert (score >= THRESHOLD) is same, score
    assert 0.0 <= score <= 100.0


def test_english_names_compare_after_stripping_legal_forms() -> None:
    assert company_similarity("ACME Fasteners Co., Ltd.", "Acme Fasteners Limited") == 100
    assert company_similarity("Acme Fasteners Inc.", "Acme Fastener Inc.") >= THRESHOLD
    assert company_similarity("Acme Fasteners", "Apex Fasteners") < THRESHOLD
    assert company_similarity("Hangzhou Acme Co., Ltd.", "Ningbo Acme Co., Ltd.") <= 50


def test_different_places_cap_the_score_and_unknown_places_do_not() -> None:
    assert company_similarity("杭州某某紧固件", "宁波某某紧固件") == REGION_CONFLICT_CAP
    assert key_similarity("某某紧固件", "某某紧固件") == 100
    assert key_similarity("某某紧固件", "某某紧固件", region_a="杭州市", region_b="宁波市") == 50
    assert key_similarity("", "") == 0 and key_similarity("某某", "") == 0


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        ("杭州市", "宁波市", True),
        ("杭州市", "杭州市", False),
        ("杭州市", "浙江省", False),
        ("杭州市", "江苏省", True),
        ("浙江省", "江苏省", True),
        ("北京市", "北京市", False),
        ("北京市", "上海市", True),
        ("杭州市", None, False),
        (None, None, False),
    ],
)
def test_regions_conflict(a: str | None, b: str | None, conflict: bool) -> None:
    assert regions_conflict(a, b) is conflict
    assert regions_conflict(b, a) is conflict


def test_block_is_the_first_two_characters_of_the_normalised_name() -> None:
    assert company_block(normalize_company_name("杭州某某紧固件有限公司")) == "某某"
    assert company_block(normalize_company_name("某某紧固件(杭州)有限公司")) == "某某"
    assert company_block(normalize_company_name("ACME Co., Ltd.")) == "ac"
    assert company_block("") == ""
