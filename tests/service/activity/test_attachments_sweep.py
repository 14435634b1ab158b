"""The attachment sweeper on a real disk and database (both backends): what a crash left behind
goes once old enough, anything an attachment names, anything young and anything outside the
store's naming scheme stays. Files are aged with os.utime, never by waiting."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event

from activity.attachments import sweep_disk
from activity.attachments import sweeper as sweeper_module
from activity.attachments.storage import ContentStore
from activity.attachments.sweeper import AttachmentSweeper
from activity.models import Attachment, Base
from salesrail.bus.outbox import Outbox
from salesrail.clock import system_clock
from salesrail.db import Database
from salesrail.unit_of_work import UnitOfWork
from tests.service.activity.helpers import PDF, lead_of, rep, upload
from tests.support.apps import running
from tests.support.publishing import eventually
from tests.support.tables import database_with

HOUR = 3600.0
HALF_UPLOAD = b"%PDF-1.7\n half of a contract"
UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with database_with(database_url, Base.metadata) as database:
        yield database


@pytest.fixture
def unit_of_work(db: Database) -> UnitOfWorkFactory:
    outbox = Outbox(source="activity", clock=system_clock)

    @asynccontextmanager
    async def factory() -> AsyncIterator[UnitOfWork]:
        async with db.transaction() as session:
            yield UnitOfWork(session=session, outbox=outbox, clock=system_clock)

    return factory


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "attachments")


def sweeper_on(
    store: ContentStore, unit_of_work: UnitOfWorkFactory, **overrides: Any
) -> AttachmentSweeper:
    settings: dict[str, Any] = {"interval_s": HOUR, "tmp_grace_s": HOUR, "orphan_grace_s": HOUR}
    return AttachmentSweeper(store=store, unit_of_work=unit_of_work, **(settings | overrides))


def age(path: Path, *, hours: float) -> None:
    at = time.time() - hours * HOUR
    os.utime(path, (at, at))


def mtime_age_s(path: Path) -> float:
    return time.time() - path.stat().st_mtime


def stored(store: ContentStore, content: bytes, *, hours_old: float = 0.0) -> Path:
    """`content` committed to the store (as an upload does before its row), aged."""
    pending = store.pending()
    pending.write(content)
    path = store.path_of(pending.commit())
    if hours_old:
        age(path, hours=hours_old)
    return path


def abandoned_upload(store: ContentStore, *, hours_old: float) -> Path:
    """What a process killed mid-upload leaves in tmp/."""
    (store.root / "tmp").mkdir(parents=True, exist_ok=True)
    path = store.root / "tmp" / f"upload-{uuid.uuid4().hex[:8]}"
    path.write_bytes(HALF_UPLOAD)
    age(path, hours=hours_old)
    return path


def row_naming(path: Path) -> Attachment:
    return Attachment(
        attachment_id=str(uuid.uuid4()),
        lead_id="lead-1",
        sha256=path.name,
        kind="pdf",
        media_type="application/pdf",
        size=path.stat().st_size,
        original_name="报价单.pdf",
        uploaded_by="rep-zhang",
        uploaded_at=datetime.now(UTC),
    )


async def record(unit_of_work: UnitOfWorkFactory, path: Path) -> None:
    """The attachment row naming the stored file `path`."""
    attachment = row_naming(path)
    async with unit_of_work() as uow:
        uow.session.add(attachment)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_an_abandoned_upload_is_removed_and_one_still_arriving_is_kept(
    store: ContentStore, unit_of_work: UnitOfWorkFactory
) -> None:
    abandoned = abandoned_upload(store, hours_old=2)
    arriving = store.pending()
    arriving.write(b"%PDF-1.7\n still coming")

    report = await sweeper_on(store, unit_of_work).sweep()

    assert not abandoned.exists()
    assert arriving.path.exists()
    assert (report.tmp_files, report.tmp_bytes) == (1, len(HALF_UPLOAD))
    # ... and the upload still arriving completes as if nothing happened.
    arriving.write(b"\n%%EOF\n")
    assert store.path_of(arriving.commit()).exists()


async def test_an_old_file_no_attachment_names_is_removed_with_its_emptied_directories(
    store: ContentStore, unit_of_work: UnitOfWorkFactory
) -> None:
    orphan = stored(store, PDF, hours_old=2)

    report = await sweeper_on(store, unit_of_work).sweep()

    assert not orphan.exists()
    assert (report.orphan_files, report.orphan_bytes, report.freed_bytes) == (1, len(PDF), len(PDF))
    assert not orphan.parent.exists() and not orphan.parent.parent.exists()
    # The root and tmp/ stay, empty.
    assert sorted(p.name for p in store.root.iterdir()) == ["tmp"]
    assert files_under(store.root) == []
    # An upload of that content later is stored again.
    assert stored(store, PDF).read_bytes() == PDF


async def test_a_file_an_attachment_names_is_kept_however_old(
    store: ContentStore, unit_of_work: UnitOfWorkFactory
) -> None:
    named = stored(store, PDF, hours_old=24 * 365)
    await record(unit_of_work, named)

    report = await sweeper_on(store, unit_of_work).sweep()

    assert named.read_bytes() == PDF
    assert (report.orphan_files, report.freed_bytes) == (0, 0)


async def test_a_young_file_no_attachment_names_yet_is_kept(
    store: ContentStore, unit_of_work: UnitOfWorkFactory
) -> None:
    """Placed just now: its upload's row may be about to commit."""
    young = stored(store, PDF, hours_old=0.5)

    report = await sweeper_on(store, unit_of_work).sweep()

    assert young.exists()
    assert report.orphan_files == 0


async def test_content_uploaded_again_within_the_grace_is_kept(
    store: ContentStore, unit_of_work: UnitOfWorkFactory
) -> None:
    """A file left by a crash long ago, uploaded again now: the new upload finds it stored and
    drops its own copy, so the file must not go before the new row commits."""
    orphan = stored(store, PDF, hours_old=48)
    again = stored(store, PDF)  # commit touches the stored file

    report = await sweeper_on(store, unit_of_work).sweep()

    assert again == orphan
    assert orphan.read_bytes() == PDF
    assert mtime_age_s(orphan) < 60
    assert report.orphan_files == 0
    await record(unit_of_work, orphan)
    assert (await sweeper_on(store, unit_of_work).sweep()).orphan_files == 0


async def test_an_upload_of_the_same_content_while_the_sweeper_asks_the_database_keeps_its_file(
    store: ContentStore, unit_of_work: UnitOfWorkFactory
) -> None:
    """The sweeper listed the file as old and the database names it nowhere; meanwhile an upload
    of the same content commits (and its row follows): the file stays."""
    orphan = stored(store, PDF, hours_old=48)

    @asynccontextmanager
    async def uploading_meanwhile() -> AsyncIterator[UnitOfWork]:
        async with unit_of_work() as uow:
            yield uow
        stored(store, PDF)

    report = await sweeper_on(store, uploading_meanwhile).sweep()

    assert orphan.read_bytes() == PDF
    assert (report.orphan_files, report.kept) == (0, 1)


async def test_a_touch_just_before_the_file_is_set_aside_puts_it_back(
    store: ContentStore, unit_of_work: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrowest race: the upload touches the stored file after the sweeper's first look
    but before it sets the file aside. The last look, at the file set aside, sees the touch."""
    orphan = stored(store, PDF, hours_old=48)
    rename = os.rename

    def touched_first(source: Any, target: Any) -> None:
        stored(store, PDF)
        rename(source, target)

    monkeypatch.setattr(sweep_disk.os, "rename", touched_first)
    report = await sweeper_on(store, unit_of_work).sweep()
    monkeypatch.undo()

    assert orphan.read_bytes() == PDF
    assert (report.orphan_files, report.kept) == (0, 1)
    assert files_under(store.root) == [orphan]  # nothing left set aside in tmp/


async def test_an_upload_right_after_the_file_is_set_aside_places_its_own_copy(
    store: ContentStore, unit_of_work: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: the file is set aside first, so the upload finds nothing to touch and
    places its own copy, which the sweeper leaves alone while it removes the old one."""
    orphan = stored(store, PDF, hours_old=48)
    rename = os.rename

    def upload_after(source: Any, target: Any) -> None:
        rename(source, target)
        stored(store, PDF)

    monkeypatch.setattr(sweep_disk.os, "rename", upload_after)
    report = await sweeper_on(store, unit_of_work).sweep()
    monkeypatch.undo()

    assert orphan.read_bytes() == PDF
    assert mtime_age_s(orphan) < 60
    assert report.orphan_files == 1  # the old copy, set aside
    assert files_under(store.root) == [orphan]


async def test_names_outside_the_scheme_are_left_alone_and_logged_once(
    store: ContentStore,
    unit_of_work: UnitOfWorkFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orphan = stored(store, PDF, hours_old=48)
    root = store.root
    outside = tmp_path / "outside"
    victim = outside / "victim.pdf"
    # Where `<root>/ef/ab/efab0...` leads once `<root>/ef` is a link to `outside`.
    behind_link = outside / "ab" / ("efab" + "0" * 60)
    behind_link.parent.mkdir(parents=True)
    for path in (victim, behind_link):
        path.write_bytes(PDF)
    misplaced = orphan.parent / hashlib.sha256(b"elsewhere").hexdigest()  # in the wrong place
    strangers = [
        root / "README.txt",
        root / "zz" / "notes.txt",
        root / "AB" / "CD" / orphan.name.upper(),
        misplaced,
        orphan.parent / f"{orphan.name}.part",
        orphan.parent.parent / "cdx" / "file",
        root / "tmp" / "notes.txt",
        root / "tmp" / "upload-a-directory" / "file",
    ]
    for path in strangers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not ours to judge")
    links = [
        orphan.parent / orphan.name.replace(orphan.name[4:], "f" * 60),  # named like content
        root / "tmp" / "upload-link",
    ]
    for link in links:
        link.symlink_to(victim)
    (root / "ef").symlink_to(outside, target_is_directory=True)  # a fan-out name, linked out
    for path in [*strangers, victim, behind_link]:
        age(path, hours=48)
    for link in [*links, root / "ef"]:
        at = time.time() - 48 * HOUR
        os.utime(link, (at, at), follow_symlinks=False)
    logged: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def warning(self, event: str, **fields: Any) -> None:
            logged.append((event, fields))

        info = debug = warning

    monkeypatch.setattr(sweeper_module, "log", Recorder())
    report = await sweeper_on(store, unit_of_work).sweep()

    assert not orphan.exists()  # what is in the scheme is still swept
    for path in [*strangers, victim, behind_link]:
        assert path.read_bytes() in (PDF, b"not ours to judge"), path
    assert all(link.is_symlink() for link in [*links, root / "ef"])
    unexpected = [fields for event, fields in logged if event == "attachment.sweep_unexpected"]
    assert len(unexpected) == 1
    assert unexpected[0]["count"] == len(report.unexpected)
    assert sorted(report.unexpected) == sorted(
        [
            "README.txt",
            "zz",
            "AB",
            "ef",
            str(misplaced.relative_to(root)),
            str(orphan.relative_to(root)) + ".part",
            str(orphan.parent.parent.relative_to(root) / "cdx"),
            "tmp/notes.txt",
            "tmp/upload-a-directory",
            "tmp/upload-link",
            str(links[0].relative_to(root)),
        ]
    )


async def test_a_store_whose_root_is_a_link_is_swept_but_a_linked_tmp_is_never_entered(
    tmp_path: Path, unit_of_work: UnitOfWorkFactory
) -> None:
    disk = tmp_path / "big-disk"
    (disk / "tmp").mkdir(parents=True)
    (tmp_path / "attachments").symlink_to(disk, target_is_directory=True)
    store = ContentStore(tmp_path / "attachments")
    orphan = stored(store, PDF, hours_old=2)

    report = await sweeper_on(store, unit_of_work).sweep()

    assert not orphan.exists()
    assert report.orphan_files == 1
    assert (tmp_path / "attachments").is_symlink()

    outside = tmp_path / "outside"
    outside.mkdir()
    left = outside / "upload-not-ours"
    left.write_bytes(HALF_UPLOAD)
    age(left, hours=2)
    os.rmdir(disk / "tmp")
    (disk / "tmp").symlink_to(outside, target_is_directory=True)
    orphan = stored(store, PDF, hours_old=2)

    report = await sweeper_on(store, unit_of_work).sweep()

    assert left.exists() and orphan.exists()
    assert sorted(p.name for p in outside.iterdir()) == ["upload-not-ours"]
    assert "tmp" in report.unexpected and report.failed


async def test_stale_files_are_asked_about_in_chunks_one_statement_each(
    store: ContentStore, unit_of_work: UnitOfWorkFactory, db: Database
) -> None:
    leaf = store.root / "ab" / "cd"
    leaf.mkdir(parents=True)
    paths = [leaf / f"abcd{n:060x}" for n in range(5)]
    for path in paths:
        path.write_bytes(b"content " + path.name.encode())
        age(path, hours=2)
    for path in (paths[1], paths[4]):  # in the first chunk and in the last one
        await record(unit_of_work, path)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM attachments" in statement:
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    report = await sweeper_on(store, unit_of_work, chunk_size=2).sweep()
    event.remove(db.engine.sync_engine, "before_cursor_execute", count)

    assert [path.exists() for path in paths] == [False, True, False, False, True]
    assert report.orphan_files == 3
    assert len(statements) == 3  # 5 stale files, 2 a statement


async def test_a_store_not_made_yet_is_nothing_to_sweep(
    store: ContentStore, unit_of_work: UnitOfWorkFactory
) -> None:
    report = await sweeper_on(store, unit_of_work).sweep()
    assert (report.tmp_files, report.orphan_files, report.unexpected) == (0, 0, [])
    assert not store.root.exists()


async def test_the_sweeper_runs_at_start_and_every_interval_until_stopped(
    store: ContentStore, unit_of_work: UnitOfWorkFactory
) -> None:
    first = stored(store, PDF, hours_old=2)
    sweeper = sweeper_on(store, unit_of_work, interval_s=0.05)
    sweeper.start()
    try:
        assert not await eventually(_exists(first), lambda exists: not exists, timeout_s=5)
        second = abandoned_upload(store, hours_old=2)
        assert not await eventually(_exists(second), lambda exists: not exists, timeout_s=5)
    finally:
        await sweeper.stop()
    third = abandoned_upload(store, hours_old=2)
    await asyncio.sleep(0.2)
    assert third.exists()


def _exists(path: Path) -> Callable[[], Any]:
    async def probe() -> bool:
        return await asyncio.to_thread(path.exists)

    return probe


async def test_the_service_still_serves_an_attachment_after_a_sweep(
    app: FastAPI, nats_url: str, tmp_path: Path
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        attachment_id = await upload(client, lead_id, PDF, rep(), name="报价单.pdf")
        store = ContentStore(tmp_path / "attachments")
        named = store.path_of(hashlib.sha256(PDF).hexdigest())
        age(named, hours=24 * 30)
        orphan = stored(store, b"%PDF-1.7\n a crash left me here", hours_old=2)
        abandoned = abandoned_upload(store, hours_old=2)

        await app.state.activity.sweeper.sweep()
        content = await client.get(f"/v1/attachments/{attachment_id}/content", headers=rep())

    assert content.status_code == 200, content.text
    assert content.content == PDF
    assert not orphan.exists() and not abandoned.exists()
    assert files_under(store.root) == [named]
