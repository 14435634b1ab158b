"""Watching the bus from a test."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import nats
from nats.aio.msg import Msg


async def wait_for_messages(
    nats_url: str,
    subject: str,
    *,
    count: int = 1,
    where: Callable[[dict[str, Any]], bool] = lambda _e: True,
    timeout_s: float = 15.0,
    settle_s: float = 0.0,
) -> list[Msg]:
    """Read the stream from its start; return the messages that match, waiting for `count`.

    With `settle_s`, keep listening that long after `count` arrived, so a test can prove no
    extra copy follows.
    """
    nc = await nats.connect(nats_url)
    found: list[Msg] = []
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        settle_until: float | None = None
        while True:
            now = loop.time()
            until = settle_until if settle_until is not None else deadline
            if now >= until:
                break
            try:
                msg = await sub.next_msg(timeout=min(0.5, until - now))
            except nats.errors.TimeoutError:
                continue
            try:
                envelope = json.loads(msg.data)
            except ValueError:
                envelope = {}
            if where(envelope):
                found.append(msg)
                if len(found) >= count and settle_until is None:
                    if not settle_s:
                        break
                    settle_until = loop.time() + settle_s
    finally:
        await nc.close()
    return found


def envelope_of(msg: Msg) -> dict[str, Any]:
    return json.loads(msg.data)


def untouched_alert(lead_id: str, owner_id: str) -> bytes:
    """A `salesrail.sla.alert.untouched_72h` for the lead, as sla-monitor publishes it."""
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": "sla.alert.untouched_72h",
            "occurred_at": now,
            "source": "sla-monitor",
            "version": 1,
            "data": {
                "rule": "untouched_72h",
                "lead_id": lead_id,
                "owner_id": owner_id,
                "due_at": now,
                "fired_at": now,
                "notify": ["lead-router"],
                "severity": "warning",
            },
        }
    ).encode()
