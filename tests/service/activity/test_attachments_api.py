"""Attachments through the real app on a real bus and database (both backends): streamed
upload, type sniffed from the bytes, size limit, content-addressed storage, who may see what."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from activity.config import Settings
from activity.main import create_app
from activity.models import Attachment
from salesrail.auth.principal import Role
from salesrail.events.catalog import LeadReceived, LeadRouted
from tests.support.apps import api_key, running, runtime, service_app
from tests.support.publishing import envelope_for, eventually, publish
from tests.unit.activity.test_attachments_photo_metadata import exif_jpeg

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# A Windows executable: "MZ", then the PE offset at 0x3C pointing to "PE\0\0".
EXE = b"MZ" + b"\x90" * 58 + b"\x40\x00\x00\x00" + b"PE\x00\x00" + b"\x00" * 200
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 400


@pytest.fixture
def nats_url(fresh_nats_url: str) -> str:
    return fresh_nats_url


def make_app(
    database_url: str, auth_database_url: str, nats_url: str, data_dir: Path, **overrides: object
) -> FastAPI:
    return service_app(
        create_app,
        Settings,
        database_url=database_url,
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=data_dir,
        **overrides,
    )


@pytest.fixture
def app(database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path) -> FastAPI:
    return make_app(database_url, auth_database_url, nats_url, tmp_path)


async def lead_of(app: FastAPI, client: httpx.AsyncClient, nats_url: str, owner_id: str) -> str:
    """A lead owned by `owner_id`, once activity has heard of it."""
    lead_id = str(uuid.uuid4())
    received = LeadReceived(
        lead_id=lead_id,
        source="website",
        company_name="宁波某某机床有限公司",
        city="宁波",
        category="机床",
        received_at=datetime.now(UTC),
    )
    routed = LeadRouted(lead_id=lead_id, owner_id=owner_id, rule="宁波 机床 -> east team")
    await publish(nats_url, envelope_for(received), envelope_for(routed))
    admin = await api_key(app, Role.ADMIN)
    answer = await eventually(
        lambda: client.get(f"/v1/leads/{lead_id}/stage", headers=admin),
        lambda r: r.status_code == 200 and r.json()["owner_id"] == owner_id,
    )
    assert answer.status_code == 200, answer.text
    return lead_id


def upload(
    client: httpx.AsyncClient,
    lead_id: str,
    content: bytes,
    headers: dict[str, str],
    *,
    name: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> Awaitable[httpx.Response]:
    return client.post(
        f"/v1/leads/{lead_id}/attachments",
        files={"file": (name, content, content_type)},
        headers=headers,
    )


def stored_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "attachments").rglob("*") if p.is_file())


async def attachment_rows(app: FastAPI) -> int:
    async with runtime(app).unit_of_work() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Attachment))


def assert_problem_naming_file(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in answer.json()["errors"]] == ["file"]


async def test_a_photo_is_stored_under_its_hash_with_its_exif_time_and_position(
    app: FastAPI, nats_url: str, tmp_path: Path
) -> None:
    photo = exif_jpeg()
    sha256 = hashlib.sha256(photo).hexdigest()
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        lead_id = await lead_of(app, client, nats_url, "rep-zhang")

        created = await upload(client, lead_id, photo, rep, name="拜访门头.jpg")
        attachment_id = created.json()["attachment_id"]
        metadata = await client.get(f"/v1/attachments/{attachment_id}", headers=rep)
        content = await client.get(f"/v1/attachments/{attachment_id}/content", headers=rep)

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["lead_id"] == lead_id
    assert body["sha256"] == sha256
    assert (body["kind"], body["media_type"], body["size"]) == ("image", "image/jpeg", len(photo))
    assert body["original_name"] == "拜访门头.jpg"
    assert body["uploaded_by"] == "rep-zhang"
    # 14:30:05 at +08:00, as the camera wrote it.
    assert datetime.fromisoformat(body["taken_at"]) == datetime(2026, 11, 20, 6, 30, 5, tzinfo=UTC)
    assert body["gps_lat"] == pytest.approx(30.26)
    assert body["gps_lon"] == pytest.approx(120.15)
    assert metadata.json() == body
    assert content.status_code == 200
    assert content.content == photo
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert stored_files(tmp_path) == [tmp_path / "attachments" / sha256[:2] / sha256[2:4] / sha256]


async def test_a_pdf_named_jpg_is_recorded_as_the_pdf_it_is(app: FastAPI, nats_url: str) -> None:
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        lead_id = await lead_of(app, client, nats_url, "rep-zhang")
        created = await upload(client, lead_id, PDF, rep, name="合同签字页.jpg")
        content = await client.get(
            f"/v1/attachments/{created.json()['attachment_id']}/content", headers=rep
        )
    assert created.status_code == 201, created.text
    assert (created.json()["kind"], created.json()["media_type"]) == ("pdf", "application/pdf")
    assert content.headers["content-type"] == "application/pdf"


async def test_a_voice_memo_is_an_audio_attachment(app: FastAPI, nats_url: str) -> None:
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        lead_id = await lead_of(app, client, nats_url, "rep-zhang")
        created = await upload(
            client, lead_id, MP3, rep, name="memo.mp3", content_type="audio/mpeg"
        )
    assert created.status_code == 201, created.text
    assert (created.json()["kind"], created.json()["media_type"]) == ("audio", "audio/mpeg")
    assert created.json()["taken_at"] is None


@pytest.mark.parametrize(
    ("content", "detected"),
    [(EXE, "application/x-msdownload"), (b"just some text, not a photo\n" * 20, None)],
    ids=["executable", "text"],
)
async def test_a_file_with_a_lying_extension_is_refused_and_nothing_is_kept(
    app: FastAPI, nats_url: str, tmp_path: Path, content: bytes, detected: str | None
) -> None:
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        lead_id = await lead_of(app, client, nats_url, "rep-zhang")
        answer = await upload(client, lead_id, content, rep, name="photo.jpg")
        rows = await attachment_rows(app)

    assert_problem_naming_file(answer, 415)
    assert answer.json()["detected"] == detected
    assert "allowed: image/, audio/, application/pdf" in answer.json()["detail"]
    assert stored_files(tmp_path) == []
    assert rows == 0


async def _chunks(total: int, first: bytes) -> AsyncIterator[bytes]:
    yield first
    sent = len(first)
    while sent < total:
        piece = b"\0" * min(16 * 1024, total - sent)
        sent += len(piece)
        yield piece


async def _streamed_multipart(boundary: str, size: int) -> AsyncIterator[bytes]:
    """A multipart body sent in chunks without a Content-Length (as a proxy might)."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    async for chunk in _chunks(size, PDF):
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


async def test_an_upload_over_the_limit_is_refused_with_413_and_leaves_no_file_or_row(
    database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path
) -> None:
    limit = 64 * 1024
    app = make_app(database_url, auth_database_url, nats_url, tmp_path, attachment_max_bytes=limit)
    boundary = uuid.uuid4().hex
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        lead_id = await lead_of(app, client, nats_url, "rep-zhang")
        declared = await upload(client, lead_id, PDF + b"\0" * (4 * limit), rep, name="big.pdf")
        streamed = await client.post(
            f"/v1/leads/{lead_id}/attachments",
            content=_streamed_multipart(boundary, 4 * limit),
            headers={**rep, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        just_fits = await upload(client, lead_id, PDF + b"\0" * (limit - len(PDF)), rep)
        rows = await attachment_rows(app)

    for answer in (declared, streamed):
        assert_problem_naming_file(answer, 413)
        assert answer.json()["max_bytes"] == limit
    assert "content-length" not in streamed.request.headers
    assert just_fits.status_code == 201, just_fits.text
    assert just_fits.json()["size"] == limit
    assert rows == 1
    # Only the file that fitted; no temporary leftovers.
    assert stored_files(tmp_path) == [
        tmp_path / "attachments" / sha[:2] / sha[2:4] / sha for sha in [just_fits.json()["sha256"]]
    ]


async def test_the_same_content_twice_is_one_stored_file_and_two_rows(
    app: FastAPI, nats_url: str, tmp_path: Path
) -> None:
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        lead_id = await lead_of(app, client, nats_url, "rep-zhang")
        first = await upload(client, lead_id, PDF, rep, name="报价单.pdf")
        second = await upload(client, lead_id, PDF, rep, name="报价单(1).pdf")
        rows = await attachment_rows(app)

    assert first.status_code == second.status_code == 201
    assert first.json()["attachment_id"] != second.json()["attachment_id"]
    assert first.json()["sha256"] == second.json()["sha256"]
    assert second.json()["original_name"] == "报价单(1).pdf"
    assert rows == 2
    assert len(stored_files(tmp_path)) == 1


async def test_a_rep_cannot_upload_to_or_read_another_reps_lead(
    app: FastAPI, nats_url: str, tmp_path: Path
) -> None:
    async with running(app) as client:
        zhang = await api_key(app, Role.REP, rep_id="rep-zhang")
        li = await api_key(app, Role.REP, rep_id="rep-li")
        supervisor = await api_key(app, Role.SUPERVISOR)
        lead_id = await lead_of(app, client, nats_url, "rep-li")
        theirs = (await upload(client, lead_id, PDF, li)).json()["attachment_id"]

        upload_there = await upload(client, lead_id, exif_jpeg(), zhang)
        unknown_lead = await upload(client, str(uuid.uuid4()), exif_jpeg(), zhang)
        metadata = await client.get(f"/v1/attachments/{theirs}", headers=zhang)
        content = await client.get(f"/v1/attachments/{theirs}/content", headers=zhang)
        unknown = await client.get(f"/v1/attachments/{uuid.uuid4()}", headers=zhang)
        by_supervisor = await client.get(f"/v1/attachments/{theirs}/content", headers=supervisor)
        rows = await attachment_rows(app)

    for answer in (upload_there, unknown_lead, metadata, content, unknown):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    # Someone else's attachment and no attachment at all look the same.
    assert metadata.json()["detail"] == f"no attachment {theirs}"
    assert by_supervisor.status_code == 200
    assert by_supervisor.content == PDF
    assert rows == 1
    assert len(stored_files(tmp_path)) == 1


async def test_a_malformed_upload_is_a_problem_naming_the_file_never_a_500(
    app: FastAPI, nats_url: str, tmp_path: Path
) -> None:
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        lead_id = await lead_of(app, client, nats_url, "rep-zhang")
        path = f"/v1/leads/{lead_id}/attachments"
        not_multipart = await client.post(path, json={"file": "x"}, headers=rep)
        other_field = await client.post(
            path, files={"photo": ("a.jpg", exif_jpeg(), "image/jpeg")}, headers=rep
        )
        empty = await upload(client, lead_id, b"", rep)
        cut_short = await client.post(
            path,
            content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
            + PDF,
            headers={**rep, "Content-Type": "multipart/form-data; boundary=b"},
        )
        garbage = await client.post(
            path,
            content=b"this is not multipart at all",
            headers={**rep, "Content-Type": "multipart/form-data; boundary=b"},
        )
        integration = await upload(client, lead_id, PDF, await api_key(app, Role.INTEGRATION))
        rows = await attachment_rows(app)

    for answer in (not_multipart, other_field, empty, cut_short, garbage):
        assert_problem_naming_file(answer, 422)
    assert other_field.json()["errors"][0]["code"] == "missing"
    assert "empty" in empty.json()["detail"]
    assert integration.status_code == 403
    assert rows == 0
    assert stored_files(tmp_path) == []
