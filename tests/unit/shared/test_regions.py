"""Provinces and cities resolve from any common form, from cpca's data, never by a guess."""

from __future__ import annotations

import time

import pytest

from salesrail.text.regions import (
    City,
    Province,
    city_names,
    county_names,
    province_names,
    resolve_city,
    resolve_province,
    warm_up,
)

HANGZHOU = City(name="杭州市", province="浙江省", adcode="330100")


@pytest.mark.parametrize(
    "text",
    [
        "杭州",
        "杭州市",
        "Hangzhou",
        "hangzhou",
        "HANGZHOU",
        "Hang Zhou",
        " 杭州 ",
        "浙江杭州",
        "浙江省杭州市",
        "浙江省 杭州市",
        "杭州市西湖区",
        "浙江省杭州市西湖区",
        "Hangzhou City",
        "Hangzhou, Zhejiang",
        "Zhejiang Hangzhou",
        "ＨＡＮＧＺＨＯＵ",
        "余杭区",
    ],
)
def test_every_common_form_of_a_city_resolves_to_it(text: str) -> None:
    city = resolve_city(text)
    assert city == HANGZHOU
    assert (city.adcode, city.short) == ("330100", "杭州")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("浙江", "浙江省"),
        ("浙江省", "浙江省"),
        ("Zhejiang", "浙江省"),
        ("zhejiang province", "浙江省"),
        ("广西壮族自治区", "广西壮族自治区"),
        ("广西", "广西壮族自治区"),
        ("Guangxi", "广西壮族自治区"),
        ("内蒙古", "内蒙古自治区"),
        ("Inner Mongolia", "内蒙古自治区"),
        ("新疆", "新疆维吾尔自治区"),
        ("宁夏", "宁夏回族自治区"),
        ("西藏", "西藏自治区"),
        ("香港", "香港特别行政区"),
        ("北京", "北京市"),
        ("上海市", "上海市"),
        ("黑龙江", "黑龙江省"),
        ("Shaanxi", "陕西省"),
        ("陕西", "陕西省"),
        ("山西", "山西省"),
        ("吉林", "吉林省"),
    ],
)
def test_provinces_resolve_from_full_short_and_latin_names(text: str, name: str) -> None:
    province = resolve_province(text)
    assert province == Province(name=name)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("北京", "北京市"),
        ("Beijing", "北京市"),
        ("上海", "上海市"),
        ("天津市", "天津市"),
        ("Chongqing", "重庆市"),
        ("浦东新区", "上海市"),
        ("北京朝阳区", "北京市"),
        ("Hong Kong", "香港特别行政区"),
    ],
)
def test_municipalities_are_their_own_province_and_city(text: str, name: str) -> None:
    assert resolve_city(text) == City(name=name, province=name)
    assert resolve_province(name) == Province(name=name)


@pytest.mark.parametrize(
    ("text", "chinese", "expected"),
    [
        ("Fuzhou", "福州", City("福州市", "福建省")),
        ("Fuzhou", "抚州", City("抚州市", "江西省")),
        ("Taizhou", "台州", City("台州市", "浙江省")),
        ("Taizhou", "泰州", City("泰州市", "江苏省")),
        ("Suzhou", "苏州", City("苏州市", "江苏省")),
        ("Suzhou", "宿州", City("宿州市", "安徽省")),
        ("Yulin", "玉林", City("玉林市", "广西壮族自治区")),
        ("Yichun", "伊春", City("伊春市", "黑龙江省")),
    ],
)
def test_a_pinyin_shared_by_two_cities_picks_neither_the_chinese_name_does(
    text: str, chinese: str, expected: City
) -> None:
    assert resolve_city(text) is None
    assert resolve_city(chinese) == expected


def test_shanxi_is_two_provinces_and_shaanxi_one() -> None:
    assert resolve_province("Shanxi") is None
    assert resolve_province("Shaanxi") == Province("陕西省")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("西湖区", None),  # 杭州 and 南昌 both have one
        ("朝阳区", None),  # 北京 and 长春
        ("浙江西湖区", HANGZHOU),
        ("江西西湖区", City("南昌市", "江西省")),
        ("萧山区", HANGZHOU),
        ("义乌", City("金华市", "浙江省")),
        ("义乌市", City("金华市", "浙江省")),
        ("Yiwu", City("金华市", "浙江省")),
        ("昆山", City("苏州市", "江苏省")),
        ("Jinjiang", City("泉州市", "福建省")),
    ],  # 晋江, not 湛江 read oddly
)
def test_districts_and_county_level_cities_resolve_to_their_city_when_unambiguous(
    text: str, expected: City | None
) -> None:
    assert resolve_city(text) == expected


def test_a_city_short_name_that_is_a_province_is_the_province() -> None:
    assert resolve_city("吉林") is None and resolve_province("吉林") == Province("吉林省")
    assert resolve_city("吉林市") == City("吉林市", "吉林省")
    assert resolve_city("吉林省吉林市") == City("吉林市", "吉林省")
    assert resolve_city("海南") is None and resolve_province("海南") == Province("海南省")
    assert resolve_city("海南州") == City("海南藏族自治州", "青海省")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("恩施", City("恩施土家族苗族自治州", "湖北省")),
        ("恩施州", City("恩施土家族苗族自治州", "湖北省")),
        ("延边", City("延边朝鲜族自治州", "吉林省")),
        ("伊犁", City("伊犁哈萨克自治州", "新疆维吾尔自治区")),
        ("阿里", City("阿里地区", "西藏自治区")),
        ("兴安盟", City("兴安盟", "内蒙古自治区")),
        ("仙桃", City("仙桃市", "湖北省")),
        ("神农架", City("神农架林区", "湖北省")),
        ("那曲市", City("那曲地区", "西藏自治区")),  # a 市 since 2017; the data predates it
        ("Changzhi", City("长治市", "山西省")),
        ("Chaoyang", City("朝阳市", "辽宁省")),
        ("Xi'an", City("西安市", "陕西省")),
        ("Lüliang", City("吕梁市", "山西省")),
        ("Luliang", City("吕梁市", "山西省")),
    ],
)
def test_autonomous_prefectures_direct_units_and_polyphones(text: str, expected: City) -> None:
    assert resolve_city(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "火星", "Atlantis", "xyz", "浙江", "市", "中国"])
def test_what_is_not_a_city_resolves_to_none(text: str) -> None:
    assert resolve_city(text) is None


def test_names_for_stripping_are_chinese_longest_first_and_leave_out_trade_names() -> None:
    cities, provinces = city_names(), province_names()
    assert {"杭州", "杭州市", "北京", "恩施州", "阿里地区"} <= set(cities)
    assert not {"义乌", "东方", "五指山", "阿里", "吉林", "海南"} & set(cities)
    assert {"浙江", "浙江省", "广西", "广西壮族自治区", "内蒙古", "香港"} <= set(provinces)
    assert [len(n) for n in cities] == sorted((len(n) for n in cities), reverse=True)
    assert len(provinces) == 68  # 34 province-level units, full and short
    assert "hangzhou" in city_names(latin=True) and "zhejiang" in province_names(latin=True)
    counties = set(county_names())
    assert {"西湖区", "义乌市", "东方市", "萧山区"} <= counties
    assert not {"义乌", "东方", "城区", "杭州市"} & counties


def test_lookups_are_fast_once_the_index_is_built() -> None:
    warm_up()
    started = time.perf_counter()
    for i in range(2000):
        resolve_city(f"浙江省杭州市{i}")  # not cached: every one goes through the index
    assert time.perf_counter() - started < 1.0
