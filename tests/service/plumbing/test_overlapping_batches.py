"""Overlapping batches on a real nats-server: the next batch begins once the one before holds
its locks, commits only after it, and never overtakes it when it fails."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from salesrail.bus.consumer import BatchTurn, EventConsumer, PullLoop
from salesrail.clock import SystemClock
from salesrail.events.streams import StreamSpec

STREAM = StreamSpec(name="OVERLAP_TEST", domain="overlaptest", description="overlap test")


class RecordingConsumer(EventConsumer):
    """Takes 'locks', spends a while 'in the database', then commits, writing down when; the
    batches listed in `failing` roll back and are retried by themselves."""

    overlaps_batches = True

    def __init__(self, failing: set[int]) -> None:
        super().__init__(name="overlap-test", stream=STREAM)
        self.failing = failing
        self.log: list[str] = []

    async def process_batch(self, messages: list[Msg], runner: Any, turn: BatchTurn) -> None:
        batch = int(messages[0].data) // 10
        await turn.previous_locked()
        self.log.append(f"locked {batch}")
        turn.hold_locks()
        await asyncio.sleep(0.2)  # the batch's database work
        if batch in self.failing or not await turn.previous_committed():
            turn.committed(False)
            self.log.append(f"rolled back {batch}")
            await turn.previous_finished()
            await asyncio.sleep(0.3)  # one-by-one retries
            self.log.append(f"retried {batch}")
        else:
            self.log.append(f"committed {batch}")
            turn.committed(True)
        for message in messages:
            await message.ack()


async def _run(nats_url: str, failing: set[int]) -> list[str]:
    nc = await nats.connect(nats_url)
    loop: PullLoop | None = None
    try:
        js: JetStreamContext = nc.jetstream()
        await js.add_stream(name=STREAM.name, subjects=STREAM.subjects)
        for i in range(30):
            await js.publish("salesrail.overlaptest.one", str(i).encode())
        consumer = RecordingConsumer(failing)
        loop = consumer.bind(
            unit_of_work=None,  # type: ignore[arg-type]  # this consumer opens none
            js=js,
            clock=SystemClock(),
            batch_size=10,
            max_deliver=3,
            backoff_s=[0.1],
            ack_wait_s=30,
        )
        await loop.start()
        for _ in range(100):
            if sum(line.startswith(("committed", "retried")) for line in consumer.log) == 3:
                break
            await asyncio.sleep(0.05)
        return consumer.log
    finally:
        if loop is not None:
            await loop.stop(grace_s=5)
        await nc.close()


async def test_the_next_batch_begins_before_the_last_commits_and_commits_after_it(
    fresh_nats_url: str,
) -> None:
    log = await _run(fresh_nats_url, failing=set())
    assert log.index("locked 1") < log.index("committed 0")  # they overlapped
    assert [line for line in log if line.startswith("committed")] == [
        "committed 0",
        "committed 1",
        "committed 2",
    ]


async def test_a_failing_batch_is_not_overtaken_by_the_next(fresh_nats_url: str) -> None:
    log = await _run(fresh_nats_url, failing={0})
    assert "committed 1" not in log
    assert log.index("retried 0") < log.index("retried 1") < log.index("committed 2")
