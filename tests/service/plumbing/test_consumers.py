"""Durable consumers: one effect per event, retries with back-off, dead letters with reasons."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import nats
import pytest
from sqlalchemy.exc import OperationalError

from salesrail.bus.consumer import REASON_HEADER, EventConsumer, RetryLater
from salesrail.events.catalog import LeadReceived, LeadRouted
from salesrail.events.streams import LEAD_STREAM
from salesrail.runtime import ServiceRuntime
from salesrail.settings import ServiceSettings
from salesrail.unit_of_work import UnitOfWork
from tests.support.bus import envelope_of, wait_for_messages

CONSUMER = "plumbing-test-leads"


class PlumbingSettings(ServiceSettings):
    service_name: ClassVar[str] = "plumbing-test"


SLOW_HANDLER_STARTED = asyncio.Event()
OUTAGE = {"failures_left": 0}
NOT_YET = {"refusals_left": 0, "at": []}


def make_consumer() -> EventConsumer:
    # Only lead.received: the lead.routed it publishes would otherwise come back to it, and
    # one published as it stops can be handed to the fetch it abandoned (back after ack_wait).
    consumer = EventConsumer(
        name=CONSUMER, stream=LEAD_STREAM, filter_subject="salesrail.lead.received"
    )

    @consumer.on("lead.received")
    async def route(uow: UnitOfWork, _envelope: Any, lead: LeadReceived) -> None:
        if lead.company_name == "poison":
            raise RuntimeError("the registry is on fire")
        if lead.company_name == "outage" and OUTAGE["failures_left"] > 0:
            OUTAGE["failures_left"] -= 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database is away"))
        if lead.company_name == "not yet" and NOT_YET["refusals_left"] > 0:
            NOT_YET["refusals_left"] -= 1
            NOT_YET["at"].append(time.monotonic())
            raise RetryLater("its turn has not come", delay_s=0.6)
        if lead.company_name == "slow":
            SLOW_HANDLER_STARTED.set()
            await asyncio.sleep(1.5)
        # The effect is an outgoing event: visible on the bus, and only if we commit.
        await uow.publish(LeadRouted(lead_id=lead.lead_id, owner_id="rep-test", rule="test"))

    return consumer


@pytest.fixture
async def service(
    database_url: str, auth_database_url: str, fresh_nats_url: str, tmp_path: Path
) -> AsyncIterator[ServiceRuntime]:
    empty_migrations = tmp_path / "migrations"
    empty_migrations.mkdir()
    runtime = ServiceRuntime(
        settings=PlumbingSettings(
            database_url=database_url,
            auth_database_url=auth_database_url,
            nats_url=fresh_nats_url,
            consumer_max_deliver=3,
            consumer_backoff_s=[0.2],
            consumer_batch_size=10,
        ),
        migrations=empty_migrations,
        consumers=[make_consumer()],
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


def envelope(
    company: str, *, event_id: str | None = None, lead_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": "lead.received",
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "test",
        "version": 1,
        "data": {
            "lead_id": lead_id or str(uuid.uuid4()),
            "source": "website",
            "company_name": company,
            "city": "杭州",
            "category": "紧固件",
            "received_at": datetime.now(UTC).isoformat(),
            "unknown_field": "ignored",
        },
    }


async def publish(nats_url: str, *payloads: bytes | dict[str, Any]) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for payload in payloads:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            # A fresh Nats-Msg-Id each time: the server must not be what dedupes here.
            await js.publish(
                "salesrail.lead.received", body, headers={"Nats-Msg-Id": uuid.uuid4().hex}
            )
    finally:
        await nc.close()


def routed_lead_ids(messages: list[Any]) -> list[str]:
    return [envelope_of(m)["data"]["lead_id"] for m in messages]


async def test_a_poison_message_is_dead_lettered_after_max_deliver_while_later_ones_flow(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    poison = envelope("poison")
    good = [envelope(f"公司{i}") for i in range(5)]
    await publish(fresh_nats_url, poison, *good)

    routed = await wait_for_messages(fresh_nats_url, "salesrail.lead.routed", count=5)
    dead = await wait_for_messages(fresh_nats_url, f"salesrail.dlq.{CONSUMER}", timeout_s=20)

    assert sorted(routed_lead_ids(routed)) == sorted(e["data"]["lead_id"] for e in good)
    assert len(dead) == 1
    assert envelope_of(dead[0])["id"] == poison["id"]
    assert "the registry is on fire" in dead[0].headers[REASON_HEADER]
    assert dead[0].headers["Salesrail-Dead-Letter-Deliveries"] == "3"
    assert dead[0].headers["Salesrail-Dead-Letter-Subject"] == "salesrail.lead.received"
    nothing_for_poison = await wait_for_messages(
        fresh_nats_url,
        "salesrail.lead.routed",
        where=lambda e: e["data"]["lead_id"] == poison["data"]["lead_id"],
        timeout_s=1,
    )
    assert nothing_for_poison == []


async def test_a_redelivered_event_has_no_second_effect(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    event = envelope("杭州某某紧固件有限公司")
    await publish(fresh_nats_url, event, event, event)

    routed = await wait_for_messages(fresh_nats_url, "salesrail.lead.routed", settle_s=2.0)

    assert routed_lead_ids(routed) == [event["data"]["lead_id"]]


async def test_messages_that_can_never_succeed_are_parked_at_once_with_the_reason(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    missing_fields = envelope("x")
    del missing_fields["data"]["company_name"]
    await publish(fresh_nats_url, b"not json at all", missing_fields)

    dead = await wait_for_messages(fresh_nats_url, f"salesrail.dlq.{CONSUMER}", count=2)

    reasons = sorted(m.headers[REASON_HEADER] for m in dead)
    assert reasons[0].startswith("invalid lead.received data")
    assert "company_name" in reasons[0]
    assert reasons[1].startswith("not a Salesrail event envelope")
    assert all(m.headers["Salesrail-Dead-Letter-Deliveries"] == "1" for m in dead)


async def test_stopping_finishes_the_message_in_flight_and_acknowledges_it(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    SLOW_HANDLER_STARTED.clear()
    event = envelope("slow")
    await publish(fresh_nats_url, event)
    await asyncio.wait_for(SLOW_HANDLER_STARTED.wait(), timeout=10)

    await service.stop()

    routed = await wait_for_messages(fresh_nats_url, "salesrail.lead.routed", timeout_s=5)
    assert routed_lead_ids(routed) == [event["data"]["lead_id"]]
    nc = await nats.connect(fresh_nats_url)
    try:
        info = await nc.jetstream().consumer_info(LEAD_STREAM.name, CONSUMER)
    finally:
        await nc.close()
    # The slow event (stream sequence 1) was acknowledged; nothing is left half-done.
    assert info.ack_floor.stream_seq == 1
    assert info.num_ack_pending == 0


async def test_a_database_outage_longer_than_max_deliver_loses_no_event(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    OUTAGE["failures_left"] = 6  # max_deliver is 3: a real failure would be parked by now
    event = envelope("outage")
    await publish(fresh_nats_url, event)

    routed = await wait_for_messages(fresh_nats_url, "salesrail.lead.routed", timeout_s=30)
    dead = await wait_for_messages(fresh_nats_url, f"salesrail.dlq.{CONSUMER}", timeout_s=1)

    assert routed_lead_ids(routed) == [event["data"]["lead_id"]]
    assert dead == []
    assert OUTAGE["failures_left"] == 0


async def test_retry_later_waits_the_given_delay_and_outlasts_max_deliver(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    NOT_YET.update(refusals_left=8, at=[])  # max_deliver is 3
    event = envelope("not yet")
    await publish(fresh_nats_url, event)

    routed = await wait_for_messages(fresh_nats_url, "salesrail.lead.routed", timeout_s=30)
    dead = await wait_for_messages(fresh_nats_url, f"salesrail.dlq.{CONSUMER}", timeout_s=1)

    assert routed_lead_ids(routed) == [event["data"]["lead_id"]]
    assert dead == []
    # A failed batch is replayed message by message: calls come in pairs per delivery.
    at = NOT_YET["at"]
    deliveries = [t for i, t in enumerate(at) if i == 0 or t - at[i - 1] > 0.1]
    gaps = [b - a for a, b in zip(deliveries, deliveries[1:], strict=False)]
    assert len(deliveries) >= 4  # more than max_deliver, and never dead-lettered
    assert all(gap >= 0.5 for gap in gaps)  # the delay asked for, not the back-off (0.2 s)


async def test_an_event_too_large_to_publish_is_set_aside_and_does_not_block_the_others(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    from sqlalchemy import select

    from salesrail.bus.outbox import PARKED
    from salesrail.bus.tables import outbox

    async with service.unit_of_work() as uow:
        huge = await uow.publish(LeadRouted(lead_id="huge", owner_id="rep", rule="x" * 2_000_000))
        fine = await uow.publish(LeadRouted(lead_id="fine", owner_id="rep", rule="r"))

    routed = await wait_for_messages(fresh_nats_url, "salesrail.lead.routed", settle_s=1.0)

    assert routed_lead_ids(routed) == ["fine"]
    async with service.db.transaction() as session:
        row = (await session.execute(select(outbox).where(outbox.c.event_id == huge.id))).one()
        sent = await session.scalar(select(outbox.c.sent_at).where(outbox.c.event_id == fine.id))
    assert row.attempts == PARKED and row.sent_at is None
    assert "exceeds the server's" in row.last_error
    assert sent is not None
