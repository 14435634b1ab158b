"""Facts a visit memo's transcript states: decision maker, budget range (CNY), next step, and
the named people it mentions. The patterns are data (`rules/memo_patterns.yaml`); this module
reads them, checks them once, and applies them. Pure: no I/O once the patterns are loaded.

What `key_people` recognises (see the YAML for the exact lists):
- Chinese: a common surname followed by a title — 王总, 李工, 张经理, 陈厂长, 欧阳总监, 刘老师
  — not after a numeral (50万总价) and not where 总/工 begin a word (总部, 工厂, 工资).
- English: a title and a capitalised name — Mr. Chen, Ms Li, Dr. Zhou, Director Wang, CFO
  Zhang — and pinyin forms Wang Zong, Li Gong.
Not recognised: bare names (张伟), 老王/小李 (小于, 小钱 and 小周末 look the same), roles
without a name (采购负责人, "the plant manager"), people not met ("没见到王总" still counts).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activity.screens import first_chars

DEFAULT_PATTERNS = Path(__file__).parent / "rules" / "memo_patterns.yaml"

FACT_NAMES = ("decision_maker", "budget", "next_step")
BUDGET_GROUPS = frozenset({"amount", "min", "max", "unit", "min_unit"})

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_CN_DIGITS = dict(
    zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True)
)
_CN_MULTIPLIERS = {"十": 10, "百": 100, "千": 1000}
# Beyond any deal (and beyond JSON numbers other systems read exactly): a transcription glitch.
_MAX_CNY = 2**53
_SALUTATION = re.compile(r"^(mr|mrs|ms|dr|prof)\b\.?\s*", re.IGNORECASE)


class MemoPatternsInvalid(ValueError):
    pass


@dataclass(frozen=True)
class MemoFacts:
    """`facts` has every key (decision_maker, budget_min, budget_max, next_step), None where
    the memo does not say; `missing` names the facts not found: decision_maker, budget,
    next_step. A budget bound ("100万以内") leaves the other end None but is found."""

    facts: dict[str, str | int | None]
    missing: list[str] = field(default_factory=list)


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patterns: list[str] = Field(min_length=1)
    not_values: str | None = None


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    units: dict[str, float] = Field(min_length=1)
    unitless_minimum: int = Field(ge=0)
    lists: dict[str, list[str]] = Field(default_factory=dict)
    fragments: dict[str, str] = Field(default_factory=dict)
    decision_maker: _Fact
    budget: _Fact
    next_step: _Fact
    key_people: list[str] = Field(min_length=1)


@dataclass(frozen=True)
class _CompiledFact:
    patterns: tuple[re.Pattern[str], ...]
    not_values: re.Pattern[str] | None
    # Per pattern, the characters its matches may begin with, where known (activity.screens).
    screens: tuple[re.Pattern[str] | None, ...] = ()

    def searched(self, text: str) -> Iterator[re.Pattern[str]]:
        """The patterns, in order, but those the text cannot match for lack of a first
        character (most memos state few of the facts)."""
        return _searched(self.patterns, self.screens, text)


@dataclass(frozen=True)
class MemoPatterns:
    """The YAML, checked and compiled."""

    decision_maker: _CompiledFact
    budget: _CompiledFact
    next_step: _CompiledFact
    key_people: tuple[re.Pattern[str], ...]
    units: Mapping[str, float]
    unitless_minimum: int
    key_people_screens: tuple[re.Pattern[str] | None, ...] = ()


def load_memo_patterns(path: Path = DEFAULT_PATTERNS) -> MemoPatterns:
    """Read and check a patterns file; MemoPatternsInvalid says what is wrong and where."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        document = _Document.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise MemoPatternsInvalid(f"{path.name}: {exc}") from exc
    return _compile(document, path.name)


@functools.cache
def default_memo_patterns() -> MemoPatterns:
    return load_memo_patterns()


def extract_memo_facts(text: str, patterns: MemoPatterns | None = None) -> MemoFacts:
    """What the memo says about the deal, and which facts it leaves out."""
    p = patterns or default_memo_patterns()
    decision_maker = _first_value(p.decision_maker, text)
    if decision_maker is not None:
        decision_maker = _person_name(decision_maker)
    budget = _first_budget(p, text)
    next_step = _first_value(p.next_step, text)
    facts: dict[str, str | int | None] = {
        "decision_maker": decision_maker,
        "budget_min": budget[0] if budget else None,
        "budget_max": budget[1] if budget else None,
        "next_step": next_step,
    }
    found = {"decision_maker": decision_maker, "budget": budget, "next_step": next_step}
    return MemoFacts(facts, [name for name in FACT_NAMES if found[name] is None])


def key_people(text: str, patterns: MemoPatterns | None = None) -> list[str]:
    """The named people a memo mentions, each once, in order of first mention."""
    p = patterns or default_memo_patterns()
    found: list[tuple[int, str]] = []
    for pattern in _searched(p.key_people, p.key_people_screens, text):
        for match in pattern.finditer(text):
            value = match.group("value") if "value" in pattern.groupindex else match.group(0)
            found.append((match.start(), _person_name(value)))
    people: dict[str, str] = {}
    for _, name in sorted(found):
        people.setdefault(name.casefold(), name)
    return list(people.values())


def _person_name(value: str) -> str:
    """'Mr  Chen' -> 'Mr. Chen': one spelling per person."""
    value = " ".join(value.split())
    return _SALUTATION.sub(lambda m: m.group(1).capitalize() + ". ", value)


def _searched(
    patterns: tuple[re.Pattern[str], ...],
    screens: tuple[re.Pattern[str] | None, ...],
    text: str,
) -> Iterator[re.Pattern[str]]:
    if not screens:
        yield from patterns
        return
    for pattern, screen in zip(patterns, screens, strict=True):
        if screen is None or screen.search(text) is not None:
            yield pattern


def _first_value(fact: _CompiledFact, text: str) -> str | None:
    for pattern in fact.searched(text):
        for match in pattern.finditer(text):
            value = match.group("value").strip(" \t,，、:：")
            if value and not (fact.not_values and fact.not_values.match(value)):
                return value
    return None


def _first_budget(p: MemoPatterns, text: str) -> tuple[int | None, int | None] | None:
    for pattern in p.budget.searched(text):
        for match in pattern.finditer(text):
            budget = _budget_of(match.groupdict(), p)
            if budget is not None:
                return budget
    return None


def _budget_of(
    groups: Mapping[str, str | None], p: MemoPatterns
) -> tuple[int | None, int | None] | None:
    """(min, max) in CNY from a match's groups; None when a figure is not money after all."""
    unit = groups.get("unit")
    if groups.get("amount") is not None:
        amount = _cny(groups["amount"], unit, p)
        return None if amount is None else (amount, amount)
    low = _cny(groups.get("min"), groups.get("min_unit") or unit, p)
    high = _cny(groups.get("max"), unit, p)
    if (groups.get("min") is not None and low is None) or (
        groups.get("max") is not None and high is None
    ):
        return None
    if low is not None and high is not None and low > high:
        low, high = high, low  # "80-50万": the order spoken is not the point
    return low, high


def _cny(figure: str | None, unit: str | None, p: MemoPatterns) -> int | None:
    if figure is None:
        return None
    number = _number(figure)
    multiplier = 1.0 if unit is None else p.units.get(unit.casefold())
    if number is None or multiplier is None:
        return None  # a group the YAML captured more loosely than {num} / {unit}
    if unit is None and number < p.unitless_minimum:
        return None
    cny = number * multiplier
    return round(cny) if cny < _MAX_CNY else None


def _number(figure: str) -> float | None:
    """'1,200.5' -> 1200.5; Chinese numerals: '八十' -> 80, '一百零五' -> 105, '三千五' -> 3500."""
    if not all(char in _CN_DIGITS or char in _CN_MULTIPLIERS for char in figure):
        try:
            return float(figure.replace(",", ""))
        except ValueError:
            return None
    total, digit, last_multiplier = 0, 0, 1
    for char in figure:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        else:
            last_multiplier = _CN_MULTIPLIERS[char]
            total += (digit or 1) * last_multiplier
            digit = 0
    # A trailing digit counts in the next lower place: 三千五 is 3,500, 一百五 is 150.
    return total + digit * max(last_multiplier // 10, 1)


# --- loading -------------------------------------------------------------------------------


def _compile(document: _Document, name: str) -> MemoPatterns:
    units = {unit.casefold(): multiplier for unit, multiplier in document.units.items()}
    if any(multiplier <= 0 for multiplier in units.values()):
        raise MemoPatternsInvalid(f"{name}: units: every multiplier must be positive")
    if "unit" in document.lists:
        raise MemoPatternsInvalid(f"{name}: lists.unit: the unit list is built from units")
    words = {**document.lists, "unit": list(units)}
    fragments = _resolve_fragments(document.fragments, words, name)

    def compiled(where: str, source: str) -> re.Pattern[str]:
        try:
            return re.compile(_expand(source, fragments, f"{name}: {where}"), re.IGNORECASE)
        except re.error as exc:
            raise MemoPatternsInvalid(f"{name}: {where}: not a valid regex: {exc}") from exc

    def fact(key: str, spec: _Fact, required: set[str]) -> _CompiledFact:
        patterns = []
        for i, source in enumerate(spec.patterns):
            pattern = compiled(f"{key}.patterns[{i}]", source)
            _check_groups(pattern, required, f"{name}: {key}.patterns[{i}]")
            patterns.append(pattern)
        not_values = compiled(f"{key}.not_values", spec.not_values) if spec.not_values else None
        return _CompiledFact(tuple(patterns), not_values, _screens(patterns))

    decision_maker = fact("decision_maker", document.decision_maker, {"value"})
    budget = fact("budget", document.budget, set())
    next_step = fact("next_step", document.next_step, {"value"})
    key_people = [
        compiled(f"key_people[{i}]", source) for i, source in enumerate(document.key_people)
    ]
    return MemoPatterns(
        decision_maker=decision_maker,
        budget=budget,
        next_step=next_step,
        key_people=tuple(key_people),
        units=units,
        unitless_minimum=document.unitless_minimum,
        key_people_screens=_screens(key_people),
    )


def _screens(patterns: list[re.Pattern[str]]) -> tuple[re.Pattern[str] | None, ...]:
    return tuple(first_chars(pattern) for pattern in patterns)


def _check_groups(pattern: re.Pattern[str], required: set[str], where: str) -> None:
    groups = set(pattern.groupindex)
    if required:
        if not required <= groups:
            raise MemoPatternsInvalid(f"{where}: needs the named group(s) {sorted(required)}")
        return
    # A budget pattern: one figure, or a range or bound.
    if groups - BUDGET_GROUPS:
        raise MemoPatternsInvalid(f"{where}: unknown group(s) {sorted(groups - BUDGET_GROUPS)}")
    if not groups & {"amount", "min", "max"}:
        raise MemoPatternsInvalid(f"{where}: needs a group amount, min or max")
    if "amount" in groups and groups & {"min", "max"}:
        raise MemoPatternsInvalid(f"{where}: amount is one figure; use min/max for a range")
    if "min_unit" in groups and "min" not in groups:
        raise MemoPatternsInvalid(f"{where}: min_unit without min")


def _resolve_fragments(
    sources: Mapping[str, str], words: Mapping[str, list[str]], name: str
) -> dict[str, str]:
    """Word lists become alternations (longest first, so 万元 wins over 万; Latin words end
    at a word's end: "m" is not the start of "meters"); fragments may use earlier ones."""
    resolved: dict[str, str] = {}
    for key, values in words.items():
        alternatives = []
        for word in sorted(values, key=len, reverse=True):
            escaped = re.escape(word)
            alternatives.append(f"{escaped}(?![a-z\\d])" if word.isascii() else escaped)
        resolved[key] = f"(?:{'|'.join(alternatives)})"
    for key, source in sources.items():
        if key in resolved:
            raise MemoPatternsInvalid(f"{name}: fragments.{key}: already a word list")
        resolved[key] = _expand(source, resolved, f"{name}: fragments.{key}")
    return resolved


def _expand(source: str, fragments: Mapping[str, str], where: str) -> str:
    def insert(match: re.Match[str]) -> str:
        if match.group(1) not in fragments:
            raise MemoPatternsInvalid(f"{where}: unknown fragment {{{match.group(1)}}}")
        return fragments[match.group(1)]

    return _PLACEHOLDER.sub(insert, source)
