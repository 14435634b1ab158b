"""`salesrail leads import` as a person runs it, against a lead-router process."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from salesrail.cluster import SERVICES
from salesrail.embedded_nats import free_port
from tests.support.processes import ServiceProcess

LEAD_ROUTER = next(s for s in SERVICES if s.name == "lead-router")
# Rows 2, 3 and 6 are good; 4 is refused (no city, bad phone); 5 repeats row 2's external id.
FILE = (
    "external_id,公司名称,联系人,手机,城市,品类,备注,微信\n"
    "cli-1,杭州恒通紧固件有限公司,王建国,13857112345,杭州,紧固件,老客户,wx1\n"
    "cli-2,深圳市创芯电子科技有限公司,陈晓东,13824567890,深圳,电子元件,,\n"
    "cli-3,成都蜀航化工有限公司,杨帆,1234567890123456789012345678901234567890,,化工原料,,\n"
    "cli-1,杭州恒通紧固件有限公司,王建国,13857112345,杭州,紧固件,,\n"
    ",西安秦川包装材料有限公司,马超,13991123456,西安,包装材料,,\n"
)


@pytest.fixture
def service(tmp_path: Path, fresh_nats_url: str) -> Iterator[ServiceProcess]:
    env = {
        "SALESRAIL_NATS_URL": fresh_nats_url,
        "SALESRAIL_DATA_DIR": str(tmp_path),
        "SALESRAIL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'lead-router.db'}",
        "SALESRAIL_AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
    }
    process = ServiceProcess(LEAD_ROUTER, env=env, log_path=tmp_path / "lead-router.log")
    process.start()
    try:
        process.wait_ready()
        yield process
    finally:
        assert process.stop() == 0, process.logs()


async def _api_key(service: ServiceProcess) -> str:
    from salesrail.auth.api_keys import ApiKeyStore
    from salesrail.auth.principal import Role
    from salesrail.clock import system_clock
    from salesrail.db.database import Database

    db = Database(service.env["SALESRAIL_AUTH_DATABASE_URL"])
    try:
        store = ApiKeyStore(db, clock=system_clock)
        await store.migrate()
        return await store.create(role=Role.INTEGRATION, name="cli-test")
    finally:
        await db.dispose()


def salesrail(*args: str, api_key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SALESRAIL_API_KEY": api_key, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "salesrail.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def report_rows(path: Path) -> dict[int, dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return {int(r["row"]): r for r in csv.DictReader(handle)}


def count_of(summary: str, status: str) -> int:
    match = re.search(rf"{status}\W+(\d+)", summary)
    assert match, summary
    return int(match[1])


async def test_an_import_reports_each_row_and_a_second_run_creates_nothing(
    service: ServiceProcess, tmp_path: Path
) -> None:
    key = await _api_key(service)
    leads = tmp_path / "leads.csv"
    leads.write_bytes(FILE.encode("gbk"))  # as Excel on a Chinese Windows saves it
    report = tmp_path / "report.csv"

    first = salesrail(
        "leads",
        "import",
        str(leads),
        "--url",
        service.url,
        "--report",
        str(report),
        "--concurrency",
        "4",
        api_key=key,
    )
    assert first.returncode == 0, first.stdout + first.stderr + service.logs()
    assert "ignored columns: 微信" in first.stderr
    assert (count_of(first.stdout, "created"), count_of(first.stdout, "replayed")) == (3, 1)
    assert count_of(first.stdout, "refused") == 1
    rows = report_rows(report)
    assert sorted(rows) == [2, 3, 4, 5, 6]
    assert rows[4]["status"] == "refused"
    assert "city" in rows[4]["errors"] and "phone" in rows[4]["errors"]
    # Rows 2 and 5 are one lead: rows in flight together still keep the first in the file.
    assert (rows[2]["status"], rows[5]["status"]) == ("created", "replayed")
    assert rows[2]["lead_id"] == rows[5]["lead_id"] != ""

    again = salesrail(
        "leads", "import", str(leads), "--url", service.url, "--report", str(report), api_key=key
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert (count_of(again.stdout, "created"), count_of(again.stdout, "replayed")) == (0, 4)
    second = report_rows(report)
    assert {n: r["lead_id"] for n, r in second.items()} == {
        n: r["lead_id"] for n, r in rows.items()
    }


async def test_nothing_processed_exits_1(service: ServiceProcess, tmp_path: Path) -> None:
    key = await _api_key(service)
    picture = tmp_path / "leads.csv"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    leads = tmp_path / "good.csv"
    leads.write_text(FILE, encoding="utf-8")

    unreadable = salesrail("leads", "import", str(picture), "--url", service.url, api_key=key)
    bad_key = salesrail("leads", "import", str(leads), "--url", service.url, api_key="srk_x_y")
    missing = salesrail(
        "leads", "import", str(tmp_path / "nope.csv"), "--url", service.url, api_key=key
    )
    nobody = salesrail(
        "leads", "import", str(leads), "--url", f"http://127.0.0.1:{free_port()}", api_key=key
    )

    assert unreadable.returncode == 1
    assert "neither CSV nor .xlsx" in unreadable.stderr
    assert bad_key.returncode == 1
    assert "API key" in bad_key.stderr
    assert missing.returncode == 1
    assert "cannot open" in missing.stderr
    assert nobody.returncode == 1
    assert "cannot reach lead-router" in nobody.stderr
