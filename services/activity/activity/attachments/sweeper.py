"""The attachment sweeper: removes what the content store would otherwise keep forever.

An upload killed while it arrives leaves its file in `tmp/`; one killed (or failing on the
database) between placing its file and committing its row leaves a stored file no attachment
names. Each is removed once untouched for longer than its grace: a younger file may belong to
an upload still arriving or to a row about to commit. Runs in every activity worker, at start
and then every interval; workers sweeping the same store at once are safe (sweep_disk.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import anyio.to_thread
import structlog

from activity.attachments import service, sweep_disk
from activity.attachments.service import UnitOfWorkFactory
from activity.attachments.storage import ContentStore
from activity.attachments.sweep_disk import Removal
from activity.attachments.sweep_rules import chunked, emptied, is_stale, stale, unreferenced
from activity.config import Settings
from salesrail.periodic import Periodic

log = structlog.get_logger(__name__)

# sha256s asked about in one statement: well under SQLite's limit of bound parameters.
REFERENCE_CHUNK = 500
# Paths named in one log line; the rest are counted.
PATHS_LOGGED = 20


@dataclass
class SweepReport:
    tmp_files: int = 0
    tmp_bytes: int = 0
    orphan_files: int = 0
    orphan_bytes: int = 0
    directories: int = 0
    # Stale when listed, touched (or gone) at the last look: left alone.
    kept: int = 0
    unexpected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return self.tmp_bytes + self.orphan_bytes

    def add(self, removal: Removal, *, tmp: bool) -> None:
        if tmp:
            self.tmp_files += len(removal.removed)
            self.tmp_bytes += removal.freed_bytes
        else:
            self.orphan_files += len(removal.removed)
            self.orphan_bytes += removal.freed_bytes
        self.kept += removal.kept
        self.failed += removal.failed


class AttachmentSweeper:
    """File ages are taken against `wall_clock` (wall time, what stamps the mtimes), not the
    service's Clock, which tests may stop."""

    def __init__(
        self,
        *,
        store: ContentStore,
        unit_of_work: UnitOfWorkFactory,
        interval_s: float,
        tmp_grace_s: float,
        orphan_grace_s: float,
        chunk_size: int = REFERENCE_CHUNK,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.unit_of_work = unit_of_work
        self.interval_s = interval_s
        self.tmp_grace_s = tmp_grace_s
        self.orphan_grace_s = orphan_grace_s
        self.chunk_size = chunk_size
        self.wall_clock = wall_clock
        # A round at start too: a service restarted more often than the interval would
        # otherwise never sweep.
        self._periodic = Periodic(
            "attachment_sweep", self.sweep, interval_s=interval_s, at_start=True
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, unit_of_work: UnitOfWorkFactory
    ) -> AttachmentSweeper:
        assert settings.attachments_dir is not None  # filled in by Settings
        return cls(
            store=ContentStore(settings.attachments_dir),
            unit_of_work=unit_of_work,
            interval_s=settings.attachment_sweep_interval_s,
            tmp_grace_s=settings.attachment_tmp_grace_s,
            orphan_grace_s=settings.attachment_orphan_grace_s,
        )

    async def sweep(self) -> SweepReport:
        """One round over the whole store. The directories are read and files removed in a
        worker thread, one fan-out directory at a time; the database is asked about the stale
        files of each, a chunk per statement."""
        report = SweepReport()
        await self._sweep_tmp(report)
        fan_outs, unexpected = await anyio.to_thread.run_sync(sweep_disk.list_root, self.store.root)
        report.unexpected += unexpected
        for first in fan_outs:
            await self._sweep_fan_out(first, report)
        _log(report)
        return report

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        # A worker thread is not interrupted: the directory in hand is finished first.
        await self._periodic.stop()

    async def _sweep_tmp(self, report: SweepReport) -> None:
        root = self.store.root
        listing = await anyio.to_thread.run_sync(sweep_disk.list_tmp, root)
        report.unexpected += listing.unexpected
        names = stale(listing.mtimes, now=self.wall_clock(), grace_s=self.tmp_grace_s)
        if names:
            remove = partial(
                sweep_disk.remove_leftovers, still_stale=self._still_stale(self.tmp_grace_s)
            )
            report.add(await anyio.to_thread.run_sync(remove, root, names), tmp=True)

    async def _sweep_fan_out(self, first: str, report: SweepReport) -> None:
        root = self.store.root
        listing = await anyio.to_thread.run_sync(sweep_disk.list_fan_out, root, first)
        report.unexpected += listing.unexpected
        candidates = stale(listing.mtimes, now=self.wall_clock(), grace_s=self.orphan_grace_s)
        referenced: set[str] = set()
        for chunk in chunked(candidates, self.chunk_size):
            referenced |= await service.referenced_hashes(
                unit_of_work=self.unit_of_work, sha256s=chunk
            )
        orphans = unreferenced(candidates, referenced)
        removed: list[str] = []
        if orphans:
            remove = partial(
                sweep_disk.remove_orphans, still_stale=self._still_stale(self.orphan_grace_s)
            )
            removal = await anyio.to_thread.run_sync(remove, root, orphans)
            report.add(removal, tmp=False)
            removed = removal.removed
        empty = emptied(listing.leaves, removed)
        whole = len(empty) == len(listing.leaves)  # then the fan-out directory goes too
        if empty or whole:
            prune = partial(sweep_disk.prune, then_first=whole)
            report.directories += await anyio.to_thread.run_sync(prune, root, first, empty)

    def _still_stale(self, grace_s: float) -> Callable[[float], bool]:
        """The last look before a removal, at the time it is taken."""
        return lambda mtime: is_stale(mtime, now=self.wall_clock(), grace_s=grace_s)


def _log(report: SweepReport) -> None:
    if report.unexpected:
        log.warning(
            "attachment.sweep_unexpected",
            count=len(report.unexpected),
            paths=report.unexpected[:PATHS_LOGGED],
            note="outside the store's naming scheme: left alone",
        )
    if report.failed:
        log.warning(
            "attachment.sweep_errors", count=len(report.failed), errors=report.failed[:PATHS_LOGGED]
        )
    removed = report.tmp_files + report.orphan_files + report.directories
    (log.info if removed else log.debug)(
        "attachment.swept",
        tmp_files=report.tmp_files,
        tmp_bytes=report.tmp_bytes,
        orphan_files=report.orphan_files,
        orphan_bytes=report.orphan_bytes,
        freed_bytes=report.freed_bytes,
        directories=report.directories,
        kept=report.kept,
    )
