"""The pull loop's batch fetch on a real nats-server: queued messages are handed over without
a task each, and everything else (partial batches, timeouts) is still nats-py's."""

from __future__ import annotations

import asyncio
import time

import nats
from nats.js.api import AckPolicy, ConsumerConfig

from salesrail.bus.consumer import _hand_over_queued_messages


async def test_batches_come_whole_in_order_then_partial_then_time_out(fresh_nats_url: str) -> None:
    nc = await nats.connect(fresh_nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="FETCH_TEST", subjects=["fetch.>"])
        for i in range(1200):
            await js.publish("fetch.one", str(i).encode(), headers={"Nats-Msg-Id": f"m{i}"})
        sub = await js.pull_subscribe(
            "fetch.>",
            durable="fetch-test",
            stream="FETCH_TEST",
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=5000),
        )
        _hand_over_queued_messages(sub._sub)

        batches = [await sub.fetch(500, timeout=5) for _ in range(3)]
        assert [len(b) for b in batches] == [500, 500, 200]
        data = [int(m.data) for b in batches for m in b]
        assert data == list(range(1200))
        for message in (m for b in batches for m in b):
            await message.ack()
        assert sub.pending_msgs == 0 and sub.pending_bytes == 0

        started = time.monotonic()
        try:
            await sub.fetch(500, timeout=0.5)
            raise AssertionError("an empty consumer gave messages")
        except TimeoutError:  # nats-py's own and asyncio's are both TimeoutError
            pass
        assert time.monotonic() - started < 3

        # A fetch that is waiting when messages come hands over what arrived.
        waiting = asyncio.ensure_future(sub.fetch(500, timeout=5))
        await asyncio.sleep(0.2)
        for i in range(3):
            await js.publish("fetch.one", f"late {i}".encode())
        late = await waiting
        assert [m.data for m in late][:1] == [b"late 0"]
        rest = late + (await sub.fetch(500, timeout=1) if len(late) < 3 else [])
        assert [m.data for m in rest] == [b"late 0", b"late 1", b"late 2"]
        assert sub.pending_msgs == 0 and sub.pending_bytes == 0
    finally:
        await nc.close()
