"""Bulk import on a real bus and database: per-row report, bad rows, re-import, bad files."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from lead_router import importing
from lead_router.config import Settings
from lead_router.main import create_app
from lead_router.models import Lead
from salesrail.auth.principal import Role
from tests.support.apps import api_key, running, runtime, service_app

SHANGHAI = timezone(timedelta(hours=8))
# Row 2 and 3 are good, 4 lacks a city and has a bad phone, 5 repeats row 2's external id,
# 6 is good without an external id, 7 arrived in the future.
FILE = (
    "外部编号,公司名称,联系人,手机,城市,品类,预算,接收时间,微信\n"
    "imp-1,杭州恒通紧固件有限公司,王建国,13857112345,杭州,紧固件,20万,2024-03-01 09:30,wx1\n"
    "imp-2,深圳市创芯电子科技有限公司,陈晓东,13824567890,深圳,电子元件,,,\n"
    "imp-3,成都蜀航化工有限公司,杨帆,1234567890123456789012345678901234567890,,化工原料,,,\n"
    "imp-1,杭州恒通紧固件有限公司,王建国,13857112345,杭州,紧固件,,,\n"
    ",西安秦川包装材料有限公司,马超,13991123456,西安,包装材料,,,\n"
    "imp-5,北京中科精测仪器有限公司,吴静,13910123456,北京,实验仪器,,2099-01-01 00:00,\n"
)


@pytest.fixture
def app(database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path) -> FastAPI:
    return service_app(
        create_app,
        Settings,
        database_url=database_url,
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=tmp_path,
    )


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    name: str = "leads.csv",
    **form: str,
) -> httpx.Response:
    return await client.post(
        "/v1/leads/import",
        files={"file": (name, data, "application/octet-stream")},
        data=form,
        headers=headers,
    )


async def lead_count(app: FastAPI) -> int:
    async with runtime(app).unit_of_work() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Lead)) or 0


def by_row(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["row"]: r for r in report["rows"]}


async def test_every_row_is_reported_and_bad_rows_do_not_stop_the_file(app: FastAPI) -> None:
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        answer = await upload(client, headers, FILE.encode("gbk"), source="expo")
        assert answer.status_code == 200, answer.text
        report = answer.json()
        rows = by_row(report)
        reader = await api_key(app, Role.ADMIN)
        first = await client.get(f"/v1/leads/{rows[2]['lead_id']}", headers=reader)

    assert report["file"]["format"] == "csv"
    assert report["file"]["encoding"] == "gb18030"
    assert report["file"]["ignored_columns"] == ["微信"]
    assert report["totals"] == {
        "rows": 6,
        "created": 3,
        "duplicate": 0,
        "replayed": 1,
        "refused": 2,
    }
    assert [rows[n]["status"] for n in range(2, 8)] == [
        "created",
        "created",
        "refused",
        "replayed",
        "created",
        "refused",
    ]
    assert {e["field"] for e in rows[4]["errors"]} == {"city", "phone"}
    assert rows[4]["lead_id"] is None
    assert rows[5]["lead_id"] == rows[2]["lead_id"]  # the same external id: the first lead
    assert [e["field"] for e in rows[7]["errors"]] == ["received_at"]
    assert all(rows[n]["lead_status"] for n in (2, 3, 5, 6))

    lead = first.json()
    assert lead["source"] == "expo"  # the form's source, as the file has no source column
    assert lead["budget"] == 200_000
    received_at = datetime.fromisoformat(lead["received_at"])
    assert received_at == datetime(2024, 3, 1, 9, 30, tzinfo=SHANGHAI)


async def test_importing_the_same_file_again_creates_nothing_new(app: FastAPI) -> None:
    async with running(app) as client:
        headers = await api_key(app, Role.OPS)
        first = (await upload(client, headers, FILE.encode())).json()
        count = await lead_count(app)
        again = await upload(client, headers, FILE.encode())
        assert await lead_count(app) == count == 3

    assert again.status_code == 200
    before, after = by_row(first), by_row(again.json())
    for number, row in before.items():
        if row["status"] == "refused":
            assert after[number]["status"] == "refused"
        else:
            assert after[number]["status"] == "replayed"
            assert after[number]["lead_id"] == row["lead_id"]


async def test_an_xlsx_upload_goes_the_same_way(app: FastAPI) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["company_name", "contact_name", "phone", "city", "category", "source", "tags"])
    sheet.append(
        ["宁波某某机械有限公司", "李经理", 13912345678, "宁波", "机床", "douyin", "展会、高意向"]
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    async with running(app) as client:
        headers = await api_key(app, Role.SUPERVISOR)
        answer = await upload(client, headers, buffer.getvalue(), name="leads.xlsx")
        assert answer.status_code == 200, answer.text
        [row] = answer.json()["rows"]
        admin = await api_key(app, Role.ADMIN)
        lead = (await client.get(f"/v1/leads/{row['lead_id']}", headers=admin)).json()
    assert row["status"] == "created"
    assert (lead["source"], lead["tags"]) == ("douyin", ["展会", "高意向"])


async def test_a_file_that_is_not_leads_is_a_problem_naming_what_is_wrong(app: FastAPI) -> None:
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        picture = await upload(client, headers, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a.png")
        columns = await upload(client, headers, "公司名称,联系人,城市\n甲,张,杭州\n".encode())
        no_file = await client.post("/v1/leads/import", data={"source": "x"}, headers=headers)
        assert await lead_count(app) == 0

    assert picture.status_code == 422
    assert picture.headers["content-type"] == "application/problem+json"
    assert picture.json()["errors"][0]["field"] == "file"
    assert columns.status_code == 422
    assert {e["field"] for e in columns.json()["errors"]} == {"phone", "category"}
    assert "phone, category" in columns.json()["detail"]
    assert no_file.status_code == 422
    assert no_file.json()["errors"][0]["field"] == "file"


async def test_import_needs_a_role_that_may_import(app: FastAPI) -> None:
    async with running(app) as client:
        rep = await api_key(app, Role.REP, rep_id="rep-zhang")
        refused = await upload(client, rep, FILE.encode())
        anonymous = await upload(client, {}, FILE.encode())
        assert await lead_count(app) == 0
    assert refused.status_code == 403
    assert anonymous.status_code == 401


async def test_files_past_the_limits_are_refused_whole(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "MAX_ROWS", 5)
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        many = await upload(client, headers, FILE.encode())  # 6 rows
        monkeypatch.setattr(importing, "MAX_BYTES", 100)
        big = await upload(client, headers, FILE.encode())
        assert await lead_count(app) == 0
    assert many.status_code == 413
    assert "more than 5 rows" in many.json()["detail"]
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"


async def test_blank_lines_count_against_the_row_limit(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "MAX_ROWS", 5)
    lines = FILE.splitlines(keepends=True)
    padded = lines[0] + lines[1] + ",,,,,,,,\n" * 10 + lines[2]  # 2 rows, 12 lines
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        answer = await upload(client, headers, padded.encode())
        assert await lead_count(app) == 0
    assert answer.status_code == 413
    assert "more than 5 rows" in answer.json()["detail"]


async def test_an_upload_without_content_length_is_refused_unread(app: FastAPI) -> None:
    pulled = 0

    async def chunked() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(100):
            pulled += 1
            yield b"x" * 65536

    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        answer = await client.post(
            "/v1/leads/import",
            content=chunked(),
            headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
        )
    assert answer.status_code == 411
    assert answer.headers["content-type"] == "application/problem+json"
    assert "Content-Length" in answer.json()["detail"]
    assert pulled <= 1


async def test_reading_stops_where_a_lying_content_length_ends(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "MAX_BYTES", 100)
    monkeypatch.setattr(importing, "_MULTIPART_SLACK", 1000)
    body = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.csv\r\n\r\n"
    body += FILE.encode() * 500 + b"\r\n--b--\r\n"
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        answer = await client.post(
            "/v1/leads/import",
            content=body,
            headers={
                **headers,
                "Content-Type": "multipart/form-data; boundary=b",
                "Content-Length": "1000",  # the body is some 380 kB
            },
        )
        assert await lead_count(app) == 0
    assert answer.status_code == 413
    assert "longer than its Content-Length" in answer.json()["detail"]


async def test_an_xlsx_zip_bomb_is_refused_naming_the_file(app: FastAPI) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"<si><t>x</t></si>" * (1 << 20))
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        answer = await upload(client, headers, buffer.getvalue(), name="bomb.xlsx")
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "file"
    assert "packed more than" in answer.json()["detail"]
