"""`salesrail leads import` as a person runs it, against a lead-router process."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from salesrail.auth.principal import Role
from salesrail.cluster import SERVICES
from salesrail.embedded_nats import free_port
from tests.support.processes import ServiceProcess, api_key_in

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
    auth_url = service.env["SALESRAIL_AUTH_DATABASE_URL"]
    return await api_key_in(auth_url, Role.INTEGRATION, "cli-test")


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


# A stand-in lead-router: (method, path) -> (status, body); a callable gets the request JSON.
Answer = tuple[int, Any]
Routes = dict[tuple[str, str], Answer | Callable[[Any], Answer]]


@pytest.fixture
def fake_router() -> Iterator[tuple[Routes, list[tuple[str, str]], str]]:
    routes: Routes = {("GET", "/healthz"): (200, {"status": "ok"})}
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = json.loads(self.rfile.read(length) or b"null")
            seen.append((self.command, self.path))
            found = routes.get((self.command, self.path), (404, {"detail": "no such route"}))
            status, body = found(request) if callable(found) else found
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield routes, seen, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_cli(*args: str) -> Any:
    from salesrail.cli.main import app

    env = {"SALESRAIL_API_KEY": "srk_test", "COLUMNS": "160"}
    return CliRunner().invoke(app, list(args), env=env)


def test_an_unexpected_answer_fails_its_row_and_the_import_goes_on(
    fake_router: tuple[Routes, list[tuple[str, str]], str], tmp_path: Path
) -> None:
    routes, _seen, url = fake_router

    def intake(lead: dict[str, Any]) -> Answer:
        if lead["external_id"] == "cli-2":
            return 200, b"<html>a proxy says hello</html>"  # a 200 that is not JSON
        return 201, {"id": f"lead-{lead['external_id']}", "status": "routed"}

    routes[("POST", "/v1/leads")] = intake
    leads = tmp_path / "leads.csv"
    leads.write_text("".join(FILE.splitlines(keepends=True)[:3]), encoding="utf-8")
    report = tmp_path / "report.csv"

    result = run_cli("leads", "import", str(leads), "--url", url, "--report", str(report))

    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1  # a row got no usable answer: run it again
    assert count_of(result.stdout, "created") == 1
    assert count_of(result.stdout, "failed") == 1
    rows = report_rows(report)
    assert (rows[2]["status"], rows[3]["status"]) == ("created", "failed")
    assert "JSONDecodeError" in rows[3]["errors"]


def test_report_cells_a_spreadsheet_would_run_as_formulas_are_quoted(
    fake_router: tuple[Routes, list[tuple[str, str]], str], tmp_path: Path
) -> None:
    routes, _seen, url = fake_router

    def intake(lead: dict[str, Any]) -> Answer:
        if lead["external_id"] == "cli-1":
            return 201, {"id": '=HYPERLINK("http://evil","x")', "status": "+routed"}
        problem = {"detail": "bad", "errors": [{"field": "@phone", "message": "-1"}]}
        return 422, problem

    routes[("POST", "/v1/leads")] = intake
    leads = tmp_path / "leads.csv"
    leads.write_text("".join(FILE.splitlines(keepends=True)[:3]), encoding="utf-8")
    report = tmp_path / "report.csv"

    result = run_cli("leads", "import", str(leads), "--url", url, "--report", str(report))

    assert result.exit_code == 0, result.stdout + result.stderr
    rows = report_rows(report)
    assert rows[2]["lead_id"] == '\'=HYPERLINK("http://evil","x")'
    assert rows[2]["lead_status"] == "'+routed"
    assert rows[3]["errors"] == "'@phone: -1"
    assert rows[3]["status"] == "refused"


def put_count(seen: list[tuple[str, str]]) -> int:
    return sum(1 for method, _ in seen if method == "PUT")


@pytest.mark.parametrize(
    ("reps", "rules"),
    [
        ([{"id": "rep-a"}], {"version": 1, "yaml": "rules: []"}),
        ([], {"version": 2, "yaml": "rules:\n  - name: r\n    assign: {pool: public}\n"}),
    ],
    ids=["has-reps", "has-rules"],
)
def test_the_demo_refuses_an_instance_in_use_unless_told_yes(
    fake_router: tuple[Routes, list[tuple[str, str]], str], reps: list[Any], rules: Any
) -> None:
    routes, seen, url = fake_router
    routes[("GET", "/v1/reps")] = (200, reps)
    routes[("GET", "/v1/rules/routing")] = (200, rules)
    routes[("POST", "/v1/leads")] = (201, {"id": "l", "status": "routed"})
    for path in ("/v1/teams/east-china", "/v1/teams/south-china", "/v1/rules/routing"):
        routes[("PUT", path)] = (200, {})

    refused = run_cli("demo", "--url", url)
    assert refused.exit_code == 2, refused.stdout + refused.stderr
    assert "--yes" in refused.stderr and "in use" in refused.stderr
    assert put_count(seen) == 0 and ("POST", "/v1/leads") not in seen

    forced = run_cli("demo", "--url", url, "--yes")
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    assert ("PUT", "/v1/rules/routing") in seen


def test_the_demo_runs_on_a_fresh_instance(
    fake_router: tuple[Routes, list[tuple[str, str]], str],
) -> None:
    routes, seen, url = fake_router
    routes[("GET", "/v1/reps")] = (200, [])
    routes[("GET", "/v1/rules/routing")] = (200, {"version": 2, "yaml": "rules: []\n"})
    routes[("POST", "/v1/leads")] = (201, {"id": "l", "status": "routed"})

    result = run_cli("demo", "--url", url)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert ("PUT", "/v1/rules/routing") in seen
