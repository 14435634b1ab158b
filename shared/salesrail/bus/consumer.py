"""Idempotent durable consumers.

Each service declares `EventConsumer`s: a durable JetStream pull consumer (replicas share its
work) over one stream, with a handler per event type. A fetched batch is applied in one
database transaction together with the processed-event records, and acknowledged only after
that commit, so a redelivered event has no second effect. If the batch fails, its messages are
retried one by one so one bad message cannot hold the others back: a failing message is NAKed
with back-off, and after `max_deliver` attempts (or at once, when it can never succeed) it is
parked on `salesrail.dlq.<consumer>` with the reason in its headers.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from faststream import AckPolicy, Context
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import DeliverPolicy
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import insert, select

from salesrail.bus.tables import processed_events
from salesrail.clock import Clock
from salesrail.events.catalog import EventData, data_model_for
from salesrail.events.envelope import Envelope
from salesrail.events.streams import DEAD_LETTER_PREFIX, StreamSpec

if TYPE_CHECKING:
    from salesrail.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

EVENTS_CONSUMED = Counter(
    "salesrail_events_consumed_total", "Events applied by a consumer", ["consumer", "type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "salesrail_events_dead_lettered_total", "Messages parked on the dead-letter subject",
    ["consumer"],
)

Handler = Callable[["UnitOfWork", Envelope, Any], Awaitable[None]]
UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager["UnitOfWork"]]

REASON_HEADER = "Salesrail-Dead-Letter-Reason"


class PoisonMessage(Exception):
    """A message that can never be processed (malformed, or invalid for its type)."""


@dataclass(frozen=True)
class _Route:
    pattern: str
    handler: Handler
    model: type[EventData] | None


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        stream: StreamSpec,
        filter_subject: str | None = None,
        description: str = "",
    ) -> None:
        self.name = name
        self.stream = stream
        self.filter_subject = filter_subject or stream.subjects[0]
        self.description = description
        self._routes: list[_Route] = []

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        """Register `handler(uow, envelope, data)` for an event type (glob allowed)."""

        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(event_type, handler, data_model_for(event_type)))
            return handler

        return register

    def bind(
        self,
        *,
        broker: NatsBroker,
        unit_of_work: UnitOfWorkFactory,
        js: JetStreamContext,
        clock: Clock,
        batch_size: int,
        max_deliver: int,
        backoff_s: list[float],
        ack_wait_s: float,
    ) -> None:
        """Attach this consumer to the service's broker; it starts with the broker."""
        runner = _ConsumerRunner(
            consumer=self, unit_of_work=unit_of_work, js=js, clock=clock, max_deliver=max_deliver,
            backoff_s=backoff_s,
        )
        subscriber = broker.subscriber(
            self.filter_subject,
            stream=JStream(self.stream.name, declare=False),
            durable=self.name,
            pull_sub=PullSub(batch_size=batch_size, timeout=1.0, batch=True),
            ack_policy=AckPolicy.MANUAL,
            # Redelivery is bounded by the runner, which parks a message with its reason;
            # the server's own max_deliver would drop it silently.
            config=ConsumerConfig(
                durable_name=self.name,
                ack_policy=JsAckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait_s,
                max_deliver=-1,
                max_ack_pending=max(1000, batch_size * 10),
                description=self.description or None,
            ),
            title=self.name,
            description=self.description or None,
        )
        # The runner reads raw messages; FastStream only fetches and hands them over, so a
        # body that is not JSON reaches the runner (and the dead-letter subject) too.
        subscriber(runner.handle_batch, decoder=_raw_body)

    def route_for(self, event_type: str) -> _Route | None:
        for route in self._routes:
            if fnmatch.fnmatchcase(event_type, route.pattern):
                return route
        return None


class _ConsumerRunner:
    def __init__(
        self,
        *,
        consumer: EventConsumer,
        unit_of_work: UnitOfWorkFactory,
        js: JetStreamContext,
        clock: Clock,
        max_deliver: int,
        backoff_s: list[float],
    ) -> None:
        self.consumer = consumer
        self.unit_of_work = unit_of_work
        self.js = js
        self.clock = clock
        self.max_deliver = max_deliver
        self.backoff_s = backoff_s or [1.0]

    async def handle_batch(self, message: Annotated[Any, Context("message")]) -> None:
        await self.process(list(message.raw_message))

    async def process(self, messages: list[Msg]) -> None:
        ready: list[tuple[Msg, Envelope]] = []
        for message in messages:
            if _deliveries(message) > self.max_deliver:
                await self._dead_letter(message, "exceeded max deliveries without an answer")
                continue
            try:
                ready.append((message, Envelope.model_validate_json(message.data)))
            except ValidationError as exc:
                await self._dead_letter(message, f"not a Salesrail event envelope: {exc}")
        if not ready:
            return
        try:
            async with self.unit_of_work() as uow:
                for _, envelope in ready:
                    await self._apply(uow, envelope)
        except Exception:
            # Isolate the culprit: every message on its own.
            for message, envelope in ready:
                await self._process_one(message, envelope)
            return
        for message, _ in ready:
            await message.ack()

    async def _process_one(self, message: Msg, envelope: Envelope) -> None:
        try:
            async with self.unit_of_work() as uow:
                await self._apply(uow, envelope)
        except PoisonMessage as exc:
            await self._dead_letter(message, str(exc))
            return
        except Exception as exc:
            attempt = _deliveries(message)
            reason = f"{type(exc).__name__}: {exc}"
            if attempt >= self.max_deliver:
                await self._dead_letter(message, f"failed {attempt} times; last: {reason}")
                return
            delay = self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)]
            log.warning(
                "consumer.retry", consumer=self.consumer.name, event_id=envelope.id,
                type=envelope.type, attempt=attempt, retry_in_s=delay, error=reason,
            )
            await message.nak(delay=delay)
            return
        await message.ack()

    async def _apply(self, uow: UnitOfWork, envelope: Envelope) -> None:
        session = uow.session
        already = await session.scalar(
            select(processed_events.c.event_id).where(
                processed_events.c.consumer == self.consumer.name,
                processed_events.c.event_id == envelope.id,
            )
        )
        if already is not None:
            return
        await session.execute(
            insert(processed_events).values(
                consumer=self.consumer.name, event_id=envelope.id, processed_at=self.clock.now()
            )
        )
        route = self.consumer.route_for(envelope.type)
        if route is None:
            return  # not ours to act on; recorded so it is not looked at again
        data: Any = envelope.data
        if route.model is not None:
            try:
                data = route.model.model_validate(envelope.data)
            except ValidationError as exc:
                raise PoisonMessage(f"invalid {envelope.type} data: {exc}") from exc
        await route.handler(uow, envelope, data)
        EVENTS_CONSUMED.labels(self.consumer.name, envelope.type).inc()

    async def _dead_letter(self, message: Msg, reason: str) -> None:
        meta = message.metadata
        headers = {k: v for k, v in (message.headers or {}).items() if k != "Nats-Msg-Id"}
        headers.update(
            {
                "Nats-Msg-Id": f"dlq:{self.consumer.name}:{meta.stream}:{meta.sequence.stream}",
                REASON_HEADER: reason[:2000],
                "Salesrail-Dead-Letter-Consumer": self.consumer.name,
                "Salesrail-Dead-Letter-Subject": message.subject,
                "Salesrail-Dead-Letter-Deliveries": str(meta.num_delivered),
            }
        )
        await self.js.publish(
            f"{DEAD_LETTER_PREFIX}{self.consumer.name}", message.data, headers=headers
        )
        await message.term()
        EVENTS_DEAD_LETTERED.labels(self.consumer.name).inc()
        log.error(
            "consumer.dead_lettered", consumer=self.consumer.name, subject=message.subject,
            deliveries=meta.num_delivered, reason=reason[:500],
        )


async def _raw_body(message: Any) -> Any:
    return message.body


def _deliveries(message: Msg) -> int:
    return message.metadata.num_delivered
