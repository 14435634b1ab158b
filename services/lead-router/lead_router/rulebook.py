"""The active routing and scoring rule sets: stored as versions, compiled, swapped whole.

A PUT is validated in full before anything changes; the new version is stored with who and
when, then replaces the compiled set in one assignment, so a decision sees either the old
set or the new one, never a mix. Other replicas pick a new version up within
`rules_refresh_s` (they poll the version number).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog
import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select

from lead_router.models import Rep, RuleSetVersion, Team
from lead_router.routing_rules import (
    CompiledRouting,
    RoutingDocument,
    RulesInvalid,
    compile_routing,
)
from lead_router.scoring_rules import CompiledScoring, ScoringDocument, compile_scoring
from salesrail.db.turns import one_at_a_time
from salesrail.http.problems import field_name
from salesrail.rules_engine import RuleEngine
from salesrail.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

Kind = Literal["routing", "scoring"]
DEFAULTS = Path(__file__).parent / "rules"
UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
_DOCUMENTS: dict[str, type[BaseModel]] = {"routing": RoutingDocument, "scoring": ScoringDocument}


@dataclass(frozen=True)
class StoredVersion:
    kind: str
    version: int
    source: str
    created_by: str
    created_at: Any


class Rulebook:
    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine
        self.routing: CompiledRouting | None = None
        self.scoring: CompiledScoring | None = None
        self._write_lock = asyncio.Lock()

    # --- reading -----------------------------------------------------------------------

    async def load(self, unit_of_work: UnitOfWorkFactory) -> None:
        """Compile the newest stored versions; store the shipped defaults on first start."""
        for kind in ("routing", "scoring"):
            async with unit_of_work() as uow:
                stored = await _latest(uow, kind)
            if stored is None:
                source = (DEFAULTS / f"{kind}.yaml").read_text(encoding="utf-8")
                await self.replace(kind, source, by="defaults", unit_of_work=unit_of_work)
            else:
                self._install(kind, self._compile(kind, stored.source, stored.version))

    async def refresh(self, unit_of_work: UnitOfWorkFactory) -> None:
        """Pick up a version another replica stored."""
        for kind in ("routing", "scoring"):
            installed = self.routing if kind == "routing" else self.scoring
            async with unit_of_work() as uow:
                stored = await _latest(uow, kind)
            if stored and installed and stored.version > installed.version:
                self._install(kind, self._compile(kind, stored.source, stored.version))
                log.info("rules.refreshed", kind=kind, version=stored.version)

    async def current(self, kind: Kind, unit_of_work: UnitOfWorkFactory) -> StoredVersion:
        async with unit_of_work() as uow:
            stored = await _latest(uow, kind)
        assert stored is not None, "rules are loaded at start-up"
        return stored

    # --- writing -----------------------------------------------------------------------

    async def replace(
        self, kind: Kind, source: str, *, by: str, unit_of_work: UnitOfWorkFactory
    ) -> StoredVersion:
        """Validate, store as the next version, then swap. Raises RulesInvalid."""
        async with self._write_lock:
            document = parse(kind, source)
            async with unit_of_work() as uow:
                # Replicas storing a version at once would both take the same number.
                await one_at_a_time(uow.session, f"rule_sets.{kind}")
                version = 1 + (
                    await uow.session.scalar(
                        select(func.max(RuleSetVersion.version)).where(RuleSetVersion.kind == kind)
                    )
                    or 0
                )
                # Report every problem at once: unknown places and unknown reps alike.
                problems = await _reference_problems(uow, kind, document)
                try:
                    compiled = self._compile_document(kind, document, version)
                except RulesInvalid as exc:
                    problems = exc.problems + problems
                if problems:
                    raise RulesInvalid(problems)
                row = RuleSetVersion(
                    kind=kind,
                    version=version,
                    source=source,
                    document=document.model_dump(mode="json"),
                    created_at=uow.now(),
                    created_by=by,
                )
                uow.session.add(row)
            self._install(kind, compiled)
            log.info("rules.replaced", kind=kind, version=version, by=by)
            return StoredVersion(kind, version, source, by, row.created_at)

    def validate(self, kind: Kind, source: str) -> Any:
        """Compile without storing or swapping (for simulations of a draft)."""
        return self._compile_document(kind, parse(kind, source), version=0)

    # --- internals ---------------------------------------------------------------------

    def _compile(self, kind: str, source: str, version: int) -> Any:
        return self._compile_document(kind, parse(kind, source), version)

    def _compile_document(self, kind: str, document: Any, version: int) -> Any:
        if kind == "routing":
            return compile_routing(document, version=version, engine=self.engine)
        return compile_scoring(document, version=version, engine=self.engine)

    def _install(self, kind: str, compiled: Any) -> None:
        if kind == "routing":
            self.routing = compiled
        else:
            self.scoring = compiled


def parse(kind: str, source: str) -> Any:
    """YAML text -> validated document, or RulesInvalid naming each bad rule and field."""
    try:
        raw = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise RulesInvalid([{"rule": "document", "field": "yaml", "message": str(exc)}]) from exc
    if not isinstance(raw, dict):
        raise RulesInvalid([{"rule": "document", "field": "yaml", "message": "not a mapping"}])
    try:
        return _DOCUMENTS[kind].model_validate(raw)
    except ValidationError as exc:
        raise RulesInvalid([_problem(raw, error) for error in exc.errors()]) from exc


def _problem(raw: dict[str, Any], error: Any) -> dict[str, Any]:
    loc = list(error.get("loc", ()))
    rule = "document"
    if len(loc) >= 2 and loc[0] in {"rules", "factors"} and isinstance(loc[1], int):
        items = raw.get(loc[0]) or []
        item = items[loc[1]] if loc[1] < len(items) else None
        rule = (item or {}).get("name") if isinstance(item, dict) else None
        rule = rule or f"{loc[0]}[{loc[1]}]"
    return {"rule": rule, "field": field_name(loc), "message": error.get("msg", "invalid")}


async def _reference_problems(uow: UnitOfWork, kind: str, document: Any) -> list[dict[str, Any]]:
    if kind != "routing":
        return []
    reps = document.referenced_reps()
    teams = document.referenced_teams()
    known_reps = set((await uow.session.scalars(select(Rep.id).where(Rep.id.in_(reps)))).all())
    known_teams = set((await uow.session.scalars(select(Team.id).where(Team.id.in_(teams)))).all())
    problems = []
    for rule in [*document.rules, None]:
        assign = rule.assign if rule else document.default
        name = rule.name if rule else "default"
        for rep in ([assign.rep] if assign.rep else []) + list(assign.reps or []):
            if rep not in known_reps:
                problems.append({"rule": name, "field": "assign", "message": f"no rep {rep!r}"})
        if assign.team and assign.team not in known_teams:
            problems.append(
                {"rule": name, "field": "assign", "message": f"no team {assign.team!r}"}
            )
    return problems


async def _latest(uow: UnitOfWork, kind: str) -> StoredVersion | None:
    row = await uow.session.scalar(
        select(RuleSetVersion)
        .where(RuleSetVersion.kind == kind)
        .order_by(RuleSetVersion.version.desc())
        .limit(1)
    )
    if row is None:
        return None
    return StoredVersion(row.kind, row.version, row.source, row.created_by, row.created_at)
