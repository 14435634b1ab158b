"""Sending events as a producer would, and waiting for their effects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import nats

from salesrail.events.catalog import EventData
from salesrail.events.envelope import Envelope, new_event_id

T = TypeVar("T")


def envelope_for(
    data: EventData, *, event_id: str | None = None, source: str = "lead-router"
) -> Envelope:
    """The contract's envelope around a payload, as the producing service writes it."""
    return Envelope(
        id=event_id or new_event_id(),
        type=data.event_type,
        occurred_at=datetime.now(UTC),
        source=source,
        data=data.model_dump(mode="json", by_alias=True),
    )


async def publish(nats_url: str, *envelopes: Envelope, msg_id: str | None = None) -> None:
    """Publish to JetStream with `Nats-Msg-Id` = the event id (or `msg_id`, to get a copy past
    the server's duplicate window, as a re-send after it would)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for envelope in envelopes:
            await js.publish(
                envelope.subject,
                envelope.model_dump_json().encode(),
                headers={"Nats-Msg-Id": msg_id or envelope.id},
            )
    finally:
        await nc.close()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
) -> T:
    """Call `probe` until its answer satisfies `until`; the last answer either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        answer = await probe()
        if until(answer) or loop.time() >= deadline:
            return answer
        await asyncio.sleep(interval_s)


async def wait_until_consumed(
    nats_url: str, stream: str, durable: str, *, timeout_s: float = 10.0
) -> bool:
    """True once the durable consumer has every message of its stream delivered and acked."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()

        async def info() -> tuple[int, int]:
            consumer = await js.consumer_info(stream, durable)
            return consumer.num_pending or 0, consumer.num_ack_pending or 0

        settled = await eventually(info, lambda counts: counts == (0, 0), timeout_s=timeout_s)
        return settled == (0, 0)
    finally:
        await nc.close()
