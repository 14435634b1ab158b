"""`salesrail up` on a fresh data directory: embedded NATS, SQLite, all five services ready."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from salesrail.cluster import SERVICES
from salesrail.embedded_nats import free_port, port_is_free

SALESRAIL = str(Path(sys.executable).parent / "salesrail")
KEY = re.compile(r"srk_[0-9a-f]{12}_[A-Za-z0-9_\-]{43}")


class Up:
    """`salesrail up` in the background, its output collected line by line."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [SALESRAIL, "up"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output:
            assert self.process.poll() is None, self.output
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output}"
            time.sleep(0.1)

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)


def test_salesrail_up_runs_the_cluster_and_keeps_its_data_across_runs(tmp_path: Path) -> None:
    ports = {spec.name: free_port() for spec in SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESRAIL_")}
    env.update({f"{s.env_prefix}PORT": str(ports[s.name]) for s in SERVICES})
    env["COLUMNS"] = "200"

    first = Up(env, cwd=tmp_path)
    try:
        first.wait_for("Salesrail is up")
        keys = KEY.findall(first.output)
        assert len(keys) == 1, "the admin key is printed once, on first start"
        state = json.loads((tmp_path / "var" / "cluster.json").read_text())
        nats_url = state["nats_url"]
        if not port_is_free(4222):
            assert not nats_url.endswith(":4222"), "4222 is taken: the embedded NATS moves"
        assert nats_url in first.output

        status = subprocess.run(
            [SALESRAIL, "status"], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert status.returncode == 0, status.stdout
        assert nats_url in status.stdout

        for spec in SERVICES:
            ready = httpx.get(f"http://127.0.0.1:{ports[spec.name]}/readyz")
            assert ready.status_code == 200, spec.name
        admin = {"X-API-Key": keys[0]}
        lead = httpx.post(
            f"http://127.0.0.1:{ports['lead-router']}/v1/leads",
            headers=admin,
            json={
                "source": "expo",
                "company_name": "苏州某某电子有限公司",
                "contact_name": "陈工",
                "phone": "13612345678",
                "city": "苏州",
                "category": "电子元件",
            },
        )
        assert lead.status_code == 201, lead.text
        # The channel's credentials are sealed with the key `up` made and passed on.
        hook = {"id": "crm", "type": "webhook", "url": "https://hooks.example/s?t=tok-1"}
        rep = httpx.put(
            f"http://127.0.0.1:{ports['lead-router']}/v1/reps/rep-chen",
            headers=admin,
            json={"name": "陈", "channels": [{**hook, "secret": "s" * 24}]},
        )
        assert rep.status_code == 201, rep.text
    finally:
        assert first.interrupt() == 0, first.output
    channel_key = (tmp_path / "var" / "channel-keys").read_text()
    assert (tmp_path / "var" / "channel-keys").stat().st_mode & 0o777 == 0o600
    assert "stopped" in first.output
    assert not (tmp_path / "var" / "cluster.json").exists()

    second = Up(env, cwd=tmp_path)
    try:
        second.wait_for("Salesrail is up")
        again = httpx.get(
            f"http://127.0.0.1:{ports['lead-router']}/v1/leads/{lead.json()['id']}", headers=admin
        )
        assert again.status_code == 200, "the data and the key survived the restart"
        rep_again = httpx.get(
            f"http://127.0.0.1:{ports['lead-router']}/v1/reps/rep-chen", headers=admin
        )
        assert rep_again.json()["channels"][0]["url"] == "https://hooks.example/…"
        assert (tmp_path / "var" / "channel-keys").read_text() == channel_key
        assert KEY.findall(second.output) == [], "no new admin key on later starts"
    finally:
        assert second.interrupt() == 0, second.output
