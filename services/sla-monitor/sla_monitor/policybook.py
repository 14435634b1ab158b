"""The stored policy versions: the current one moves new clocks, older ones still fire theirs.

A PUT is validated in full before anything changes; the new version is stored with who and
when, then installed in one assignment. Clocks already running keep the version they started
under (its duration, warning, recipients, escalations); events are matched against the
current version's triggers. Other replicas pick up a new version on their next batch or tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import func, select

from salesrail.db.turns import one_at_a_time
from salesrail.rules_engine import RuleEngine
from salesrail.unit_of_work import UnitOfWork
from sla_monitor.models import PolicyVersion
from sla_monitor.policies import PolicySet, compile_policies, parse

log = structlog.get_logger(__name__)

DEFAULTS = Path(__file__).parent / "rules" / "policies.yaml"
UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass(frozen=True)
class StoredVersion:
    version: int
    source: str
    created_by: str
    created_at: datetime


class PolicyBook:
    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine
        self._sets: dict[int, PolicySet] = {}
        self.current: PolicySet | None = None
        self._write_lock = asyncio.Lock()

    def version(self, version: int) -> PolicySet:
        """The policies a clock started under (compiled on first use; kept for good)."""
        return self._sets[version]

    async def load(self, unit_of_work: UnitOfWorkFactory) -> None:
        """Compile every stored version; store the shipped defaults on first start."""
        async with unit_of_work() as uow:
            rows = (await uow.session.scalars(select(PolicyVersion))).all()
        if not rows:
            source = DEFAULTS.read_text(encoding="utf-8")
            await self.replace(source, by="defaults", unit_of_work=unit_of_work)
            return
        for row in sorted(rows, key=lambda r: r.version):
            self._install(row.version, row.source)

    async def refresh(self, uow: UnitOfWork) -> None:
        """Pick up versions another replica stored (one cheap query)."""
        newest = await uow.session.scalar(select(func.max(PolicyVersion.version)))
        if newest is None or (self.current and newest <= self.current.version):
            return
        rows = await uow.session.scalars(
            select(PolicyVersion).where(PolicyVersion.version > max(self._sets, default=0))
        )
        for row in sorted(rows, key=lambda r: r.version):
            self._install(row.version, row.source)
            log.info("policies.refreshed", version=row.version)

    async def stored(self, unit_of_work: UnitOfWorkFactory) -> StoredVersion:
        async with unit_of_work() as uow:
            row = await uow.session.scalar(
                select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)
            )
        assert row is not None, "policies are loaded at start-up"
        return StoredVersion(row.version, row.source, row.created_by, row.created_at)

    async def replace(
        self, source: str, *, by: str, unit_of_work: UnitOfWorkFactory
    ) -> StoredVersion:
        """Validate, store as the next version, then install. Raises PoliciesInvalid."""
        async with self._write_lock:
            document = parse(source)
            async with unit_of_work() as uow:
                # Replicas storing a version at once would both take the same number.
                await one_at_a_time(uow.session, "policy_versions")
                newest = await uow.session.scalar(select(func.max(PolicyVersion.version)))
                version = (newest or 0) + 1
                compiled = compile_policies(document, version=version, engine=self.engine)
                row = PolicyVersion(
                    version=version, source=source, created_by=by, created_at=uow.now()
                )
                uow.session.add(row)
            self._sets[version] = compiled
            self.current = compiled
            log.info("policies.replaced", version=version, by=by)
            return StoredVersion(version, source, by, row.created_at)

    def _install(self, version: int, source: str) -> None:
        if version not in self._sets:
            self._sets[version] = compile_policies(
                parse(source), version=version, engine=self.engine
            )
        self.current = self._sets[version]
