"""A registry read from a bundled CSV file: for the embedded run, demos and tests."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from lead_router.enrichment.credit_code import (
    normalize_credit_code,
    usable_credit_code,
)
from lead_router.enrichment.facts import CompanyFacts
from lead_router.enrichment.names import normalize_company_name, pick_namesake
from salesrail.clock import Clock, system_clock

BUNDLED_REGISTRY = Path(__file__).resolve().parent.parent / "data" / "registry.csv"
COLUMNS = (
    "credit_code",
    "company_name",
    "city",
    "industry",
    "registered_capital_cny",
    "founded_on",
    "insured_headcount",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RegistryDataError(ValueError):
    """A registry data file that cannot be trusted; the message names the file and line."""


@dataclass(frozen=True)
class RegistryEntry:
    """One company of the data file; facts get their `fetched_at` at look-up time."""

    credit_code: str
    company_name: str
    city: str
    industry: str | None
    registered_capital_cny: float | None
    founded_on: date | None
    insured_headcount: int | None


def load_registry(path: Path) -> list[RegistryEntry]:
    """Every row checked; the first bad one stops the load with its line number."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise RegistryDataError(f"{path}: missing columns {sorted(missing)}")
        entries: list[RegistryEntry] = []
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            try:
                entry = _entry(row)
            except ValueError as exc:  # InvalidCreditCode included
                name = (row.get("company_name") or "").strip() or "?"
                raise RegistryDataError(f"{path} line {line} ({name}): {exc}") from exc
            if entry.credit_code in seen:
                raise RegistryDataError(
                    f"{path} line {line} ({entry.company_name}): credit code"
                    f" {entry.credit_code} already on line {seen[entry.credit_code]}"
                )
            seen[entry.credit_code] = line
            entries.append(entry)
    return entries


def _entry(row: dict[str, str]) -> RegistryEntry:
    name = _text(row, "company_name")
    if name is None:
        raise ValueError("company_name is empty")
    code = _text(row, "credit_code")
    if code is None:
        raise ValueError("credit_code is empty")
    capital = _text(row, "registered_capital_cny")
    founded = _text(row, "founded_on")
    headcount = _text(row, "insured_headcount")
    entry = RegistryEntry(
        credit_code=normalize_credit_code(code),
        company_name=name,
        city=_text(row, "city") or "",
        industry=_text(row, "industry"),
        registered_capital_cny=None if capital is None else float(capital),
        founded_on=None if founded is None else date.fromisoformat(founded),
        insured_headcount=None if headcount is None else int(headcount),
    )
    if (entry.registered_capital_cny or 0) < 0 or (entry.insured_headcount or 0) < 0:
        raise ValueError("registered_capital_cny and insured_headcount cannot be negative")
    return entry


def _text(row: dict[str, str], column: str) -> str | None:
    value = (row.get(column) or "").strip()
    return value or None


class OfflineRegistryProvider:
    """Looks up by credit code, else by normalised name; an ambiguous name finds nothing."""

    name = "offline"

    def __init__(self, path: Path = BUNDLED_REGISTRY, *, clock: Clock = system_clock) -> None:
        self.path = path
        self._clock = clock
        self._by_code: dict[str, RegistryEntry] = {}
        self._by_name: dict[str, list[RegistryEntry]] = defaultdict(list)
        # Facts validated once at load; a look-up only stamps `fetched_at` on a copy.
        self._templates: dict[str, CompanyFacts] = {}
        for entry in load_registry(path):
            self._by_code[entry.credit_code] = entry
            self._by_name[normalize_company_name(entry.company_name)].append(entry)
            self._templates[entry.credit_code] = self._template(entry)

    def __len__(self) -> int:
        return len(self._by_code)

    # Nothing in a look-up waits, so the Enricher may skip its budget timer (intake's hot path).
    answers_immediately = True

    async def lookup(
        self, *, company_name: str, credit_code: str | None = None
    ) -> CompanyFacts | None:
        """Facts from the file; an invalid credit code is ignored in favour of the name."""
        code = usable_credit_code(credit_code)
        entry = self._by_code.get(code) if code else None
        if entry is None:
            entry = self._by_company_name(company_name)
        if entry is None:
            return None
        template = self._templates[entry.credit_code]
        return template.model_copy(update={"fetched_at": self._clock.now()})

    def _by_company_name(self, company_name: str) -> RegistryEntry | None:
        candidates = self._by_name.get(normalize_company_name(company_name), [])
        return pick_namesake(candidates, company_name, lambda entry: entry.company_name)

    def _template(self, entry: RegistryEntry) -> CompanyFacts:
        return CompanyFacts(
            registered_capital_cny=entry.registered_capital_cny,
            founded_on=entry.founded_on,
            insured_headcount=entry.insured_headcount,
            industry=entry.industry,
            credit_code=entry.credit_code,
            legal_name=entry.company_name,
            source=f"offline:{self.path.name}",
            fetched_at=_EPOCH,
        )
