"""Bus handlers of sla-monitor: lead, activity and ticket events move the clocks.

A batch goes through in one transaction with a handful of bulk statements (its processed-
event records included); if that fails, the consumer's own one-by-one path takes over, with
its retries and dead letters, running the same use case on one event at a time.
"""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError

from salesrail.bus.consumer import EventConsumer
from salesrail.bus.processed import record_fresh
from salesrail.events.envelope import Envelope
from salesrail.events.streams import ACTIVITY_STREAM, COLLAB_STREAM, LEAD_STREAM, StreamSpec
from salesrail.unit_of_work import UnitOfWork
from sla_monitor import service


class ClockConsumer(EventConsumer):
    def __init__(self, *, name: str, stream: StreamSpec, pattern: str, description: str) -> None:
        super().__init__(name=name, stream=stream, description=description)
        self.on(pattern)(_apply_one)

    async def process_batch(self, messages: list[Msg], runner: Any) -> None:
        try:
            envelopes = [Envelope.model_validate_json(m.data) for m in messages]
        except ValidationError:
            await runner.process(messages)  # it parks the malformed one
            return
        try:
            async with runner.unit_of_work() as uow:
                fresh = await record_fresh(uow.session, self.name, envelopes, now=uow.now())
                await service.apply_events(uow, uow.context.book, fresh)
        except Exception:
            await runner.process(messages)
            return
        for message in messages:
            await message.ack()


async def _apply_one(uow: UnitOfWork, envelope: Envelope, _data: Any) -> None:
    await service.apply_events(uow, uow.context.book, [envelope])


leads = ClockConsumer(
    name="sla-monitor-leads",
    stream=LEAD_STREAM,
    pattern="lead.*",
    description="Starts, restarts and stops the SLA clocks of leads; tracks their owners",
)
activities = ClockConsumer(
    name="sla-monitor-activity",
    stream=ACTIVITY_STREAM,
    pattern="activity.*",
    description="Activities answer, restart or pause the SLA clocks of leads and reps",
)
tickets = ClockConsumer(
    name="sla-monitor-collab",
    stream=COLLAB_STREAM,
    pattern="collab.*",
    description="Starts and stops the SLA clocks of collaboration tickets",
)

CONSUMERS: tuple[EventConsumer, ...] = (leads, activities, tickets)
