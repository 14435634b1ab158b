"""Upload memory: one 50 MB file posted to activity while its resident memory is watched.

activity runs as a process (`python -m activity`, one uvicorn worker) on its own nats-server
and SQLite files in a temporary directory; a lead is announced on the bus, one small upload
warms the process up, then a 50 MB PDF is streamed in one multipart POST. The upload is parsed
chunk by chunk into the content store, so the process should grow by a few MB at most (issue 5
target: < 10 MB). The peak is the kernel's high-water mark (VmHWM), reset just before the upload
(`/proc/<pid>/clear_refs`), so no short spike is missed between samples.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import REPO_ROOT, Context, Figure
from bench.servers import free_port, start_process

NAME = "upload_memory"
REQUIRES: tuple[str, ...] = ()

MB = 1024 * 1024
CHUNK = MB
BOUNDARY = "bench-upload-" + uuid.uuid4().hex


def run(ctx: Context) -> list[Figure]:
    from salesrail.embedded_nats import EmbeddedNats

    size = int(float(ctx.options.get("upload_memory.mb", 50)) * MB)
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp_dir:
        tmp = Path(tmp_dir)
        nats = EmbeddedNats(
            store_dir=tmp / "nats",
            port=free_port(),
            server_name=f"bench-upload-{uuid.uuid4().hex[:8]}",
        )
        nats.start()
        try:
            auth_url = f"sqlite+aiosqlite:///{tmp / 'auth.db'}"
            headers = {"X-API-Key": asyncio.run(_admin_key(auth_url))}
            port = free_port()
            env = {
                "SALESRAIL_NATS_URL": nats.url,
                "SALESRAIL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'activity.db'}",
                "SALESRAIL_AUTH_DATABASE_URL": auth_url,
                "SALESRAIL_DATA_DIR": str(tmp / "data"),
                "SALESRAIL_ACTIVITY_HOST": "127.0.0.1",
                "SALESRAIL_ACTIVITY_PORT": str(port),
                "SALESRAIL_ACTIVITY_ATTACHMENT_MAX_BYTES": str(size + MB),
                "SALESRAIL_LOG_LEVEL": "WARNING",
                "SALESRAIL_SHUTDOWN_GRACE_S": "5",
            }
            with start_process(
                [sys.executable, "-m", "activity"],
                port,
                env=env,
                cwd=REPO_ROOT,
                ready_path="/healthz",
                timeout=60,
                description="activity (1 uvicorn worker, SQLite)",
            ) as server:
                pid = server.proc.pid
                with httpx.Client(base_url=server.url("/"), headers=headers, timeout=120) as client:
                    lead_id = _announce_lead(client, nats.url)
                    _upload(client, lead_id, _pdf(64 * 1024, seed=b"warm-up"), 64 * 1024)
                    time.sleep(0.5)  # let the warm-up's allocations settle
                    baseline = _status_kb(pid, "VmRSS")
                    _reset_peak(pid)
                    started = time.perf_counter()
                    answer, sha256 = _upload(client, lead_id, _pdf(size, seed=b"bench"), size)
                    seconds = time.perf_counter() - started
                    peak = _status_kb(pid, "VmHWM")
                    after = _status_kb(pid, "VmRSS")
        finally:
            nats.stop()

    body = answer.json()
    if body.get("sha256") != sha256 or body.get("size") != size:
        raise RuntimeError(f"the stored file does not match what was sent: {body}")
    mb = size / MB
    note = (
        f"{mb:g} MB PDF in one multipart POST (Content-Length, {CHUNK // 1024} KB writes), "
        f"{server.description}; RSS before {baseline / 1024:.1f} MB, peak {peak / 1024:.1f} MB "
        f"(VmHWM reset before the upload), after {after / 1024:.1f} MB"
    )
    return [
        Figure("upload_rss_peak_growth", (peak - baseline) / 1024, "MB", note),
        Figure("upload_rss_retained_growth", (after - baseline) / 1024, "MB", "RSS after - before"),
        Figure("upload_throughput", mb / seconds, "MB/s", f"{seconds:.2f} s for {mb:g} MB"),
    ]


async def _admin_key(auth_url: str) -> str:
    from salesrail.auth import Role
    from salesrail.auth.api_keys import ApiKeyStore
    from salesrail.clock import system_clock
    from salesrail.db.database import Database

    db = Database(auth_url)
    try:
        store = ApiKeyStore(db, clock=system_clock)
        await store.migrate()
        return await store.create(role=Role.ADMIN, name="bench-upload")
    finally:
        await db.dispose()


def _announce_lead(client: httpx.Client, nats_url: str, timeout: float = 30.0) -> str:
    """A lead as lead-router announces it, once activity has taken it in."""
    from salesrail.events.catalog import LeadReceived
    from salesrail.events.envelope import Envelope, new_event_id

    lead_id = str(uuid.uuid4())
    data = LeadReceived(
        lead_id=lead_id,
        source="bench",
        company_name="宁波鑫盛机床有限公司",
        city="宁波",
        category="机床",
        received_at=datetime.now(UTC),
    )
    envelope = Envelope(
        id=new_event_id(),
        type=data.event_type,
        occurred_at=datetime.now(UTC),
        source="lead-router",
        data=data.model_dump(mode="json", by_alias=True),
    )
    asyncio.run(
        _publish(nats_url, envelope.subject, envelope.model_dump_json().encode(), envelope.id)
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f"/v1/leads/{lead_id}/stage").status_code == 200:
            return lead_id
        time.sleep(0.1)
    raise TimeoutError(f"activity did not take in lead {lead_id} within {timeout:.0f}s")


async def _publish(nats_url: str, subject: str, payload: bytes, msg_id: str) -> None:
    import nats

    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


def _pdf(size: int, *, seed: bytes) -> Iterator[bytes]:
    """`size` bytes starting like a PDF, the rest varied (each block its own digest)."""
    head = b"%PDF-1.7\n"
    yield head
    sent, n = len(head), 0
    block = os.urandom(CHUNK - 32)
    while sent < size:
        chunk = (hashlib.sha256(seed + n.to_bytes(8, "big")).digest() + block)[: size - sent]
        sent += len(chunk)
        n += 1
        yield chunk


def _upload(
    client: httpx.Client, lead_id: str, content: Iterator[bytes], size: int
) -> tuple[httpx.Response, str]:
    """POST the content as the multipart part `file`, streamed; the answer and its sha256."""
    opening = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="bench.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    closing = f"\r\n--{BOUNDARY}--\r\n".encode()
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        yield opening
        for chunk in content:
            digest.update(chunk)
            yield chunk
        yield closing

    answer = client.post(
        f"/v1/leads/{lead_id}/attachments",
        content=body(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(opening) + size + len(closing)),
        },
    )
    if answer.status_code != 201:
        raise RuntimeError(f"upload answered {answer.status_code}: {answer.text[:500]}")
    return answer, digest.hexdigest()


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def _reset_peak(pid: int) -> None:
    # "5" resets the process's VmHWM to its current RSS (Linux >= 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")
