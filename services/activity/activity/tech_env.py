"""Technical-environment changes a memo mentions (system migration, 设备更换, ...), as the
configured names in `rules/tech_env_phrases.yaml`. Pure once the phrases are loaded."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from activity.screens import first_chars

DEFAULT_PHRASES = Path(__file__).parent / "rules" / "tech_env_phrases.yaml"

# A negation counts this many characters before a mention at most, and only in its clause.
NEGATION_WINDOW = 20
_CLAUSE_BREAK = re.compile(r"[,.;:!?。、\n]")
_WORD = re.compile(r"[a-z0-9]+")
_TOKEN = re.compile(r"[a-z0-9]+|\S")
_WORD_START, _WORD_END = r"(?<![a-z0-9])", r"(?![a-z0-9])"


class TechEnvPhrasesInvalid(ValueError):
    pass


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    phrases: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_match(self) -> _Change:
        if not self.phrases and not self.patterns:
            raise ValueError("give phrases or patterns")
        return self


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    negations: list[str] = Field(default_factory=list)
    changes: list[_Change] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_unique(self) -> _Document:
        names = [change.name for change in self.changes]
        if len(names) != len(set(names)):
            raise ValueError(f"change names must be unique: {names}")
        return self


@dataclass(frozen=True)
class TechEnvPhrases:
    """The YAML, checked and compiled: (name, matcher) per change, and the negation cues;
    per change, the characters its matches may begin with, where known (activity.screens)."""

    changes: tuple[tuple[str, re.Pattern[str]], ...]
    negation: re.Pattern[str] | None
    screens: tuple[re.Pattern[str] | None, ...] = ()


def normalise(text: str) -> str:
    """Full-width folded to half-width (ＥＲＰ -> ERP, ， -> ,), then case folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def load_tech_env_phrases(path: Path = DEFAULT_PHRASES) -> TechEnvPhrases:
    """Read and check a phrases file; TechEnvPhrasesInvalid says what is wrong and where."""
    try:
        document = _Document.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise TechEnvPhrasesInvalid(f"{path.name}: {exc}") from exc
    changes = []
    for change in document.changes:
        try:
            alternatives = [phrase_regex(phrase) for phrase in change.phrases] + change.patterns
            changes.append((change.name, re.compile("|".join(alternatives), re.IGNORECASE)))
        except re.error as exc:
            raise TechEnvPhrasesInvalid(
                f"{path.name}: {change.name}: not a valid regex: {exc}"
            ) from exc
        except TechEnvPhrasesInvalid as exc:
            raise TechEnvPhrasesInvalid(f"{path.name}: {change.name}: {exc}") from exc
    cues = [_cue_regex(cue) for cue in document.negations]
    negation = re.compile("|".join(cues)) if cues else None
    screens = tuple(first_chars(matcher) for _, matcher in changes)
    return TechEnvPhrases(tuple(changes), negation, screens)


@functools.cache
def default_tech_env_phrases() -> TechEnvPhrases:
    return load_tech_env_phrases()


def detect_tech_env_change(text: str, phrases: TechEnvPhrases | None = None) -> list[str]:
    """Names of the changes the text mentions (not negated), in the configured order."""
    p = phrases or default_tech_env_phrases()
    folded = normalise(text)
    screens = p.screens or (None,) * len(p.changes)
    return [
        name
        for (name, matcher), screen in zip(p.changes, screens, strict=True)
        # Most memos mention no change: a text without a character a change's matches begin
        # with is not searched for it.
        if (screen is None or screen.search(folded) is not None)
        and any(not _negated(folded, m.start(), p.negation) for m in matcher.finditer(folded))
    ]


def phrase_regex(phrase: str) -> str:
    """A phrase as a regex tolerant of spacing: 'ERP替换' also matches 'erp 替换'; Latin words
    match whole ('mes' is not in 'times')."""
    tokens = _TOKEN.findall(normalise(phrase))
    if not tokens:
        raise TechEnvPhrasesInvalid(f"an empty phrase: {phrase!r}")
    parts = [_WORD_START] if _WORD.fullmatch(tokens[0]) else []
    for i, token in enumerate(tokens):
        if i:
            both_words = _WORD.fullmatch(tokens[i - 1]) and _WORD.fullmatch(token)
            parts.append(r"[\s_-]*" if both_words else r"\s*")
        parts.append(re.escape(token))
    if _WORD.fullmatch(tokens[-1]):
        parts.append(_WORD_END)
    return "".join(parts)


def _cue_regex(cue: str) -> str:
    folded = normalise(cue)
    # A Latin word is a cue as a whole word only: "no" is not in "know".
    if _WORD.fullmatch(folded):
        return _WORD_START + re.escape(folded) + _WORD_END
    return re.escape(folded)


def _negated(folded: str, start: int, negation: re.Pattern[str] | None) -> bool:
    if negation is None:
        return False
    before = folded[max(0, start - NEGATION_WINDOW) : start]
    clause = _CLAUSE_BREAK.split(before)[-1]
    return negation.search(clause) is not None
