"""Idempotent durable consumers.

Each service declares `EventConsumer`s: a durable JetStream pull consumer (replicas share its
work) over one stream, with a handler per event type. A fetched batch is applied in one
database transaction together with the processed-event records, and acknowledged only after
that commit, so a redelivered event has no second effect. If the batch fails, its messages are
retried one by one so one bad message cannot hold the others back: a failing message is NAKed
with back-off, and after `max_deliver` attempts (or at once, when it can never succeed) it is
parked on `salesrail.dlq.<consumer>` with the reason in its headers.

The pull loop is our own, on nats-py: FastStream 0.7.8's pull subscribers let the plain
`asyncio.TimeoutError` that nats-py's batch fetch raises escape (its supervisor then restarts
the loop with growing delays), and its batch mode waits for a full batch before handing it
over, which adds up to the fetch timeout to every event's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.exc import StatementError

from salesrail.bus.processed import record_fresh
from salesrail.clock import Clock
from salesrail.db.errors import is_outage
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
    "salesrail_events_dead_lettered_total",
    "Messages parked on the dead-letter subject",
    ["consumer"],
)

Handler = Callable[["UnitOfWork", Envelope, Any], Awaitable[None]]
UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager["UnitOfWork"]]

REASON_HEADER = "Salesrail-Dead-Letter-Reason"


class PoisonMessage(Exception):
    """A message that can never be processed (malformed, or invalid for its type)."""


class RetryLater(Exception):
    """Not now, through no fault of the message (e.g. a channel's rate limit): redelivered
    after `delay_s`, and dead-lettered only after `give_up_after` tries, like an outage."""

    def __init__(self, reason: str, *, delay_s: float) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


@dataclass(frozen=True)
class _Route:
    pattern: str
    handler: Handler
    model: type[EventData] | None


class EventConsumer:
    #: Whether the next batch may begin once this one holds its database locks (see
    #: `BatchTurn`); the consumer's `process_batch` then keeps the turn's protocol.
    overlaps_batches = False

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
        unit_of_work: UnitOfWorkFactory,
        js: JetStreamContext,
        clock: Clock,
        batch_size: int,
        max_deliver: int,
        backoff_s: list[float],
        ack_wait_s: float,
        give_up_after: int = 1000,
        outage_retry_s: float = 30.0,
    ) -> PullLoop:
        """A loop that fetches this consumer's messages and applies them; start it to run."""
        runner = _ConsumerRunner(
            consumer=self,
            unit_of_work=unit_of_work,
            js=js,
            clock=clock,
            max_deliver=max_deliver,
            backoff_s=backoff_s,
            give_up_after=give_up_after,
            outage_retry_s=outage_retry_s,
        )
        config = ConsumerConfig(
            durable_name=self.name,
            description=self.description or None,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=self.filter_subject,
            ack_wait=ack_wait_s,
            # The runner bounds redelivery and parks a message with its reason; the server's
            # own max_deliver would stop delivering it without a word.
            max_deliver=-1,
            max_ack_pending=max(1000, batch_size * 10),
        )
        return PullLoop(consumer=self, js=js, config=config, runner=runner, batch_size=batch_size)

    async def process_batch(
        self, messages: list[Msg], runner: _ConsumerRunner, turn: BatchTurn
    ) -> None:
        """Apply a fetched batch. A consumer that must do slow I/O outside the database
        transaction (sending a webhook) overrides this and calls `runner.process` after."""
        await runner.process(messages)

    def event_types(self) -> list[str]:
        return [route.pattern for route in self._routes]

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
        give_up_after: int = 1000,
        outage_retry_s: float = 30.0,
    ) -> None:
        self.consumer = consumer
        self.unit_of_work = unit_of_work
        self.js = js
        self.clock = clock
        self.max_deliver = max_deliver
        self.give_up_after = max(give_up_after, max_deliver)
        self.outage_retry_s = outage_retry_s
        self.backoff_s = backoff_s or [1.0]

    async def process(self, messages: list[Msg]) -> None:
        ready: list[tuple[Msg, Envelope]] = []
        for message in messages:
            if _deliveries(message) > self.give_up_after:
                # Redelivered this often without an answer: it keeps killing or hanging us.
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
                await self._apply_all(uow, [envelope for _, envelope in ready])
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
            reason = _reason(exc)
            outage = is_outage(exc)
            patient = outage or isinstance(exc, RetryLater)
            if attempt >= (self.give_up_after if patient else self.max_deliver):
                await self._dead_letter(message, f"failed {attempt} times; last: {reason}")
                return
            delay = self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)]
            if outage:  # not the message's fault: keep it until the database is back
                delay = min(delay, self.outage_retry_s)
            if isinstance(exc, RetryLater):
                delay = exc.delay_s
            log.warning(
                "consumer.retry",
                consumer=self.consumer.name,
                event_id=envelope.id,
                type=envelope.type,
                attempt=attempt,
                retry_in_s=delay,
                error=reason,
            )
            await message.nak(delay=delay)
            return
        await message.ack()

    async def _apply(self, uow: UnitOfWork, envelope: Envelope) -> None:
        await self._apply_all(uow, [envelope])

    async def _apply_all(self, uow: UnitOfWork, envelopes: list[Envelope]) -> None:
        """Handle, in order, the events this consumer has not applied before, recording them
        as applied in the same transaction."""
        name, now = self.consumer.name, self.clock.now()
        for envelope in await record_fresh(uow.session, name, envelopes, now=now):
            await self._handle(uow, envelope)

    async def _handle(self, uow: UnitOfWork, envelope: Envelope) -> None:
        route = self.consumer.route_for(envelope.type)
        if route is None:
            return  # not ours to act on; recorded so it is not looked at again
        data: Any = envelope.data
        if route.model is not None:
            try:
                data = route.model.model_validate(envelope.data)
            except ValidationError as exc:
                errors = exc.errors(include_input=False, include_url=False)
                raise PoisonMessage(f"invalid {envelope.type} data: {errors}") from exc
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
            "consumer.dead_lettered",
            consumer=self.consumer.name,
            subject=message.subject,
            deliveries=meta.num_delivered,
            reason=reason[:500],
        )


def _reason(exc: BaseException) -> str:
    """Why, without the statement's parameters or the input (they may hold personal data)."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        return f"{type(exc).__name__}: {type(exc.orig).__name__}: {exc.orig}"[:2000]
    if isinstance(exc, ValidationError):
        return f"ValidationError: {exc.errors(include_input=False, include_url=False)}"[:2000]
    return f"{type(exc).__name__}: {exc}"[:2000]


def _deliveries(message: Msg) -> int:
    return message.metadata.num_delivered


async def _nak_all(messages: list[Msg]) -> None:
    """Give back messages fetched but not applied (stopping): another replica takes them now
    instead of after ack_wait."""
    for message in messages:
        with contextlib.suppress(Exception):
            await message.nak()


def _hand_over_queued_messages(subscription: Subscription) -> None:
    """nats-py's `next_msg`, which its batch fetch calls once per message, waits for each
    through a task of its own with a timeout and a uuid4 name, even for a message already
    queued: about a tenth of a consumer's CPU at 500-message batches. A queued message is
    handed over at once here, with the same bookkeeping; with none queued (or the connection
    closed) nats-py's own `next_msg` waits, so timeouts and errors stay its own. The fetch
    itself (status messages, heartbeats, expiry) is untouched."""
    wait_for_next = subscription.next_msg

    async def next_msg(timeout: float | None = 1.0) -> Msg:  # noqa: ASYNC109 - nats-py's own
        queue = subscription._pending_queue
        if queue.empty() or subscription._conn.is_closed:
            return await wait_for_next(timeout)
        message = queue.get_nowait()
        subscription._pending_size -= len(message.data)
        queue.task_done()
        return message

    subscription.next_msg = next_msg  # type: ignore[method-assign]


class BatchTurn:
    """A fetched batch's place in line, for the batch fetched after it.

    By default a batch begins when the one before it has finished. A consumer that
    `overlaps_batches` lets the next one begin as soon as this one holds the database locks
    of the entities it touches (`hold_locks`), and makes the next one commit only if this one
    committed (`committed`, `previous_committed`): each entity still sees its events in
    stream order, since its lock makes the later batch wait, while one batch's database
    round trips overlap the other's work in Python. A batch whose predecessor rolled back
    rolls back too and tries again once the predecessor has finished (its one-by-one
    retries included); the batch after it then waits for it to finish, so one failure costs
    one more attempt, not one per batch from then on.
    """

    def __init__(self, previous: BatchTurn | None) -> None:
        self._previous = previous
        self._began_after_previous = previous is None
        self._locked = asyncio.Event()
        self._outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._finished = asyncio.Event()

    async def previous_locked(self) -> None:
        """Wait until the previous batch holds its locks (or is through with them): this
        batch may then take its own."""
        if self._previous is not None:
            await self._previous._locked.wait()
            self._began_after_previous = self._previous._finished.is_set()

    def hold_locks(self) -> None:
        self._locked.set()

    async def previous_committed(self) -> bool:
        """Whether everything of the previous batch was committed before this one read its
        state; waits for the previous batch's own commit if need be."""
        if self._previous is None or self._began_after_previous:
            return True
        return await asyncio.shield(self._previous._outcome)

    def committed(self, ok: bool) -> None:
        if not self._outcome.done():
            self._outcome.set_result(ok)
        self._locked.set()

    async def previous_finished(self) -> None:
        if self._previous is not None:
            await self._previous._finished.wait()

    def finish(self) -> None:
        self.committed(False)  # no word from the consumer: the next batch must not assume
        self._finished.set()
        self._previous = None  # the chain of finished turns is not kept alive

    async def next_may_begin(self, *, overlapping: bool) -> None:
        if not overlapping:
            await self._finished.wait()
            return
        previous = self._previous
        if previous is not None:
            await previous._finished.wait()  # at most two batches in flight
        await self._locked.wait()
        if (
            previous is not None
            and not self._began_after_previous
            and not previous._outcome.result()
        ):
            await self._finished.wait()  # this one rolls back: nothing may overtake it


class PullLoop:
    """Fetches batches for one durable consumer and applies them in order (see `BatchTurn`)."""

    def __init__(
        self,
        *,
        consumer: EventConsumer,
        js: JetStreamContext,
        config: ConsumerConfig,
        runner: _ConsumerRunner,
        batch_size: int,
        fetch_timeout_s: float = 5.0,
    ) -> None:
        self.consumer = consumer
        self.js = js
        self.config = config
        self.runner = runner
        self.batch_size = batch_size
        self.fetch_timeout_s = fetch_timeout_s
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._subscription: Any = None

    async def start(self) -> None:
        self._subscription = subscription = await self.js.pull_subscribe(
            self.consumer.filter_subject,
            durable=self.consumer.name,
            stream=self.consumer.stream.name,
            config=self.config,
        )
        _hand_over_queued_messages(subscription._sub)
        self._task = asyncio.create_task(self._run(subscription), name=self.consumer.name)

    async def _run(self, subscription: Any) -> None:
        # The next batch is fetched while this one is applied: batches are still applied in
        # order, but the round trip to the server no longer waits its turn.
        next_fetch: asyncio.Task[list[Msg]] | None = None
        previous: BatchTurn | None = None
        overlapping = self.consumer.overlaps_batches
        try:
            while not self._stopping:
                if next_fetch is None:
                    next_fetch = asyncio.ensure_future(self._fetch(subscription))
                messages = await next_fetch
                next_fetch = None
                if not messages or self._stopping:
                    await _nak_all(messages)
                    continue
                next_fetch = asyncio.ensure_future(self._fetch(subscription))
                turn = BatchTurn(previous)
                task = asyncio.create_task(self._apply(messages, turn))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                previous = turn
                await turn.next_may_begin(overlapping=overlapping)
        finally:
            if next_fetch is not None:
                next_fetch.cancel()
                with contextlib.suppress(BaseException):
                    await _nak_all(await next_fetch)

    async def _apply(self, messages: list[Msg], turn: BatchTurn) -> None:
        try:
            await self.consumer.process_batch(messages, self.runner, turn)
        except Exception as exc:  # unacknowledged messages come back after ack_wait
            log.exception("consumer.batch_failed", consumer=self.consumer.name, error=repr(exc))
        finally:
            turn.finish()

    async def _fetch(self, subscription: Any) -> list[Msg]:
        """A batch: as soon as any message is there (a partial batch); [] on a quiet timeout."""
        try:
            return list(await subscription.fetch(self.batch_size, timeout=self.fetch_timeout_s))
        except TimeoutError:  # nats-py raises both its own and asyncio's
            return []
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection lost: nats-py reconnects, we try again
            log.warning("consumer.fetch_failed", consumer=self.consumer.name, error=repr(exc))
            await asyncio.sleep(1.0)
            return []

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, grace_s: float) -> None:
        """Let the batches in hand finish (and be acknowledged); abandon a fetch in progress."""
        self._stopping = True
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=grace_s)
            for task in late:  # its messages come back after ack_wait
                task.cancel()
            if late:
                await asyncio.wait(late)
        # Without this, draining the connection would wait on the pull subscription's inbox.
        with contextlib.suppress(Exception):
            await self._subscription.unsubscribe()
