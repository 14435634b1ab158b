"""Bus handlers of sla-monitor: lead, activity and ticket events move the clocks.

A batch goes through in one transaction with a handful of bulk statements (its processed-
event records included); if that fails, the consumer's own one-by-one path takes over, with
its retries and dead letters, running the same use case on one event at a time.

The next batch begins as soon as this one holds its entities' locks, and commits only after
this one did (`BatchTurn`): about a third of a batch's time is spent waiting on PostgreSQL,
which the other batch's Python work now fills.
"""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError

from salesrail.bus.consumer import BatchTurn, EventConsumer
from salesrail.bus.processed import record_fresh
from salesrail.events.envelope import Envelope
from salesrail.events.streams import ACTIVITY_STREAM, COLLAB_STREAM, LEAD_STREAM, StreamSpec
from salesrail.unit_of_work import UnitOfWork
from sla_monitor import service


class _PreviousBatchFailed(Exception):
    """The batch before this one rolled back: this one must not overtake its retries."""


class ClockConsumer(EventConsumer):
    overlaps_batches = True

    def __init__(self, *, name: str, stream: StreamSpec, pattern: str, description: str) -> None:
        super().__init__(name=name, stream=stream, description=description)
        self.on(pattern)(_apply_one)

    async def process_batch(self, messages: list[Msg], runner: Any, turn: BatchTurn) -> None:
        try:
            envelopes = [Envelope.model_validate_json(m.data) for m in messages]
        except ValidationError:
            await turn.previous_finished()
            await runner.process(messages)  # it parks the malformed one
            return
        await turn.previous_locked()
        try:
            async with runner.unit_of_work() as uow:
                fresh = await record_fresh(uow.session, self.name, envelopes, now=uow.now())
                await service.apply_events(uow, uow.context.book, fresh, on_locked=turn.hold_locks)
                turn.hold_locks()  # also when nothing needed a lock
                if not await turn.previous_committed():
                    raise _PreviousBatchFailed
            turn.committed(True)
        except Exception:
            turn.committed(False)
            await turn.previous_finished()
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
