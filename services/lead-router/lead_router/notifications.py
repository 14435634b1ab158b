"""Telling reps and teams through their channels, for every service's `notify.requested`.

Asking never waits on delivery: another service's use case stages `notify.requested` in its
own transaction. Two durable consumers then do the work here, where the reps, teams and their
channels live:

- `lead-router-notify-fanout` resolves the recipients to channels and stages one
  `notify.delivery` per channel, so each channel is retried (and dead-lettered) on its own.
- `lead-router-notify-deliver` sends one delivery. A failure is raised, so the plumbing NAKs it
  with back-off and finally parks it on `salesrail.dlq.lead-router-notify-deliver` with the
  reason; a channel that is gone or an address the policy refuses is parked at once.

lead-router's own use cases (a lead routed, a duplicate, a release) resolve their recipients in
the transaction that decides, and stage the deliveries there (`stage_deliveries`): the channels
are read with the reps the decision already locked, and a rep without channels costs nothing.

A delivery names its channel (owner and channel id), never its URL or secret: the deliver
consumer reads the channel again, so a fixed or disabled channel takes effect on the next try.

A channel's URL and secret are stored sealed (salesrail.notify.stored). Deciding who is told
never opens them (a channel's id, type and endpoint fingerprint are readable), so intake costs
no decryption; only the deliver consumer opens the channels it sends to. One that no key opens
is parked with that reason, like any channel that cannot be sent to.

The HTTP requests of a fetched batch are sent before the plumbing opens its transaction, all
at once, and the handlers only report their outcomes: on SQLite every transaction holds the
write lock, so sending inside one would stall intake for as long as a channel is slow; and the
plumbing replays a failed batch message by message, which would send the successful ones again.
A handler never sends: a delivery that was not sent ahead is retried, and a batch that cannot be
prepared (the database away) is NAKed whole, to come back soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import structlog
from nats.aio.msg import Msg
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from lead_router.models import Rep, Team
from salesrail.bus.consumer import EventConsumer, PoisonMessage, RetryLater, UnitOfWorkFactory
from salesrail.bus.processed import already_processed
from salesrail.events.catalog import NotifyDelivery, NotifyRequested, Recipient
from salesrail.events.envelope import Envelope
from salesrail.events.streams import NOTIFY_STREAM
from salesrail.notify import (
    AddressPolicy,
    AddressRefused,
    CannotOpen,
    ChannelConfig,
    ChannelRateLimiter,
    Message,
    Rate,
    RateLimited,
    Sealer,
    StoredChannel,
    open_channel,
    send,
)
from salesrail.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

FANOUT_CONSUMER = "lead-router-notify-fanout"
DELIVER_CONSUMER = "lead-router-notify-deliver"

NOTIFICATIONS_SENT = Counter(
    "salesrail_notifications_sent_total",
    "Attempts to send a notification to a channel",
    ["type", "outcome"],
)

OwnerKind = Literal["rep", "team"]


class NotifySettings(Protocol):
    """The settings this module reads (fields of lead-router's Settings)."""

    notify_timeout_s: float  # one attempt: DNS, connect and answer together
    notify_allow_hosts: list[str]  # host names, *.domains, IPs or CIDRs past the public check
    notify_rate_limits: dict[str, Rate]  # per channel type: messages per window

    @property
    def channel_sealer(self) -> Sealer | None: ...  # opens the stored channels


@dataclass(frozen=True)
class Target:
    owner_kind: OwnerKind
    owner_id: str
    channel: StoredChannel


# --- who gets what -----------------------------------------------------------------------


async def resolve_targets(session: AsyncSession, recipients: Iterable[Recipient]) -> list[Target]:
    """The enabled channels of the recipients, each endpoint once (two owners may share one)."""
    targets: list[Target] = []
    seen: set[str] = set()
    for recipient in recipients:
        for kind, owner in await _owners(session, recipient):
            for channel in _usable_channels(kind, owner):
                if channel.endpoint not in seen:
                    seen.add(channel.endpoint)
                    targets.append(Target(kind, owner.id, channel))
    return targets


async def _owners(session: AsyncSession, recipient: Recipient) -> list[tuple[OwnerKind, Any]]:
    if recipient.kind == "rep":
        rep = await _rep_channels(session, recipient.id)
        if rep is None:
            log.warning("notify.unknown_rep", rep_id=recipient.id)
        return [("rep", rep)] if rep is not None else []
    if recipient.kind == "team":
        team = await session.get(Team, recipient.id)
        if team is None:
            log.warning("notify.unknown_team", team_id=recipient.id)
        return [("team", team)] if team is not None else []
    if recipient.kind == "supervisor_of":
        return await _supervisors_of(session, recipient.id)
    if recipient.kind == "role":
        return await _holders_of(session, recipient.id)
    log.warning("notify.recipient_kind_not_supported", kind=recipient.kind, id=recipient.id)
    return []


@dataclass(frozen=True)
class RepChannels:
    """All that telling a rep needs: their id and their channels as stored."""

    id: str
    channels: list[Any] | None


_KNOWN_REPS = "lead_router.rep_channels"
_REP_CHANNELS = select(Rep.__table__.c.id, Rep.__table__.c.channels).where(
    Rep.__table__.c.id.in_(bindparam("rep_ids", expanding=True))
)


def _known_reps(session: AsyncSession) -> dict[str, RepChannels | None]:
    # Kept for the transaction: an owner is told about every lead of a batch.
    known: dict[str, RepChannels | None] = session.info.setdefault(_KNOWN_REPS, {})
    return known


def know_rep_channels(session: AsyncSession, channels: Mapping[str, list[Any] | None]) -> None:
    """Channels this transaction has already read (with the reps a routing decision locked):
    telling those reps reads nothing more."""
    known = _known_reps(session)
    for rep_id, stored in channels.items():
        known.setdefault(rep_id, RepChannels(rep_id, stored))


async def read_rep_channels(session: AsyncSession, rep_ids: Iterable[str]) -> None:
    """Read the channels of the reps not known yet, in one statement."""
    known = _known_reps(session)
    missing = sorted({rep_id for rep_id in rep_ids if rep_id not in known})
    if not missing:
        return
    for row in await session.execute(_REP_CHANNELS, {"rep_ids": missing}):
        known[row.id] = RepChannels(row.id, row.channels)
    for rep_id in missing:
        known.setdefault(rep_id, None)  # no such rep


async def _rep_channels(session: AsyncSession, rep_id: str) -> RepChannels | None:
    await read_rep_channels(session, [rep_id])
    return _known_reps(session)[rep_id]


async def _holders_of(session: AsyncSession, role: str) -> list[tuple[OwnerKind, Any]]:
    """Every team and every rep still with us that holds the role (a directory is small:
    filtering in Python keeps one query that works on SQLite's JSON and PostgreSQL's JSONB)."""
    teams = (await session.scalars(select(Team).order_by(Team.id))).all()
    reps = (
        await session.scalars(select(Rep).where(Rep.status != "inactive").order_by(Rep.id))
    ).all()
    holders: list[tuple[OwnerKind, Any]] = [("team", t) for t in teams if role in (t.roles or [])]
    holders += [("rep", r) for r in reps if role in (r.roles or [])]
    if not holders:
        log.warning("notify.nobody_holds_role", role=role)
    return holders


async def _supervisors_of(session: AsyncSession, rep_id: str) -> list[tuple[OwnerKind, Any]]:
    """The rep's team (its group robot), and the supervisor's own channels if they are a rep."""
    rep = await session.get(Rep, rep_id)
    team = await session.get(Team, rep.team_id) if rep is not None and rep.team_id else None
    if team is None:
        log.warning("notify.no_supervisor", rep_id=rep_id)
        return []
    owners: list[tuple[OwnerKind, Any]] = [("team", team)]
    if team.supervisor_id:
        supervisor = await session.get(Rep, team.supervisor_id)
        if supervisor is not None:
            owners.append(("rep", supervisor))
    return owners


def _usable_channels(kind: OwnerKind, owner: Rep | Team | RepChannels) -> list[StoredChannel]:
    usable = []
    for raw in owner.channels or []:
        try:
            channel = StoredChannel.read(raw)  # never opened here: intake pays no decryption
        except ValidationError as exc:
            # One bad entry must not keep the others from being told.
            log.error(
                "notify.channel_invalid",
                owner_kind=kind,
                owner_id=owner.id,
                channel_id=raw.get("id") if isinstance(raw, dict) else None,
                error=_errors(exc),
            )
            continue
        if channel.enabled:
            usable.append(channel)
    return usable


async def find_channel(
    session: AsyncSession,
    owner_kind: str,
    owner_id: str,
    channel_id: str,
    sealer: Sealer | None = None,
) -> ChannelConfig | None:
    """The channel as configured now, opened; None if it (or its owner) no longer exists."""
    owner: Rep | Team | None
    if owner_kind == "rep":
        owner = await session.get(Rep, owner_id)
    else:
        owner = await session.get(Team, owner_id)
    for raw in (owner.channels or []) if owner is not None else []:
        if isinstance(raw, dict) and raw.get("id") == channel_id:
            try:
                return open_channel(raw, sealer)
            except CannotOpen as exc:
                raise PoisonMessage(
                    f"channel {channel_id!r} of {owner_kind} {owner_id!r} cannot be opened: "
                    f"{exc} (SALESRAIL_CHANNEL_KEYS)"
                ) from exc
            except ValidationError as exc:
                raise PoisonMessage(
                    f"channel {channel_id!r} of {owner_kind} {owner_id!r} is misconfigured: "
                    f"{_errors(exc)}"
                ) from exc
    return None


def _errors(exc: ValidationError) -> str:
    # Without the input: a channel's URL carries its access token.
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def _message(delivery: NotifyDelivery | NotifyRequested) -> Message:
    try:
        return Message(
            title=delivery.title,
            text=delivery.text,
            severity=delivery.severity,
            link=delivery.link,
            lead_id=delivery.lead_id,
        )
    except ValidationError as exc:
        raise PoisonMessage(f"not a sendable message: {_errors(exc)}") from exc


# --- the two consumers -------------------------------------------------------------------


def notification_consumers(settings: NotifySettings) -> tuple[EventConsumer, ...]:
    """The fan-out and the delivery consumer, configured from lead-router's settings."""
    sender = _Sender(
        policy=AddressPolicy.allowing(settings.notify_allow_hosts),
        timeout_s=settings.notify_timeout_s,
        limiter=ChannelRateLimiter(settings.notify_rate_limits),
    )
    return _fanout_consumer(), _DeliverConsumer(sender, sealer=settings.channel_sealer)


def _fanout_consumer() -> EventConsumer:
    consumer = EventConsumer(
        name=FANOUT_CONSUMER,
        stream=NOTIFY_STREAM,
        filter_subject=f"salesrail.{NotifyRequested.event_type}",
        description="Resolves notify.requested to one notify.delivery per channel",
    )

    @consumer.on(NotifyRequested.event_type)
    async def fan_out(uow: UnitOfWork, envelope: Envelope, request: NotifyRequested) -> None:
        _message(request)  # a request that can never be sent is parked here, once
        targets = await stage_deliveries(uow, request, request_id=envelope.id)
        if not targets:
            # Normal for reps without channels (they use the app); not worth a warning each time.
            log.info(
                "notify.no_channels",
                request_id=envelope.id,
                recipients=[f"{r.kind}:{r.id}" for r in request.recipients],
            )

    return consumer


async def stage_deliveries(
    uow: UnitOfWork, request: NotifyRequested, *, request_id: str
) -> list[Target]:
    """One `notify.delivery` per enabled channel of the recipients, staged in the caller's
    transaction; `request_id` names the event the message comes from."""
    targets = await resolve_targets(uow.session, request.recipients)
    for target in targets:
        await uow.publish(
            NotifyDelivery(
                request_id=request_id,
                owner_kind=target.owner_kind,
                owner_id=target.owner_id,
                channel_id=target.channel.id,
                title=request.title,
                text=request.text,
                severity=request.severity,
                link=request.link,
                lead_id=request.lead_id,
            )
        )
    return targets


# How long a batch waits when it could not be prepared (the database was away): nothing was
# sent, so it is retried soon, as a whole.
PREPARE_RETRY_S = 5.0


class NotSentAhead(Exception):
    """A delivery reached its handler without having been sent before the transaction."""


# What each message of the batch in hand got when it was sent: None, or the error.
_OUTCOMES: ContextVar[dict[str, BaseException | None] | None] = ContextVar(
    "notify_outcomes", default=None
)


@dataclass(frozen=True)
class _Sender:
    policy: AddressPolicy
    timeout_s: float
    limiter: ChannelRateLimiter

    async def attempt(
        self, delivery_id: str, channel: ChannelConfig, message: Message
    ) -> BaseException | None:
        """Send once; the error instead of raising it, so a whole batch can be sent at once."""
        wait_s = self.limiter.reserve(channel.type, channel.url)
        if wait_s > 0:
            log.info("notify.rate_limited", delivery_id=delivery_id, channel=channel.describe())
            return RateLimited(
                f"{channel.describe()}: its rate limit is reached", retry_after_s=wait_s
            )
        started = time.monotonic()
        try:
            await send(
                channel,
                message,
                allow=self.policy,
                timeout_s=self.timeout_s,
                delivery_id=delivery_id,
            )
        except Exception as exc:
            self.limiter.finished(channel.type, channel.url)
            NOTIFICATIONS_SENT.labels(channel.type, "failed").inc()
            log.warning(
                "notify.send_failed",
                delivery_id=delivery_id,
                channel=channel.describe(),
                error=f"{type(exc).__name__}: {exc}",
            )
            return exc
        self.limiter.finished(channel.type, channel.url)
        NOTIFICATIONS_SENT.labels(channel.type, "sent").inc()
        log.info(
            "notify.sent",
            delivery_id=delivery_id,
            channel=channel.describe(),
            took_ms=round((time.monotonic() - started) * 1000),
        )
        return None


class _DeliverConsumer(EventConsumer):
    """Sends a fetched batch outside any transaction, then lets the plumbing record it."""

    def __init__(self, sender: _Sender, *, sealer: Sealer | None = None) -> None:
        super().__init__(
            name=DELIVER_CONSUMER,
            stream=NOTIFY_STREAM,
            filter_subject=f"salesrail.{NotifyDelivery.event_type}",
            description="Sends each notify.delivery to its channel",
        )
        self.sender = sender
        self.sealer = sealer
        self.on(NotifyDelivery.event_type)(self._handle)

    async def process_batch(self, messages: list[Msg], runner: Any, turn: Any = None) -> None:
        """Send the batch first, outside any transaction, then let the plumbing record it."""
        give_up_after = getattr(runner, "give_up_after", runner.max_deliver)
        try:
            outcomes = await self._send_batch(messages, runner.unit_of_work, give_up_after)
        except Exception as exc:  # database away: nothing sent, nothing to record
            delay = min(PREPARE_RETRY_S, getattr(runner, "outage_retry_s", PREPARE_RETRY_S))
            log.warning(
                "notify.prepare_failed", error=repr(exc), messages=len(messages), retry_in_s=delay
            )
            for msg in messages:
                with contextlib.suppress(Exception):  # unacknowledged: back after ack_wait
                    await msg.nak(delay=delay)
            return
        token = _OUTCOMES.set(outcomes)
        try:
            await runner.process(messages)
        finally:
            _OUTCOMES.reset(token)

    async def _send_batch(
        self, messages: Sequence[Msg], unit_of_work: UnitOfWorkFactory, give_up_after: int
    ) -> dict[str, BaseException | None]:
        """Send what the handlers will accept; raises if the database cannot be read."""
        pending: dict[str, NotifyDelivery] = {}
        for msg in messages:
            if msg.metadata.num_delivered > give_up_after:
                continue  # the plumbing parks it
            try:
                envelope = Envelope.model_validate_json(msg.data)
                if envelope.type == NotifyDelivery.event_type:
                    pending[envelope.id] = NotifyDelivery.model_validate(envelope.data)
            except ValidationError:
                continue  # the plumbing or the handler parks it, with the reason
        if not pending:
            return {}
        jobs = await self._sendable(pending, unit_of_work)
        results = await asyncio.gather(
            *(
                self.sender.attempt(event_id, channel, message)
                for event_id, (channel, message) in jobs.items()
            )
        )
        return dict(zip(jobs, results, strict=True))

    async def _sendable(
        self, pending: dict[str, NotifyDelivery], unit_of_work: UnitOfWorkFactory
    ) -> dict[str, tuple[ChannelConfig, Message]]:
        jobs: dict[str, tuple[ChannelConfig, Message]] = {}
        async with unit_of_work() as uow:
            done = await already_processed(uow.session, self.name, pending.keys())
            for event_id, delivery in pending.items():
                if event_id in done:
                    continue  # sent before, only the acknowledgement was lost
                try:
                    channel = await find_channel(
                        uow.session,
                        delivery.owner_kind,
                        delivery.owner_id,
                        delivery.channel_id,
                        self.sealer,
                    )
                    message = _message(delivery)
                except PoisonMessage:
                    continue
                if channel is not None and channel.enabled:
                    jobs[event_id] = (channel, message)
        return jobs

    async def _handle(self, uow: UnitOfWork, envelope: Envelope, data: Any) -> None:
        delivery = _as_delivery(data)
        channel = await find_channel(
            uow.session, delivery.owner_kind, delivery.owner_id, delivery.channel_id, self.sealer
        )
        if channel is None:
            raise PoisonMessage(
                f"channel {delivery.channel_id!r} of {delivery.owner_kind} "
                f"{delivery.owner_id!r} no longer exists"
            )
        if not channel.enabled:
            log.info("notify.channel_disabled", delivery_id=envelope.id, channel=channel.describe())
            return
        _message(delivery)  # one that can never be sent is parked, not retried
        outcomes = _OUTCOMES.get()
        if outcomes is None or envelope.id not in outcomes:
            # Not sent ahead (e.g. the channel changed in between). Never send here, inside the
            # batch's transaction: retried, it is sent ahead with the next batch.
            raise NotSentAhead(f"delivery {envelope.id} was not sent ahead; retried")
        error = outcomes[envelope.id]
        if isinstance(error, AddressRefused):
            raise PoisonMessage(f"{channel.describe()}: {error}") from error
        if isinstance(error, RateLimited):  # its turn comes: not a failure of the message
            raise RetryLater(str(error), delay_s=error.retry_after_s) from error
        if error is not None:
            raise error


def _as_delivery(data: Any) -> NotifyDelivery:
    # A dict until NotifyDelivery is in the catalog; the catalog's model afterwards.
    if isinstance(data, NotifyDelivery):
        return data
    try:
        return NotifyDelivery.model_validate(data if isinstance(data, dict) else data.model_dump())
    except ValidationError as exc:
        raise PoisonMessage(f"invalid notify.delivery data: {_errors(exc)}") from exc
