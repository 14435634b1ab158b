"""Company names reduced to what identifies the company, and compared: one implementation.

`normalize_company_name` keeps the trade name and industry and drops the rest:
- NFKC (full-width letters, digits and brackets to half-width), lowercase;
- bracketed parts that only say where or what kind of unit it is: a province or city
  ((杭州), (Hangzhou)), 中国/China, a branch ((分公司), (滨江分公司)) or a partnership form
  ((有限合伙)); any other bracketed text is kept, without the brackets: (科技) is part of a name;
- a trailing branch after the company (某某有限公司杭州分公司);
- legal forms at the end: 集团/股份/有限(责任)/总/分 + 公司, and 集团 alone (a group and its
  companies are one customer to a sales team); Co., Ltd., Inc., LLC, Corp., GmbH and the like.
  厂 (factory) is kept: a plant may be its own legal unit, and the fuzzy score already
  tolerates one extra character in names of usual length (某某紧固件厂 vs 某某紧固件: 91);
- leading provinces, prefecture-level cities and full county-level names (浙江杭州某某 and
  杭州市萧山区某某 -> 某某), from `regions`; bare county-level names are not stripped, being
  more often a trade name than a place (东方, 江山), nor are 阿里 or 兴安 (see `city_names`);
- whitespace and punctuation.
No step may leave fewer than 2 characters: 杭州有限公司 normalises to 杭州, not to nothing.

The place a name carries (its prefix, or a bracket or branch naming one) is kept apart by
`company_region`: 杭州某某紧固件 and 宁波某某紧固件 are two companies in two cities (and two
territories), though both normalise to 某某紧固件. `company_similarity` caps the score of names
whose places contradict each other.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz import fuzz

from salesrail.text.regions import (
    city_names,
    county_names,
    province_names,
    resolve_city,
    resolve_province,
)

__all__ = [
    "BLOCK_LENGTH",
    "REGION_CONFLICT_CAP",
    "company_block",
    "company_region",
    "company_similarity",
    "key_similarity",
    "normalize_company_name",
    "regions_conflict",
]

BLOCK_LENGTH = 2
# Names in two different cities (or provinces) score at most this: below any sensible
# duplicate threshold, but not 0, so a contract check can still say "same name, other city".
REGION_CONFLICT_CAP = 50.0
_MIN_LENGTH = 2  # a registered trade name has at least two characters

_LEGAL_ZH = tuple(
    sorted(
        (
            "集团股份有限公司",
            "集团有限责任公司",
            "集团有限公司",
            "股份有限公司",
            "有限责任公司",
            "有限公司",
            "集团公司",
            "股份公司",
            "总公司",
            "分公司",
            "公司",
            "集团",
        ),
        key=len,
        reverse=True,
    )
)
_LEGAL_LATIN = (
    "co",
    "company",
    "corp",
    "corporation",
    "inc",
    "incorporated",
    "ltd",
    "limited",
    "llc",
    "plc",
    "llp",
    "lp",
    "gmbh",
    "ag",
    "sa",
    "pte",
    "pty",
    "group",
    "holding",
    "holdings",
)
# A whole word at the end, followed by punctuation only: "acme co, ltd" -> "acme".
_LEGAL_LATIN_RE = re.compile(
    r"(?<![a-z0-9])(?:%s)[^a-z0-9\u3400-\u9fff]*$" % "|".join(_LEGAL_LATIN)  # noqa: UP031
)
_BRANCH_ZH = ("分公司", "分厂", "办事处", "营业部", "分店")
_BRANCH_WORDS = (*_BRANCH_ZH, "branchoffice", "branch")
# A branch after the company: 某某有限公司杭州分公司 (group 1 is where the branch is).
_BRANCH_RE = re.compile(r"(?<=公司|集团)([^()]{0,20}?)(?:%s)$" % "|".join(_BRANCH_ZH))  # noqa: UP031
_MARKERS = frozenset(
    {"中国", "china", "集团", "group", "总部", "总公司", "有限合伙", "普通合伙", "特殊普通合伙"}
)
_BRACKETS_RE = re.compile(r"[(\[【〔]([^()\[\]【】〔〕]*)[)\]】〕]")
_LATIN_WORD_RE = re.compile(r"([a-z]+)[^a-z0-9\u3400-\u9fff]+")


def _alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _enough(text: str) -> bool:
    return len(_alnum(text)) >= _MIN_LENGTH


def _place(text: str) -> str | None:
    """The canonical name of the city or province `text` names, if any."""
    if not _alnum(text):
        return None
    if (city := resolve_city(text)) is not None:
        return city.name
    province = resolve_province(text)
    return province.name if province is not None else None


def _marker(content: str) -> tuple[bool, str | None]:
    """Whether a bracketed text only marks a place or a kind of unit, and the place it names."""
    text = _alnum(content)
    for word in _BRANCH_WORDS:
        if text.endswith(word):
            return True, _place(text[: -len(word)])
    if text in _MARKERS:
        return True, None
    place = _place(text)
    return place is not None, place


def _strip_legal(text: str) -> str:
    """Drop trailing legal forms and branches, as long as enough is left."""
    while True:
        text = text.rstrip(" ,;:-_/&")
        if (branch := _BRANCH_RE.search(text)) and _enough(text[: branch.start()]):
            text = text[: branch.start()]
            continue
        zh = next((s for s in _LEGAL_ZH if text.endswith(s)), None)
        if zh and _enough(text[: -len(zh)]):
            text = text[: -len(zh)]
            continue
        if (latin := _LEGAL_LATIN_RE.search(text)) and _enough(text[: latin.start()]):
            text = text[: latin.start()]
            continue
        return text


@lru_cache(maxsize=1)
def _prefix_forms() -> tuple[frozenset[str], int, frozenset[str]]:
    forms = frozenset(province_names()) | frozenset(city_names()) | frozenset(county_names())
    latin = frozenset(province_names(latin=True)) | frozenset(city_names(latin=True))
    return forms, max(map(len, forms)), latin


@lru_cache(maxsize=1)
def _county_forms() -> frozenset[str]:
    return frozenset(county_names())


def _strip_places(text: str) -> tuple[str, str | None]:
    """Drop leading places (浙江省杭州市萧山区, Hangzhou), keeping the most specific one."""
    forms, longest, latin_forms = _prefix_forms()
    found: str | None = None
    while True:
        text = text.lstrip(" ,;:-_/&")
        # 市 then 场 is 市场 (market), not the end of a city: 义乌市场发展 keeps its 义乌.
        head = next(
            (
                text[:n]
                for n in range(min(longest, len(text)), 1, -1)
                if text[:n] in forms and text[n - 1 : n + 1] != "市场"
            ),
            None,
        )
        if head is None and (word := _LATIN_WORD_RE.match(text)):
            head = word.group(0) if word.group(1) in latin_forms else None
        if head is None or not _enough(text[len(head) :]):
            return text, found
        place = _place(head)
        if found is None or resolve_city(found) is None:  # a city refines a province
            found = place or found
        text = text[len(head) :]


@lru_cache(maxsize=8192)
def _parse(name: str) -> tuple[str, str | None]:
    """(normalised name, canonical place named in it or None)."""
    text = unicodedata.normalize("NFKC", name or "").lower().replace(".", " ")
    text = re.sub(r"\s+", " ", text).strip()
    place: str | None = None

    def unwrap(match: re.Match[str]) -> str:
        nonlocal place
        is_marker, named = _marker(match.group(1))
        place = place or named
        return " " if is_marker else f" {match.group(1)} "

    unwrapped = _BRACKETS_RE.sub(unwrap, text)
    text = unwrapped if _enough(unwrapped) else text
    before_legal = text
    text = _strip_legal(text)
    if branch := _BRANCH_RE.search(before_legal):  # 某某有限公司宁波分公司: the branch's city
        place = place or _place(branch.group(1))
    text, prefix_place = _strip_places(text)
    return _short_if_place(_alnum(text)), place or prefix_place


def _short_if_place(key: str) -> str:
    """A name that is only a place, in one spelling: 杭州市 (有限公司) -> 杭州, like 杭州公司."""
    if key not in _prefix_forms()[0] or key in _county_forms():
        return key
    found = resolve_city(key) or resolve_province(key)
    return found.short if found is not None and found.short else key


def normalize_company_name(name: str) -> str:
    """The comparable core of a company name: 杭州某某紧固件有限公司 -> 某某紧固件."""
    return _parse(name)[0]


def company_region(name: str) -> str | None:
    """The city (杭州市) or else province (浙江省) a company name names, or None."""
    return _parse(name)[1]


def regions_conflict(a: str | None, b: str | None) -> bool:
    """Whether two places are known and cannot be the same (杭州市 vs 宁波市, or vs 江苏省)."""
    if not a or not b or a == b:
        return False
    city_a, city_b = resolve_city(a), resolve_city(b)
    if city_a is not None and city_b is not None:
        return city_a != city_b
    province_a = city_a.province if city_a else getattr(resolve_province(a), "name", None)
    province_b = city_b.province if city_b else getattr(resolve_province(b), "name", None)
    return province_a is not None and province_b is not None and province_a != province_b


def key_similarity(
    a: str, b: str, *, region_a: str | None = None, region_b: str | None = None
) -> float:
    """0..100 between two normalised names, capped when their places are known to differ.

    fuzz.ratio (normalised Indel distance) is the scorer: Chinese names have no spaces, so the
    token scorers degrade to it anyway, and partial_ratio / WRatio score a name contained in a
    longer one as (nearly) equal, which for 2-6 character names makes different companies
    match (某某 in 某某紧固件). ratio costs each differing character its share of the length.
    """
    if not a or not b:
        return 0.0
    score = float(fuzz.ratio(a, b))
    return min(score, REGION_CONFLICT_CAP) if regions_conflict(region_a, region_b) else score


def company_similarity(a: str, b: str) -> float:
    """0..100 between two company names (raw, or already normalised: then places are unknown)."""
    key_a, region_a = _parse(a)
    key_b, region_b = _parse(b)
    return key_similarity(key_a, key_b, region_a=region_a, region_b=region_b)


def company_block(normalised: str) -> str:
    """The first characters of a normalised name: fuzzy matching compares only within a block.

    The trade-off: a lookup compares a handful of rows instead of every lead in the window,
    but names that differ in their first two characters (a typo there, or a county prefix left
    in place, 萧山某某 vs 某某) are never compared. The phone number still catches those.
    """
    return normalised[:BLOCK_LENGTH]
