"""activity as a real process on its own NATS and PostgreSQL, for the activity benchmarks.

    with ActivityStack("activities") as stack:   # nats-server, 2 fresh databases, the service
        stack.seed_leads(2_000)                  # leads owned by REP, straight into its table
        run_load(stack.url("/v1/activities"), varying_body=..., headers=stack.rep, ...)

Everything started here is ours alone and is stopped on leaving the block: the nats-server (a
free port, a temporary directory), the two uniquely named databases (dropped WITH FORCE) and
the activity process (SIGTERM, then SIGKILL); see ``bench.service_stack``. Leads are written
to activity's own `leads` table, as its lead consumer would have written them from
lead-router's events.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.service_stack import KeySpec, ServiceStack, stream_counts

REP = "bench-rep"
TEAM = "bench-east"
COMPANY = "杭州鑫盛紧固件有限公司"


def lead_id(n: int) -> str:
    return f"bench-lead-{n}"


class ActivityStack(ServiceStack):
    """nats-server + two fresh PostgreSQL databases + activity (one uvicorn worker)."""

    service = "activity"
    module = "activity"
    env_prefix = "SALESRAIL_ACTIVITY_"

    def api_keys(self) -> dict[str, KeySpec]:
        return {"rep": KeySpec("rep", "bench-rep", rep_id=REP), **super().api_keys()}

    @property
    def rep(self) -> dict[str, str]:
        return self.keys.get("rep", {})

    # --- set-up ----------------------------------------------------------------------------

    def seed_leads(self, count: int) -> None:
        """`count` leads owned by REP (team TEAM), at stage contact, as the consumer keeps them."""
        now = datetime.now(UTC)
        rows = [
            (lead_id(n), COMPANY, "杭州", "紧固件", now, REP, "contact", now, TEAM, now, 0, "{}")
            for n in range(count)
        ]
        asyncio.run(
            self._copy(
                "leads",
                rows,
                [
                    "lead_id",
                    "company_name",
                    "city",
                    "category",
                    "received_at",
                    "owner_id",
                    "stage",
                    "updated_at",
                    "team_id",
                    "owner_changed_at",
                    "version",
                    "dossier",
                ],
            )
        )

    async def _copy(self, table: str, rows: list[tuple[Any, ...]], columns: list[str]) -> None:
        conn = await asyncpg.connect(self.database_dsn)
        try:
            await conn.copy_records_to_table(table, records=rows, columns=columns)
            await conn.execute(f"ANALYZE {table}")
        finally:
            await conn.close()

    # --- checks ----------------------------------------------------------------------------

    def wait_drained(self, timeout: float = 30.0) -> int:
        """Wait until the outbox has nothing unsent (the relay caught up); the unsent count."""
        deadline = time.monotonic() + timeout
        unsent = -1
        while time.monotonic() < deadline:
            unsent = int(self.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
            if unsent == 0:
                return 0
            time.sleep(0.3)
        return unsent

    def stream_messages(self, stream: str = "SALESRAIL_ACTIVITY") -> tuple[int, dict[str, int]]:
        return asyncio.run(stream_counts(self.nats.url, stream))

    def log_problems(self) -> dict[str, int]:
        """Warning-or-worse lines of the service log, counted by event."""
        return self.log_events()
