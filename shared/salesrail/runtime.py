"""A service's life: migrate, connect, create streams, relay the outbox, consume, stop cleanly.

Every service builds one `ServiceRuntime` in its `main.py`; the HTTP app's lifespan runs it.
On shutdown, the batch of messages in hand is finished and acknowledged first, then the outbox
relay publishes what is already committed, then connections close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from salesrail import faults
from salesrail.auth.api_keys import ApiKeyStore
from salesrail.auth.jwt_tokens import JwtVerifier
from salesrail.bus.consumer import EventConsumer, PullLoop
from salesrail.bus.housekeeping import Housekeeping
from salesrail.bus.outbox import Outbox, OutboxRelay
from salesrail.clock import Clock, system_clock
from salesrail.db.database import Database
from salesrail.db.migrate import PLUMBING_VERSIONS, migrate
from salesrail.events.streams import ensure_streams
from salesrail.settings import ServiceSettings
from salesrail.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

# Any fixed number no other lock of a service's database uses (7_316_551: migrations, 7_316_552:
# the outbox relay's leader): replicas starting together build their context one at a time.
_START_LOCK_ID = 7_316_553


@dataclass
class AuthContext:
    api_keys: ApiKeyStore
    jwt: JwtVerifier


ServiceLifespan = Callable[["ServiceRuntime"], AbstractAsyncContextManager[Any]]
# A fixed list, or one made from the settings (a consumer configured by them).
Consumers = Sequence[EventConsumer] | Callable[[ServiceSettings], Sequence[EventConsumer]]


class ServiceRuntime:
    """`lifespan`, when given, builds the service's own context (rule engines, caches, ...)
    once the database and bus are up and before consumers start; handlers and routes reach
    it as `uow.context` and `runtime.context`."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        migrations: Path,
        consumers: Consumers = (),
        clock: Clock = system_clock,
        lifespan: ServiceLifespan | None = None,
    ) -> None:
        self.settings = settings
        self.lifespan = lifespan
        self.context: Any = None
        self._exit_stack = AsyncExitStack()
        self.clock = clock
        self.migrations = migrations
        self.consumers = tuple(consumers(settings) if callable(consumers) else consumers)
        self.db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        # Key rows are cached: a few connections serve a cold cache without churn.
        self.auth_db = Database(settings.auth_database_url, pool_size=4, max_overflow=2)
        self.auth = AuthContext(
            api_keys=ApiKeyStore(self.auth_db, clock=clock, cache_s=settings.api_key_cache_s),
            jwt=JwtVerifier(
                secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
                public_key=settings.jwt_public_key,
                algorithms=settings.jwt_algorithms,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            ),
        )
        self.outbox = Outbox(source=settings.service_name, clock=clock)
        self.loops: list[PullLoop] = []
        self.housekeeping = Housekeeping(
            db=self.db,
            clock=clock,
            outbox_retention_s=settings.outbox_retention_s,
            processed_retention_s=settings.processed_events_retention_s,
        )
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.relay: OutboxRelay | None = None
        self.started = False
        self._stopped = False
        # A service's own readiness checks (e.g. its scheduler), by name: True when healthy.
        self.extra_checks: dict[str, Callable[[], Awaitable[bool]]] = {}

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self.db.transaction() as session:
            yield UnitOfWork(
                session=session, outbox=self.outbox, clock=self.clock, context=self.context
            )
            await self.outbox.write_staged(session)

    async def start(self) -> None:
        s = self.settings
        faults.arm(s.faults)
        await migrate(self.db, [PLUMBING_VERSIONS, self.migrations])
        await self.auth.api_keys.migrate()
        self.nc = await nats.connect(
            s.nats_url,
            name=s.service_name,
            connect_timeout=s.nats_connect_timeout_s,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
        )
        self.js = self.nc.jetstream()
        await ensure_streams(self.js, duplicate_window_s=s.stream_duplicate_window_s)
        self.relay = OutboxRelay(
            db=self.db,
            js=self.js,
            clock=self.clock,
            batch_size=s.outbox_batch_size,
            poll_interval_s=s.outbox_poll_interval_s,
            max_payload=lambda: self.nc.max_payload if self.nc is not None else 0,
        )
        self.relay.start()
        relay = self.relay
        self.outbox.wake_others = lambda: not relay.leading
        self.housekeeping.start()
        if self.lifespan is not None:
            # A service's start-up may store what it ships on first start (default rules,
            # policies): replicas or workers doing that at once would each find nothing stored
            # and each insert it, all but one failing on the unique key and never coming up.
            async with self.db.locked(_START_LOCK_ID):
                self.context = await self._exit_stack.enter_async_context(self.lifespan(self))
        self.loops = [
            consumer.bind(
                unit_of_work=self.unit_of_work,
                js=self.js,
                clock=self.clock,
                batch_size=s.consumer_batch_size,
                max_deliver=s.consumer_max_deliver,
                backoff_s=s.consumer_backoff_s,
                ack_wait_s=s.consumer_ack_wait_s,
                give_up_after=s.consumer_give_up_after,
                outage_retry_s=s.consumer_outage_retry_s,
            )
            for consumer in self.consumers
        ]
        for loop in self.loops:
            await loop.start()
        self.started = True
        log.info("service.started", nats=s.nats_url, database=self.db.url.render_as_string())

    async def stop(self) -> None:
        """Finish in-flight messages, publish what is committed, then close connections."""
        if self._stopped:
            return
        self._stopped = True
        self.started = False
        for loop in self.loops:
            await loop.stop(grace_s=self.settings.shutdown_grace_s)
        await self._exit_stack.aclose()
        await self.housekeeping.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()  # flushes what is buffered; subscriptions are already gone
            except nats.errors.Error as exc:  # reconnecting: the databases are still closed
                log.warning("service.nats_drain_failed", error=repr(exc))
                await self.nc.close()
        await self.db.dispose()
        await self.auth_db.dispose()
        log.info("service.stopped")

    async def readiness(self) -> dict[str, Any]:
        """What /readyz reports: each dependency 'ok' or why not."""
        checks: dict[str, Any] = {}
        for name, db in (("database", self.db), ("auth_database", self.auth_db)):
            try:
                await db.ping()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unreachable: {type(exc).__name__}"
        connected = self.nc is not None and self.nc.is_connected
        checks["nats"] = "ok" if connected and self.started else "not connected"
        if self.loops:
            ok = all(loop.running for loop in self.loops)
            checks["consumers"] = "ok" if ok else "stopped"
        for name, check in self.extra_checks.items():
            try:
                checks[name] = "ok" if await check() else "failing"
            except Exception as exc:
                checks[name] = f"failing: {type(exc).__name__}"
        return checks
