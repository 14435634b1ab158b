"""Chinese provinces and cities in any common form (杭州, 杭州市, Hangzhou, 浙江杭州), from data.

The names come from the adcode table shipped by the `cpca` package (the national GB/T 2260
division codes), read directly: importing `cpca` itself fails without `pkg_resources`.
The index is built once, on first use (~0.4 s, most of it pypinyin loading its dictionary;
call `warm_up` at start-up), after which a lookup is a dict access, and a repeated one a hit
in a bounded cache.

A `City` is a prefecture-level unit (杭州市, 恩施土家族苗族自治州, 阿里地区, 兴安盟); a
municipality or SAR (北京市, 香港特别行政区) is both its own province and its only city; a
county-level unit directly under a province (仙桃市, 济源市, 石河子市) stands for itself, having
no prefecture above it. Districts and counties (西湖区, 义乌市) resolve to their city when
the name is unambiguous; 西湖区 alone is not (杭州 and 南昌 both have one), 浙江西湖区 is.

Rules that keep a lookup from silently picking one of several places:
- a name shared by several places at the same rank resolves to None (福州/抚州 are both
  "fuzhou", 山西/陕西 both "shanxi": only the Chinese name, or "Shaanxi", tells them apart);
- a city's short form that is also a province's name is left out (吉林 is the province,
  吉林市 the city; 海南 is the province, not 海南藏族自治州);
- higher ranks win over lower ones: a city's own name over a district's, the standard reading
  of a name over an alternative reading of a polyphonic character (长治 is "changzhi", but
  pypinyin reads it "zhangzhi": both are accepted, the standard one first).
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "City",
    "Province",
    "city_names",
    "county_names",
    "province_names",
    "resolve_city",
    "resolve_province",
    "warm_up",
]


@dataclass(frozen=True)
class Province:
    """A province-level unit by its full name, e.g. 浙江省, 广西壮族自治区, 上海市."""

    name: str
    adcode: str = field(default="", compare=False)  # 6 digits, e.g. "330000"
    short: str = field(default="", compare=False, repr=False)  # e.g. 浙江, 广西


@dataclass(frozen=True)
class City:
    """A city by its full name and its province's full name; the pair identifies it."""

    name: str
    province: str
    adcode: str = field(default="", compare=False)  # 6 digits, e.g. "330100"
    short: str = field(default="", compare=False, repr=False)  # e.g. 杭州


# Ranks of a name form, lower wins when a form names several places. A district's standard
# reading outranks a city's alternative one: "jinjiang" is 晋江 (a county-level city of 泉州),
# not 湛江 read with an unusual reading of 湛.
_CITY, _COUNTY, _CITY_ALT, _COUNTY_ALT = 0, 1, 2, 3

# The standard's placeholder rows under municipalities, and its containers of county-level
# units governed directly by a province (省直辖县级行政区划).
_PLACEHOLDERS = frozenset({"市辖区", "县"})
_DIRECT_CONTAINER_SUFFIX = "行政区划"
# Suffixes dropped to get the short form, most specific first.
_SUFFIXES = ("特别行政区", "自治区", "自治州", "地区", "林区", "省", "市", "盟")
# Conventional English names that are not pinyin. Shaanxi is the official spelling that tells
# 陕西 from 山西; the others are what foreign-language forms actually say.
_EXONYMS = {
    "陕西省": ("shaanxi",),
    "内蒙古自治区": ("innermongolia",),
    "西藏自治区": ("tibet",),
    "香港特别行政区": ("hongkong",),
    "澳门特别行政区": ("macau", "macao"),
}
# Trailing English words dropped when a Latin form does not resolve as is ("Hangzhou City").
_EN_SUFFIXES = (
    "specialadministrativeregion",
    "autonomousregion",
    "municipality",
    "prefecture",
    "province",
    "region",
    "city",
    "sar",
)
_MAX_READINGS = 16  # alternative readings kept per name: polyphonic names multiply fast


def _key(text: str) -> str:
    """The lookup form of a name: NFKC, lowercase, letters and digits only, ü as v."""
    folded = unicodedata.normalize("NFKC", text).lower().replace("ü", "v")
    return "".join(ch for ch in folded if ch.isalnum())


def _data_dir() -> Path:
    spec = importlib.util.find_spec("cpca")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package (China's division codes) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


def _read_rows(data_dir: Path) -> list[tuple[str, str]]:
    with open(data_dir / "adcodes.csv", encoding="utf-8", newline="") as f:
        return [(row["adcode"][:6], row["name"].strip()) for row in csv.DictReader(f)]


def _ethnic_suffixes(data_dir: Path) -> tuple[str, ...]:
    """Names of the 56 ethnic groups, with and without 族 (蒙古, 哈萨克), longest first."""
    with open(data_dir / "56_nations.csv", encoding="utf-8") as f:
        names = {line.strip() for line in f if line.strip()}
    # A one-character name without 族 (回, 藏) would eat into place names: keep 族 there.
    bare = {n[:-1] for n in names if n.endswith("族") and len(n) > 2}
    return tuple(sorted(names | bare, key=len, reverse=True))


def _short_name(full: str, ethnic: tuple[str, ...]) -> str:
    """杭州市 -> 杭州, 广西壮族自治区 -> 广西, 恩施土家族苗族自治州 -> 恩施; never below 2 chars."""
    for suffix in _SUFFIXES:
        if full.endswith(suffix) and len(full) - len(suffix) >= 2:
            base = full[: -len(suffix)]
            if suffix.startswith("自治"):
                base = _strip_ethnic(base, ethnic)
            return base
    return full


def _strip_ethnic(base: str, ethnic: tuple[str, ...]) -> str:
    stripped = True
    while stripped:
        stripped = False
        for name in ethnic:
            if base.endswith(name) and len(base) - len(name) >= 2:  # 内蒙古 stays 内蒙古
                base, stripped = base[: -len(name)], True
                break
    return base


def _readings(text: str) -> tuple[str, set[str]]:
    """The standard pinyin of a name, and alternative readings (polyphones, ü as u)."""
    from pypinyin import Style, lazy_pinyin, pinyin

    standard = "".join(lazy_pinyin(text))
    options = pinyin(text, style=Style.NORMAL, heteronym=True)
    combinations = itertools.islice(itertools.product(*options), _MAX_READINGS)
    alternatives = {"".join(c) for c in combinations}
    alternatives |= {r.replace("v", "u") for r in alternatives | {standard}}
    return standard, alternatives - {standard}


_P = TypeVar("_P", "City", "Province")


class _Index:
    """Name forms -> places, with the rank each form names each place at."""

    def __init__(self) -> None:
        self.cities: dict[str, dict[City, int]] = {}
        self.provinces: dict[str, dict[Province, int]] = {}
        self.city_forms: set[str] = set()  # Chinese forms of prefecture-level cities
        self.province_forms: set[str] = set()
        self.latin_city_forms: set[str] = set()  # their standard pinyin: hangzhou, hangzhoushi
        self.latin_province_forms: set[str] = set()
        self.county_of: dict[str, set[City]] = {}  # Chinese county names -> their cities
        self.county_forms: set[str] = set()  # full county-level names: 西湖区, 义乌市, 东方市

    def add_city(self, form: str, city: City, rank: int) -> bool:
        key = _key(form)
        # A city's name that is also a province's is the province's (吉林, 海南).
        if not key or (key in self.provinces and city.province != city.name):
            return False
        ranks = self.cities.setdefault(key, {})
        ranks[city] = min(rank, ranks.get(city, rank))
        return True

    def add_province(self, form: str, province: Province, rank: int) -> bool:
        ranks = self.provinces.setdefault(_key(form), {})
        ranks[province] = min(rank, ranks.get(province, rank))
        return True


def _pick(ranks: dict[_P, int] | None, in_province: str | None = None) -> tuple[bool, _P | None]:
    """(known, place): the one place at the best rank, or known but None when several."""
    if not ranks:
        return False, None
    if in_province is not None:
        ranks = {p: r for p, r in ranks.items() if getattr(p, "province", None) == in_province}
        if not ranks:
            return False, None
    best = min(ranks.values())
    places = [p for p, r in ranks.items() if r == best]
    return True, places[0] if len(places) == 1 else None


def _build() -> _Index:
    data_dir = _data_dir()
    rows = _read_rows(data_dir)
    ethnic = _ethnic_suffixes(data_dir)
    index = _Index()

    provinces = {
        code[:2]: Province(name, code, _short_name(name, ethnic))
        for code, name in rows
        if code[2:] == "0000"
    }
    prefectures = [(code, name) for code, name in rows if code[4:] == "00" and code[2:] != "0000"]
    counties = [(code, name) for code, name in rows if code[4:] != "00"]

    for province in provinces.values():
        for form in (province.name, province.short):
            index.add_province(form, province, _CITY)
            index.province_forms.add(form)
        index.latin_province_forms |= _add_latin(
            index.add_province, province, (province.short, province.name), _CITY, _CITY_ALT
        )

    # Which prefecture-level code (4 digits) each county belongs to, as a City.
    city_of_prefix: dict[str, City] = {}
    real_prefecture = {code[:2] for code, name in prefectures if name not in _PLACEHOLDERS}
    for prefix, province in provinces.items():
        if prefix not in real_prefecture:  # municipalities, SARs: one city, the province itself
            city = City(province.name, province.name, province.adcode, province.short)
            for code, _ in prefectures:
                if code[:2] == prefix:
                    city_of_prefix[code[:4]] = city
            _index_city(index, city)
            for form in _EXONYMS.get(province.name, ()):
                index.add_city(form, city, _CITY)
    for code, name in prefectures:
        if name in _PLACEHOLDERS or name.endswith(_DIRECT_CONTAINER_SUFFIX):
            continue
        province = provinces[code[:2]]
        city = City(name, province.name, code, _short_name(name, ethnic))
        city_of_prefix[code[:4]] = city
        _index_city(index, city)

    direct_prefixes = {
        code[:4] for code, name in prefectures if name.endswith(_DIRECT_CONTAINER_SUFFIX)
    }
    for code, name in counties:
        if code[:4] in direct_prefixes:  # 仙桃市: a city of its own, but not a prefix to strip
            index.county_forms.add(name)
            province = provinces[code[:2]]
            city = City(name, province.name, code, _short_name(name, ethnic))  # 神农架
            _index_city(index, city, prefix=False)
    for code, name in counties:
        city = city_of_prefix.get(code[:4])
        if city is None or name in _PLACEHOLDERS:
            continue
        index.county_of.setdefault(_key(name), set()).add(city)
        if len(name) >= 3:  # 城区, 郊区, 矿区 are words before they are places
            index.county_forms.add(name)
        index.add_city(name, city, _COUNTY)
        if name.endswith("市"):  # county-level cities go by their short name too: 义乌, 昆山
            short = _short_name(name, ethnic)
            index.add_city(short, city, _COUNTY)
            _add_latin(index.add_city, city, (short,), _COUNTY, _COUNTY_ALT)
    return index


def _index_city(index: _Index, city: City, prefix: bool = True) -> None:
    """Index a city's Chinese and pinyin forms; `prefix`: may they be stripped from names."""
    forms = [city.name, city.short]
    if city.name.endswith("自治州"):
        forms.append(city.short + "州")  # 恩施州, 延边州
    for form in forms:
        # Bare short forms of 地区/盟/自治州 are not prefixes to strip: 阿里巴巴 is not in 阿里.
        strippable = prefix and (form != city.short or city.name.endswith("市"))
        if index.add_city(form, city, _CITY) and strippable:  # and not a province's (吉林)
            index.city_forms.add(form)
    latin = _add_latin(index.add_city, city, (city.short, city.name), _CITY, _CITY_ALT)
    if prefix:
        if not city.name.endswith("市"):  # as above: "Ali Health" keeps its "ali"
            latin.discard(_readings(city.short)[0])
        index.latin_city_forms |= latin


def _add_latin(
    add: Callable[[str, Any, int], bool],
    place: City | Province,
    forms: Iterable[str],
    rank: int,
    alt_rank: int,
) -> set[str]:
    """Pinyin forms: 'hangzhou' (and 'hangzhoushi') at `rank`, other readings at `alt_rank`.

    Returns the standard forms that were indexed.
    """
    indexed: set[str] = set()
    for i, form in enumerate(forms):
        standard, alternatives = _readings(form)
        if add(standard, place, rank):
            indexed.add(standard)
        if i == 0:  # alternatives of the short form only: the full form adds nothing useful
            for reading in alternatives:
                add(reading, place, alt_rank)
    if isinstance(place, Province):
        for exonym in _EXONYMS.get(place.name, ()):
            if add(exonym, place, rank):
                indexed.add(exonym)
    return indexed


@lru_cache(maxsize=1)
def _index() -> _Index:
    return _build()


def warm_up() -> None:
    """Build the index now (at service start) rather than on the first lookup."""
    _index()


def _city(index: _Index, key: str, province: str | None) -> City | None:
    known, city = _pick(index.cities.get(key), province)
    if known:
        return city
    # A city followed by one of its districts: 杭州市西湖区, 杭州西湖区.
    for i in range(len(key) - 1, 1, -1):
        _, city = _pick(index.cities.get(key[:i]), province)
        if city is not None and city in index.county_of.get(key[i:], ()):
            return city
    return None


def _resolve_city(index: _Index, key: str) -> City | None:
    known, city = _pick(index.cities.get(key))
    if known:
        return city  # None when ambiguous: peeling would not make it less so
    # A province first: 浙江杭州, 浙江省杭州市西湖区, zhejianghangzhou.
    for i in range(len(key) - 1, 1, -1):
        _, province = _pick(index.provinces.get(key[:i]))
        if province is not None and (city := _city(index, key[i:], province.name)):
            return city
    if (city := _city(index, key, None)) is not None:
        return city
    if key.endswith("市") and len(key) > 2:
        # A 地区 that became a 市 after the data was made: 那曲市 is 那曲地区.
        return _resolve_city(index, key[:-1])
    if key.isascii():
        # English order, province last: "Hangzhou, Zhejiang"; or a trailing "City".
        for i in range(2, len(key) - 1):
            _, province = _pick(index.provinces.get(key[i:]))
            if province is not None and (city := _city(index, key[:i], province.name)):
                return city
        for suffix in _EN_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                return _resolve_city(index, key[: -len(suffix)])
    return None


@lru_cache(maxsize=8192)
def resolve_city(text: str) -> City | None:
    """The city a name denotes (杭州, 杭州市, Hangzhou, 浙江杭州, 西湖区...), or None."""
    key = _key(text)
    return _resolve_city(_index(), key) if key else None


@lru_cache(maxsize=1024)
def resolve_province(text: str) -> Province | None:
    """The province a name denotes (浙江, 浙江省, Zhejiang, 广西, 内蒙古...), or None."""
    key = _key(text)
    index = _index()
    known, province = _pick(index.provinces.get(key))
    if known or not key.isascii():
        return province
    for suffix in _EN_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return _pick(index.provinces.get(key[: -len(suffix)]))[1]
    return None


@lru_cache(maxsize=2)
def city_names(*, latin: bool = False) -> tuple[str, ...]:
    """Forms of prefecture-level cities and municipalities (杭州市, 杭州), longest first.

    Meant for stripping a place from the start of a name, so left out are the forms that are
    more often a trade name there: county-level names (义乌, and 东方 or 五指山, governed
    directly by Hainan) and the bare short forms of 地区/盟/自治州 (阿里, 兴安; 阿里地区 and
    恩施州 are in). With `latin`, the standard pinyin of the cities instead (hangzhou).
    """
    forms = _index().latin_city_forms if latin else _index().city_forms
    return tuple(sorted(forms, key=lambda s: (-len(s), s)))


@lru_cache(maxsize=1)
def county_names() -> tuple[str, ...]:
    """Full names of county-level units (西湖区, 义乌市, 东方市), longest first.

    Only full names: 义乌市 at the start of a company name is a place, 义乌 may be a trade name.
    """
    return tuple(sorted(_index().county_forms, key=lambda s: (-len(s), s)))


@lru_cache(maxsize=2)
def province_names(*, latin: bool = False) -> tuple[str, ...]:
    """Forms of provinces (浙江省, 浙江, 广西壮族自治区, 广西), longest first; or their pinyin."""
    forms = _index().latin_province_forms if latin else _index().province_forms
    return tuple(sorted(forms, key=lambda s: (-len(s), s)))
