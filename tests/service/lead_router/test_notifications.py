"""Notifications end to end: a real bus, both databases, a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nats
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import Field, SecretStr
from sqlalchemy import text

import lead_router
from lead_router.config import Settings
from lead_router.main import create_app
from lead_router.models import Rep, Team
from lead_router.notifications import (
    DELIVER_CONSUMER,
    PREPARE_RETRY_S,
    NotSentAhead,
    _DeliverConsumer,
    _Sender,
    notification_consumers,
)
from salesrail.auth.principal import Role
from salesrail.bus.consumer import REASON_HEADER
from salesrail.cli.channels import reseal_all
from salesrail.embedded_nats import free_port
from salesrail.events.catalog import NotifyDelivery, NotifyRequested, Recipient
from salesrail.events.envelope import Envelope
from salesrail.events.streams import NOTIFY_STREAM
from salesrail.notify import (
    AddressPolicy,
    ChannelConfig,
    ChannelRateLimiter,
    Rate,
    Sealer,
    open_channel,
    seal_channel,
)
from salesrail.notify.channels import dingtalk_sign
from salesrail.runtime import ServiceRuntime
from salesrail.settings import sqlite_url
from tests.support.apps import api_key, running
from tests.support.apps import runtime as runtime_of
from tests.support.bus import envelope_of, untouched_alert, wait_for_messages
from tests.support.publishing import eventually
from tests.support.routing import HANGZHOU_ROUND_ROBIN

SECRET = "receiver-secret-0123456789abcdef"
# A lead the Hangzhou round robin gives rep-zhang first.
HENGTONG_LEAD = {
    "source": "website",
    "company_name": "杭州恒通紧固件有限公司",
    "contact_name": "王总",
    "phone": "13912345678",
    "city": "杭州",
    "category": "紧固件",
}
DINGTALK_SECRET = "SEC" + "5e" * 32
MAX_DELIVER = 5
DLQ = f"salesrail.dlq.{DELIVER_CONSUMER}"


WECOM_RATE = Rate(2, 2.0)  # a robot's quota, shrunk so a test sees several windows


CHANNEL_KEY = Fernet.generate_key().decode()


class NotifyTestSettings(Settings):
    channel_keys: SecretStr | None = SecretStr(CHANNEL_KEY)
    notify_timeout_s: float = 3.0
    notify_allow_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    notify_rate_limits: dict[str, Rate] = Field(default_factory=lambda: {"wecom": WECOM_RATE})


# --- a receiver -------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str]
    signed: bool  # the webhook signature (or DingTalk sign) verified against the secret
    at: float = field(default_factory=time.monotonic)


@dataclass
class Receiver:
    """Webhook endpoints: `/ok/*` accept, `/fail/*` answer 500, `/slow/*` take 2 s,
    `/dingtalk` checks DingTalk's sign, `/wecom-refuses` answers 200 with an error code."""

    port: int = field(default_factory=free_port)
    hits: list[Hit] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def hook(path: str, request: Request) -> JSONResponse:
            body = await request.body()
            query = dict(request.query_params)
            hit = Hit("/" + path, dict(request.headers), body, query, _signed(path, request, body))
            self.hits.append(hit)
            if path.startswith("fail/"):
                return JSONResponse({"error": "down for maintenance"}, status_code=500)
            if path.startswith("slow/"):
                await asyncio.sleep(2.0)
            if path == "dingtalk":
                answer = {"errcode": 0, "errmsg": "ok"} if hit.signed else {"errcode": 310000}
                return JSONResponse(answer)
            if path == "wecom":
                return JSONResponse({"errcode": 0, "errmsg": "ok"})
            if path == "wecom-refuses":
                return JSONResponse({"errcode": 93000, "errmsg": "invalid webhook url"})
            return JSONResponse({"ok": True})

        return app

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(500):
            if self._server.started:
                return
            if self._task.done():  # e.g. the port was taken: show why
                await self._task
            await asyncio.sleep(0.02)
        raise AssertionError("the receiver did not start within 10 s")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def at(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    async def wait_for(self, path: str, count: int = 1, timeout_s: float = 15.0) -> list[Hit]:
        async def probe() -> list[Hit]:
            return self.at(path)

        return await eventually(probe, lambda hits: len(hits) >= count, timeout_s=timeout_s)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's signal handlers alone
        yield


def _signed(path: str, request: Request, body: bytes) -> bool:
    if path == "dingtalk":
        timestamp = request.query_params.get("timestamp", "0")
        fresh = abs(time.time() * 1000 - int(timestamp)) < 3_600_000
        return fresh and request.query_params.get("sign") == dingtalk_sign(
            DINGTALK_SECRET, int(timestamp)
        )
    # A receiver written from the documentation: HMAC over "<timestamp>.<raw body>".
    timestamp = request.headers.get("x-salesrail-timestamp", "0")
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return abs(time.time() - int(timestamp)) <= 300 and hmac.compare_digest(
        "sha256=" + expected.hexdigest(), request.headers.get("x-salesrail-signature", "")
    )


# --- the service ------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@contextlib.asynccontextmanager
async def started(
    database_url: str, nats_url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[ServiceRuntime]:
    """lead-router's notification consumers on their own (settings: NotifyTestSettings)."""
    settings = NotifyTestSettings(
        database_url=database_url,
        auth_database_url=sqlite_url(data_dir / "auth.db"),
        nats_url=nats_url,
        data_dir=data_dir,
        consumer_max_deliver=MAX_DELIVER,
        consumer_backoff_s=[0.2, 0.5, 1.0],
        consumer_batch_size=20,
        **overrides,
    )
    runtime = ServiceRuntime(
        settings=settings,
        migrations=Path(lead_router.__file__).parent / "migrations",
        consumers=notification_consumers(settings),
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
async def service(
    database_url: str, fresh_nats_url: str, tmp_path: Path
) -> AsyncIterator[ServiceRuntime]:
    async with started(database_url, fresh_nats_url, tmp_path) as runtime:
        yield runtime


def webhook(channel_id: str, url: str, *, enabled: bool = True) -> dict[str, Any]:
    return {"id": channel_id, "type": "webhook", "url": url, "secret": SECRET, "enabled": enabled}


async def add_team(
    runtime: ServiceRuntime,
    team_id: str,
    channels: list[dict[str, Any]],
    supervisor_id: str | None = None,
) -> None:
    now = datetime.now(UTC)
    async with runtime.unit_of_work() as uow:
        uow.session.add(
            Team(
                id=team_id,
                name=team_id,
                supervisor_id=supervisor_id,
                channels=channels,
                created_at=now,
                updated_at=now,
            )
        )


async def add_rep(
    runtime: ServiceRuntime,
    rep_id: str,
    channels: list[dict[str, Any]],
    team_id: str | None = None,
    *,
    roles: tuple[str, ...] = (),
    status: str = "active",
) -> None:
    now = datetime.now(UTC)
    async with runtime.unit_of_work() as uow:
        uow.session.add(
            Rep(
                id=rep_id,
                name=rep_id,
                team_id=team_id,
                cities=[],
                categories=[],
                cap=None,
                status=status,
                open_leads=0,
                channels=channels,
                roles=list(roles),
                created_at=now,
                updated_at=now,
            )
        )


async def request(
    runtime: ServiceRuntime, *recipients: tuple[str, str], title: str = "新线索"
) -> str:
    """Stage notify.requested as a use case does; its event id."""
    async with runtime.unit_of_work() as uow:
        envelope = await uow.publish(
            NotifyRequested(
                recipients=[Recipient(kind=kind, id=rid) for kind, rid in recipients],
                title=title,
                text="杭州某某紧固件有限公司 已分配给你",
                severity="info",
                lead_id="lead-1",
                link="https://salesrail.example/leads/lead-1",
            )
        )
    return envelope.id


async def dead_letters(nats_url: str, channel_id: str, timeout_s: float = 15.0) -> list[Any]:
    return await wait_for_messages(
        nats_url,
        DLQ,
        where=lambda e: e.get("data", {}).get("channel_id") == channel_id,
        timeout_s=timeout_s,
    )


# --- the tests --------------------------------------------------------------------------


async def test_each_channel_gets_exactly_one_signed_delivery_and_disabled_ones_none(
    service: ServiceRuntime, receiver: Receiver, fresh_nats_url: str
) -> None:
    await add_team(
        service, "east", [webhook("robot", receiver.url("/ok/team-east"))], supervisor_id="rep-boss"
    )
    await add_rep(service, "rep-boss", [webhook("boss", receiver.url("/ok/boss"))], "east")
    await add_rep(
        service,
        "rep-a",
        [
            webhook("main", receiver.url("/ok/rep-a")),
            webhook("old", receiver.url("/ok/rep-a-old"), enabled=False),
        ],
        "east",
    )
    await add_rep(service, "rep-b", [], "east")
    await add_rep(service, "coach", [webhook("c", receiver.url("/ok/coach"))], roles=("trainer",))
    await add_rep(
        service,
        "gone",
        [webhook("g", receiver.url("/ok/gone"))],
        roles=("trainer",),
        status="inactive",
    )

    request_id = await request(
        service,
        ("rep", "rep-a"),
        ("team", "east"),
        ("supervisor_of", "rep-b"),
        ("rep", "rep-a"),
        ("role", "trainer"),
        ("rep", "no-such-rep"),
    )

    deliveries = await wait_for_messages(
        fresh_nats_url,
        "salesrail.notify.delivery",
        count=4,
        where=lambda e: e["data"]["request_id"] == request_id,
        settle_s=1.0,
    )
    for path in ("/ok/rep-a", "/ok/team-east", "/ok/boss", "/ok/coach"):
        await receiver.wait_for(path)
    await asyncio.sleep(1.0)  # time for any extra copy to show up

    assert len(deliveries) == 4
    data = [envelope_of(m)["data"] for m in deliveries]
    assert sorted((d["owner_kind"], d["owner_id"], d["channel_id"]) for d in data) == [
        ("rep", "coach", "c"),  # holds the role "trainer"; "gone" holds it too but left
        ("rep", "rep-a", "main"),
        ("rep", "rep-boss", "boss"),
        ("team", "east", "robot"),
    ]
    assert all("url" not in d and "secret" not in d for d in data)  # no secrets on the bus
    hits = receiver.hits
    assert sorted(hit.path for hit in hits) == [
        "/ok/boss",
        "/ok/coach",
        "/ok/rep-a",
        "/ok/team-east",
    ]
    assert all(hit.signed for hit in hits)
    assert {hit.headers["x-salesrail-delivery"] for hit in hits} == {
        envelope_of(m)["id"] for m in deliveries
    }
    body = json.loads(receiver.at("/ok/rep-a")[0].body)
    assert body["title"] == "新线索"
    assert body["lead_id"] == "lead-1"


async def test_a_receiver_that_is_down_gets_the_message_when_it_is_back(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    late = Receiver()  # its port is reserved, but nothing listens yet
    await add_rep(service, "rep-late", [webhook("main", late.url("/ok/late"))])

    started = time.monotonic()
    await request(service, ("rep", "rep-late"))
    staged_in = time.monotonic() - started

    assert staged_in < 0.5  # asking never waits on delivery
    assert await _redelivered(fresh_nats_url) >= 1  # it was tried, and failed
    await late.start()
    try:
        hits = await late.wait_for("/ok/late")
        await asyncio.sleep(1.0)
        assert len(late.at("/ok/late")) == 1
        assert hits[0].signed
    finally:
        await late.stop()
    assert await wait_for_messages(fresh_nats_url, DLQ, timeout_s=0.5) == []


async def test_a_receiver_that_keeps_failing_ends_on_the_dead_letter_subject_with_the_reason(
    service: ServiceRuntime, receiver: Receiver, fresh_nats_url: str
) -> None:
    await add_rep(service, "rep-x", [webhook("broken", receiver.url("/fail/always"))])

    await request(service, ("rep", "rep-x"))
    dead = await dead_letters(fresh_nats_url, "broken")

    assert len(dead) == 1
    reason = dead[0].headers[REASON_HEADER]
    assert f"failed {MAX_DELIVER} times" in reason
    assert "HTTP 500" in reason
    assert dead[0].headers["Salesrail-Dead-Letter-Deliveries"] == str(MAX_DELIVER)
    # One request per attempt: the plumbing's replay of a failed batch sends nothing again.
    assert len(receiver.at("/fail/always")) == MAX_DELIVER


async def test_a_private_address_not_on_the_allow_list_is_parked_at_once(
    service: ServiceRuntime, fresh_nats_url: str
) -> None:
    await add_rep(service, "rep-p", [webhook("intranet", "http://192.168.77.1:9/hook")])

    await request(service, ("rep", "rep-p"))
    dead = await dead_letters(fresh_nats_url, "intranet")

    assert len(dead) == 1
    assert dead[0].headers["Salesrail-Dead-Letter-Deliveries"] == "1"
    reason = dead[0].headers[REASON_HEADER]
    assert "192.168.77.1, a private address" in reason
    assert "allow-list" in reason


async def test_a_channel_that_no_longer_exists_is_parked_at_once(
    service: ServiceRuntime, receiver: Receiver, fresh_nats_url: str
) -> None:
    await add_rep(service, "rep-g", [])
    async with service.unit_of_work() as uow:
        await uow.publish(
            NotifyDelivery(
                request_id="r-1",
                owner_kind="rep",
                owner_id="rep-g",
                channel_id="gone",
                title="t",
                text="x",
            )
        )

    dead = await dead_letters(fresh_nats_url, "gone")

    assert dead[0].headers["Salesrail-Dead-Letter-Deliveries"] == "1"
    assert "no longer exists" in dead[0].headers[REASON_HEADER]


async def test_robot_platforms_dingtalk_signing_and_an_error_code_in_a_200_answer(
    service: ServiceRuntime, receiver: Receiver, fresh_nats_url: str
) -> None:
    await add_team(
        service,
        "north",
        [
            {
                "id": "ding",
                "type": "dingtalk",
                "secret": DINGTALK_SECRET,
                "url": receiver.url("/dingtalk?access_token=t0k3n"),
            },
            {"id": "wx", "type": "wecom", "url": receiver.url("/wecom-refuses?key=k3y")},
        ],
    )

    await request(service, ("team", "north"))
    dead = await dead_letters(fresh_nats_url, "wx")

    ding = receiver.at("/dingtalk")
    assert len(ding) == 1 and ding[0].signed
    assert ding[0].query["access_token"] == "t0k3n"
    assert json.loads(ding[0].body)["msgtype"] == "markdown"
    assert len(dead) == 1
    reason = dead[0].headers[REASON_HEADER]
    assert "error 93000: invalid webhook url" in reason
    assert "k3y" not in reason  # the robot's key is a credential


async def test_a_burst_to_a_robot_keeps_to_its_rate_and_every_message_arrives_once(
    service: ServiceRuntime, receiver: Receiver, fresh_nats_url: str
) -> None:
    await add_team(
        service, "south", [{"id": "wx", "type": "wecom", "url": receiver.url("/wecom?key=k")}]
    )

    for n in range(5):
        await request(service, ("team", "south"), title=f"告警 {n}")
    for _ in range(300):
        if len(receiver.at("/wecom")) >= 5:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # time for any extra copy to show up

    hits = receiver.at("/wecom")
    titles = sorted(json.loads(hit.body)["markdown"]["content"].split("\n")[0] for hit in hits)
    assert len(hits) == 5 and len(set(titles)) == 5
    times = [hit.at for hit in hits]
    for i, start in enumerate(times):  # never more than the quota within one window
        assert sum(1 for t in times[i:] if t - start < WECOM_RATE.per_s - 0.1) <= 2
    assert await wait_for_messages(fresh_nats_url, DLQ, timeout_s=0.5) == []


async def test_a_slow_receiver_holds_no_database_lock(
    service: ServiceRuntime, receiver: Receiver
) -> None:
    await add_rep(service, "rep-s", [webhook("slow", receiver.url("/slow/one"))])

    await request(service, ("rep", "rep-s"))
    await receiver.wait_for("/slow/one")  # the receiver now sits on the request for 2 s
    started = time.monotonic()
    await add_team(service, "south", [])  # a write, as intake does
    took = time.monotonic() - started

    assert took < 0.5
    await asyncio.sleep(2.5)
    assert len(receiver.at("/slow/one")) == 1


async def _redelivered(nats_url: str, timeout_s: float = 10.0) -> int:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()

        async def probe() -> int:
            try:
                info = await js.consumer_info(NOTIFY_STREAM.name, DELIVER_CONSUMER)
            except nats.js.errors.NotFoundError:
                return 0
            return info.num_redelivered or 0

        return await eventually(probe, lambda n: n >= 1, timeout_s=timeout_s)
    finally:
        await nc.close()


# --- sending only ahead of the transaction ------------------------------------------------


class _CountingSender(_Sender):
    """Records every send instead of making it."""

    def __init__(self) -> None:
        super().__init__(
            policy=AddressPolicy.allowing([]), timeout_s=1.0, limiter=ChannelRateLimiter({})
        )
        object.__setattr__(self, "sent", [])

    async def attempt(self, delivery_id: str, channel: Any, message: Any) -> BaseException | None:
        self.sent.append(delivery_id)  # type: ignore[attr-defined]
        return None


@dataclass
class _FakeMsg:
    data: bytes
    num_delivered: int = 1
    naks: list[float | None] = field(default_factory=list)

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(num_delivered=self.num_delivered)

    async def nak(self, delay: float | None = None) -> None:
        self.naks.append(delay)


def _delivery_msg(channel_id: str) -> tuple[_FakeMsg, Envelope]:
    data = NotifyDelivery(
        request_id="r-1",
        owner_kind="rep",
        owner_id="rep-f",
        channel_id=channel_id,
        title="t",
        text="x",
    )
    envelope = Envelope(
        id=f"delivery-{channel_id}",
        type=NotifyDelivery.event_type,
        source="test",
        occurred_at=datetime.now(UTC),
        data=data.model_dump(mode="json"),
    )
    return _FakeMsg(envelope.model_dump_json().encode()), envelope


class _OwnerSession:
    """Enough of a session for find_channel: every rep has the same two webhooks."""

    async def get(self, model: Any, owner_id: str) -> Any:
        channels = [
            webhook("a", "https://hooks.example/a"),
            webhook("b", "https://hooks.example/b"),
        ]
        return SimpleNamespace(id=owner_id, channels=channels)


class _FakeRunner:
    max_deliver = MAX_DELIVER
    give_up_after = 1000
    outage_retry_s = 30.0

    def __init__(self, consumer: _DeliverConsumer, *, database_up: bool) -> None:
        self.consumer = consumer
        self.database_up = database_up
        self.processed: list[Any] = []
        self.handled: list[tuple[str, BaseException | None]] = []

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[Any]:
        if not self.database_up:
            raise ConnectionRefusedError("database away")
        yield SimpleNamespace(session=_OwnerSession())

    async def process(self, messages: list[Any]) -> None:
        """The plumbing's part: each handler, inside 'the transaction'."""
        self.processed.extend(messages)
        for message in messages:
            envelope = Envelope.model_validate_json(message.data)
            try:
                async with self.unit_of_work() as uow:
                    await self.consumer._handle(uow, envelope, envelope.data)
            except Exception as exc:
                self.handled.append((envelope.id, exc))
            else:
                self.handled.append((envelope.id, None))


async def test_a_batch_that_cannot_be_prepared_is_nakked_soon_and_nothing_is_sent() -> None:
    sender = _CountingSender()
    consumer = _DeliverConsumer(sender)
    runner = _FakeRunner(consumer, database_up=False)
    messages = [_delivery_msg("a")[0], _delivery_msg("b")[0]]

    await consumer.process_batch(messages, runner)  # type: ignore[arg-type]

    assert sender.sent == []  # type: ignore[attr-defined]
    assert runner.processed == []  # no batch transaction, no handler sending one by one
    for message in messages:
        assert len(message.naks) == 1
        assert message.naks[0] is not None and 0 < message.naks[0] <= PREPARE_RETRY_S


async def test_a_handler_never_sends_a_delivery_that_was_not_sent_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender = _CountingSender()
    consumer = _DeliverConsumer(sender)
    runner = _FakeRunner(consumer, database_up=True)
    (msg_a, env_a), (msg_b, env_b) = _delivery_msg("a"), _delivery_msg("b")

    async def prepare_only_a(self: Any, pending: dict[str, Any], unit_of_work: Any) -> Any:
        # "b" is left out, as when its channel changed between preparing and recording.
        channel = SimpleNamespace(type="webhook", enabled=True, describe=lambda: "a")
        return {env_a.id: (channel, None)}

    monkeypatch.setattr(_DeliverConsumer, "_sendable", prepare_only_a)

    await consumer.process_batch([msg_a, msg_b], runner)  # type: ignore[arg-type]

    assert sender.sent == [env_a.id]  # type: ignore[attr-defined]  # ahead of the transaction
    outcomes = dict(runner.handled)
    assert outcomes[env_a.id] is None  # recorded as sent
    assert isinstance(outcomes[env_b.id], NotSentAhead)  # retried later, not sent in here


async def test_a_delivery_not_sent_ahead_is_retried_and_sent_once_the_other_not_again(
    service: ServiceRuntime,
    receiver: Receiver,
    fresh_nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await add_rep(
        service,
        "rep-r",
        [
            webhook("first", receiver.url("/ok/first")),
            webhook("second", receiver.url("/ok/second")),
        ],
    )
    real_sendable = _DeliverConsumer._sendable
    prepared: list[list[str]] = []  # the deliveries of each batch prepared, in order
    skipped: list[str] = []

    async def skip_second_once(self: Any, pending: dict[str, Any], unit_of_work: Any) -> Any:
        prepared.append(list(pending))
        jobs = await real_sendable(self, pending, unit_of_work)
        for event_id, delivery in pending.items():
            if delivery.channel_id == "second" and not skipped:
                skipped.append(event_id)
                jobs.pop(event_id, None)
        return jobs

    monkeypatch.setattr(_DeliverConsumer, "_sendable", skip_second_once)

    await request(service, ("rep", "rep-r"))

    await receiver.wait_for("/ok/second")
    await receiver.wait_for("/ok/first")
    await asyncio.sleep(1.0)
    assert skipped
    first_seen = next(i for i, batch in enumerate(prepared) if skipped[0] in batch)
    # "second" came back (NAKed by its handler, not sent there) and was sent ahead then.
    assert any(skipped[0] in batch for batch in prepared[first_seen + 1 :])
    assert len(receiver.at("/ok/first")) == 1  # the batch's replay did not send it again
    assert len(receiver.at("/ok/second")) == 1
    assert await wait_for_messages(fresh_nats_url, DLQ, timeout_s=0.5) == []


# --- a stored channel that today's checks refuse ------------------------------------------

ROBOT_KEY = "693a91f6-7b2c-4bc4-97a0-0ec2a1fa5aaa"


async def test_a_stored_channel_that_no_longer_validates_is_listed_redacted_and_marked(
    database_url: str,
    auth_database_url: str,
    fresh_nats_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(
        Settings(
            database_url=database_url,
            auth_database_url=auth_database_url,
            nats_url=fresh_nats_url,
            data_dir=tmp_path,
        )
    )
    bad_url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?KEY={ROBOT_KEY}"  # not ?key=
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        service_runtime = runtime_of(app)
        await add_team(
            service_runtime,
            "legacy",
            [{"id": "old bot", "type": "wecom", "url": bad_url, "secret": "was-allowed-then"}],
        )
        await add_rep(
            service_runtime,
            "rep-old",
            [
                {"id": "wx", "type": "wecom", "url": bad_url},
                webhook("fine", "https://hooks.example/fine"),
            ],
            team_id="legacy",
        )

        answers = [
            await client.get("/v1/reps", headers=ops),
            await client.get("/v1/reps/rep-old", headers=ops),
            await client.get("/v1/teams", headers=ops),
        ]

    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    reps = {r["id"]: r for r in answers[0].json()}
    assert answers[1].json()["channels"] == reps["rep-old"]["channels"]
    wx, fine = reps["rep-old"]["channels"]
    assert wx == {
        "id": "wx",
        "type": "wecom",
        "url": "https://qyapi.weixin.qq.com/…",
        "secret": None,
        "enabled": True,
        "invalid": True,
    }
    assert fine["url"] == "https://hooks.example/…" and fine["secret"] == "set"
    assert "invalid" not in fine
    (team,) = [t for t in answers[2].json() if t["id"] == "legacy"]
    assert team["channels"] == [
        {
            "id": "old bot",
            "type": "wecom",
            "url": "https://qyapi.weixin.qq.com/…",
            "secret": "set",
            "enabled": True,
            "invalid": True,
        }
    ]
    everything = "".join(a.text for a in answers)
    assert ROBOT_KEY[:8] not in everything and "was-allowed-then" not in everything
    logged = capsys.readouterr()
    assert ROBOT_KEY[:8] not in logged.out + logged.err  # no URL (and its key) in the logs


# --- lead-router's own messages, through its public API ---------------------------------


async def test_the_reps_concerned_are_told_when_a_lead_is_routed_returns_and_is_released(
    database_url: str,
    auth_database_url: str,
    fresh_nats_url: str,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    app = create_app(
        NotifyTestSettings(
            database_url=database_url,
            auth_database_url=auth_database_url,
            nats_url=fresh_nats_url,
            data_dir=tmp_path,
            consumer_backoff_s=[0.2, 0.5, 1.0],
        )
    )
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        team = {"name": "华东", "channels": [webhook("robot", receiver.url("/ok/team"))]}
        assert (await client.put("/v1/teams/east", json=team, headers=ops)).status_code < 300
        for rep_id, channels in {
            "rep-zhang": [webhook("main", receiver.url("/ok/zhang"))],
            "rep-li": [webhook("main", receiver.url("/ok/li"))],
        }.items():
            body = {"name": rep_id, "team_id": "east", "cities": ["杭州"], "channels": channels}
            answer = await client.put(f"/v1/reps/{rep_id}", json=body, headers=ops)
            assert answer.status_code < 300, answer.text
        rules = {"yaml": HANGZHOU_ROUND_ROBIN}
        answer = await client.put("/v1/rules/routing", json=rules, headers=ops)
        assert answer.status_code == 200, answer.text
        first = HENGTONG_LEAD
        routed = (await client.post("/v1/leads", json=first, headers=ops)).json()
        again = {**first, "company_name": "恒通紧固件", "source": "trade_show"}
        duplicate = (await client.post("/v1/leads", json=again, headers=ops)).json()
        assert routed["owner_id"] == "rep-zhang" and duplicate["status"] == "duplicate"
        told_zhang = await receiver.wait_for("/ok/zhang", count=2)

        nc = await nats.connect(fresh_nats_url)
        await nc.jetstream().publish(
            "salesrail.sla.alert.untouched_72h", untouched_alert(routed["id"], "rep-zhang")
        )
        await nc.close()
        told_zhang = await receiver.wait_for("/ok/zhang", count=3)
        [told_team] = await receiver.wait_for("/ok/team")
        [told_li] = await receiver.wait_for("/ok/li")
        await asyncio.sleep(1.0)  # time for any extra copy to show up

    titles = [json.loads(hit.body)["title"] for hit in told_zhang]
    assert titles == [
        "新线索分配给您 (new lead)",
        "您的客户再次来询 (returning customer)",
        "线索已收回公海 (lead released)",
    ]
    assert [json.loads(hit.body)["lead_id"] for hit in told_zhang] == [
        routed["id"],
        duplicate["id"],
        routed["id"],
    ]
    # The supervisor hears of the release through the team's robot; the next rep gets the lead.
    assert json.loads(told_team.body)["title"] == "线索已收回公海 (lead released)"
    assert json.loads(told_li.body)["title"] == "新线索分配给您 (new lead)"
    assert len(receiver.hits) == 5 and all(hit.signed for hit in receiver.hits)
    text = json.loads(told_zhang[0].body)["text"]
    assert "杭州恒通紧固件有限公司" in text and "139****5678" in text  # masked on the robot


# --- channel credentials sealed at rest ---------------------------------------------------

OLD_KEY, FOREIGN_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


async def raw_channels(runtime: ServiceRuntime, table: str, owner_id: str) -> str:
    """The row's `channels` as the database holds it (what a dump would show)."""
    async with runtime.unit_of_work() as uow:
        value = await uow.session.scalar(
            text(f"SELECT channels FROM {table} WHERE id = :id"), {"id": owner_id}
        )
    return value if isinstance(value, str) else json.dumps(value)


def sealed_with(key: str, channel: dict[str, Any]) -> dict[str, Any]:
    return seal_channel(ChannelConfig.model_validate(channel), Sealer([key]))


def notify_app(database_url: str, nats_url: str, data_dir: Path, **overrides: Any) -> FastAPI:
    return create_app(
        NotifyTestSettings(
            database_url=database_url,
            auth_database_url=sqlite_url(data_dir / "auth.db"),
            nats_url=nats_url,
            data_dir=data_dir,
            consumer_backoff_s=[0.2, 0.5, 1.0],
            **overrides,
        )
    )


async def test_a_channel_stored_through_the_api_keeps_no_credential_in_clear_and_still_sends(
    database_url: str, fresh_nats_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    app = notify_app(database_url, fresh_nats_url, tmp_path)
    hook_url = receiver.url("/ok/sealed?token=url-token-1")
    ding_url = receiver.url("/dingtalk?access_token=t0k3n-in-url")
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        ding = {"id": "ding", "type": "dingtalk", "url": ding_url, "secret": DINGTALK_SECRET}
        team = await client.put(
            "/v1/teams/north", json={"name": "华北", "channels": [ding]}, headers=ops
        )
        rep = await client.put(
            "/v1/reps/rep-s",
            json={"name": "rep-s", "team_id": "north", "channels": [webhook("main", hook_url)]},
            headers=ops,
        )
        assert (team.status_code, rep.status_code) == (201, 201), team.text + rep.text
        runtime = runtime_of(app)
        stored = await raw_channels(runtime, "reps", "rep-s") + await raw_channels(
            runtime, "teams", "north"
        )
        listed = await client.get("/v1/reps/rep-s", headers=ops)

        await request(runtime, ("rep", "rep-s"), ("team", "north"))
        [told_rep] = await receiver.wait_for("/ok/sealed")
        [told_team] = await receiver.wait_for("/dingtalk")

    for credential in (SECRET, DINGTALK_SECRET, "url-token-1", "t0k3n-in-url", "/ok/sealed"):
        assert credential not in stored
    assert stored.count("sealed:v1:") == 4  # two URLs, two secrets
    assert listed.json()["channels"] == [
        {
            "id": "main",
            "type": "webhook",
            "url": f"http://127.0.0.1:{receiver.port}/…",
            "secret": "set",
            "enabled": True,
        }
    ]
    assert told_rep.signed and told_rep.query["token"] == "url-token-1"
    assert told_team.signed and told_team.query["access_token"] == "t0k3n-in-url"


async def test_after_a_rotation_old_and_clear_channels_send_and_reseal_moves_them_to_the_new_key(
    database_url: str, fresh_nats_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    async with started(
        database_url, fresh_nats_url, tmp_path, channel_keys=f"{CHANNEL_KEY},{OLD_KEY}"
    ) as runtime:
        sealed_before = sealed_with(OLD_KEY, webhook("old", receiver.url("/ok/old-key")))
        await add_rep(runtime, "rep-o", [sealed_before])
        await add_team(runtime, "legacy", [webhook("clear", receiver.url("/ok/in-clear"))])

        await request(runtime, ("rep", "rep-o"), ("team", "legacy"))
        [old_key] = await receiver.wait_for("/ok/old-key")
        [in_clear] = await receiver.wait_for("/ok/in-clear")

        report = await reseal_all(database_url, Sealer([CHANNEL_KEY, OLD_KEY]))
        again = await reseal_all(database_url, Sealer([CHANNEL_KEY, OLD_KEY]))
        rows = [
            json.loads(await raw_channels(runtime, "reps", "rep-o"))[0],
            json.loads(await raw_channels(runtime, "teams", "legacy"))[0],
        ]

    assert old_key.signed and in_clear.signed
    assert (report.resealed, report.owners_written, report.unopened) == (2, 2, [])
    assert (again.resealed, again.current) == (0, 2)  # nothing left to do: nothing written
    new_key_only = Sealer([CHANNEL_KEY])
    assert [open_channel(row, new_key_only).id for row in rows] == ["old", "clear"]
    assert SECRET not in json.dumps(rows)


async def test_a_channel_no_configured_key_opens_is_parked_with_the_reason_and_intake_goes_on(
    database_url: str, fresh_nats_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    app = notify_app(database_url, fresh_nats_url, tmp_path)
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        runtime = runtime_of(app)
        lost_key = sealed_with(FOREIGN_KEY, webhook("lost", receiver.url("/ok/lost")))
        await add_rep(runtime, "rep-zhang", [lost_key, webhook("main", receiver.url("/ok/zhang"))])
        await add_rep(runtime, "rep-li", [])
        answer = await client.put(
            "/v1/rules/routing", json={"yaml": HANGZHOU_ROUND_ROBIN}, headers=ops
        )
        assert answer.status_code == 200, answer.text
        lead = HENGTONG_LEAD

        started_at = time.monotonic()
        routed = await client.post("/v1/leads", json=lead, headers=ops)
        took = time.monotonic() - started_at
        dead = await dead_letters(fresh_nats_url, "lost")
        [told] = await receiver.wait_for("/ok/zhang")

    assert routed.status_code == 201 and routed.json()["owner_id"] == "rep-zhang"
    assert took < 2.0  # intake never opens a channel
    assert len(dead) == 1 and dead[0].headers["Salesrail-Dead-Letter-Deliveries"] == "1"
    reason = dead[0].headers[REASON_HEADER]
    assert "channel 'lost' of rep 'rep-zhang' cannot be opened" in reason
    assert "SALESRAIL_CHANNEL_KEYS" in reason
    assert told.signed  # the rep's other channel is told all the same
    assert receiver.at("/ok/lost") == []


async def test_without_a_key_a_channel_is_refused_naming_its_credentials_and_clear_ones_send(
    database_url: str, fresh_nats_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    app = notify_app(database_url, fresh_nats_url, tmp_path, channel_keys=None)
    robot = {"id": "wx", "type": "wecom", "url": receiver.url(f"/wecom?key={ROBOT_KEY}")}
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        refused_rep = await client.put(
            "/v1/reps/rep-n",
            json={"name": "n", "channels": [webhook("main", receiver.url("/ok/n"))]},
            headers=ops,
        )
        refused_team = await client.put(
            "/v1/teams/west", json={"name": "西部", "channels": [robot]}, headers=ops
        )
        missing = await client.get("/v1/reps/rep-n", headers=ops)
        no_channels = await client.put("/v1/reps/rep-n", json={"name": "n"}, headers=ops)
        runtime = runtime_of(app)
        await add_rep(runtime, "rep-c", [webhook("clear", receiver.url("/ok/stored-in-clear"))])
        await request(runtime, ("rep", "rep-c"))
        [told] = await receiver.wait_for("/ok/stored-in-clear")

    assert refused_rep.status_code == 422
    assert refused_rep.headers["content-type"].startswith("application/problem+json")
    problem = refused_rep.json()
    assert [e["field"] for e in problem["errors"]] == ["channels[0].secret", "channels[0].url"]
    assert "no channel key is configured" in problem["detail"]
    assert "SALESRAIL_CHANNEL_KEYS" in problem["errors"][0]["message"]
    assert SECRET not in refused_rep.text
    assert refused_team.status_code == 422  # a robot URL carries its key: refused as well
    assert [e["field"] for e in refused_team.json()["errors"]] == ["channels[0].url"]
    assert ROBOT_KEY not in refused_team.text
    assert missing.status_code == 404  # nothing was stored
    assert no_channels.status_code == 201  # reps without channels need no key
    assert told.signed  # channels stored in clear before keep working
