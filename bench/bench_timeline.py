"""Lead timeline: GET /v1/leads/{id}/timeline on activity (real PostgreSQL), a lead with 1,000
activities among 1,000,000.

The activities are generated in the database (10,000 other leads share the rest), with a few
stage changes and overrides on the measured lead. One keep-alive client then walks the measured
lead's whole timeline page by page (50 items, following `next_cursor`), again and again, and
the latency of each page is recorded: as the lead's owner (full data) and as ops (masked).
The target of issue 5: p95 <= 20 ms. The plan and execution time of the deepest page's
activities query is read with EXPLAIN ANALYZE.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import asyncpg
import httpx

from bench import Context, Figure
from bench.activity_stack import REP, ActivityStack, lead_id

NAME = "timeline"
REQUIRES: tuple[str, ...] = ()

TOTAL = 1_000_000
ON_LEAD = 1_000
OTHER_LEADS = 10_000
LEAD = lead_id(0)

_ACTIVITIES = f"""
INSERT INTO activities (activity_id, lead_id, rep_id, type, occurred_at, logged_at, logged_by,
    on_time, summary, transcript, record, tech_env_change, overridden)
SELECT gen_random_uuid()::text,
       CASE WHEN g <= {ON_LEAD} THEN '{LEAD}' ELSE 'bench-lead-' || (1 + g % {OTHER_LEADS}) END,
       '{REP}',
       (ARRAY['call', 'visit', 'note', 'meeting'])[1 + g % 4],
       now() - make_interval(mins => g % 525600, secs => g % 7),
       now() - make_interval(mins => g % 525600),
       '{REP}', NULL,
       '电话回访：客户关心交期，王总说下周定',
       '决策人是王总，预算50-80万，下一步：下周安排方案演示。王总电话13812345678，李工负责技术',
       '{{"details": {{"contacts": ["王总", "李工"]}}, "attachments": [],
          "facts": {{"decision_maker": "王总", "budget_min": 500000, "budget_max": 800000,
                    "next_step": "下周安排方案演示"}},
          "missing_facts": [], "key_people": ["王总", "李工"], "flags": []}}'::jsonb,
       false, false
FROM generate_series(1, {TOTAL}) AS g
"""
_STAGE_CHANGES = f"""
INSERT INTO stage_changes (change_id, lead_id, from_stage, to_stage, by, reason, overridden,
    occurred_at)
SELECT gen_random_uuid()::text, '{LEAD}', 'contact', 'needs_confirmed', 'sup-bench', '补录',
       g % 2 = 0, now() - make_interval(days => g * 30)
FROM generate_series(1, 10) AS g
"""
_OVERRIDES = f"""
INSERT INTO overrides (override_id, lead_id, scope, subject_id, missing, reason, by, role,
    occurred_at)
SELECT gen_random_uuid()::text, '{LEAD}', 'stage_gate', gen_random_uuid()::text, '[]'::jsonb,
       '客户总部已看过演示', 'sup-bench', 'supervisor', now() - make_interval(days => g * 60)
FROM generate_series(1, 5) AS g
"""
_DEEP_PAGE = """
EXPLAIN (ANALYZE, FORMAT JSON)
SELECT * FROM activities
WHERE lead_id = $1 AND (occurred_at, activity_id) < ($2, $3)
ORDER BY occurred_at DESC, activity_id DESC LIMIT 51
"""


async def _load(dsn: str) -> tuple[float, float, str]:
    """Generate the rows (index built afterwards, as a bulk load would); the seconds it took,
    the deep page's execution time (ms) and the plan's index."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.monotonic()
        await conn.execute("DROP INDEX ix_activities_timeline")
        await conn.execute(_ACTIVITIES)
        await conn.execute(
            "CREATE INDEX ix_activities_timeline ON activities (lead_id, occurred_at, activity_id)"
        )
        await conn.execute(_STAGE_CHANGES)
        await conn.execute(_OVERRIDES)
        # As ten stage changes would have left it (the timeline reads their kinds only then).
        await conn.execute("UPDATE leads SET version = 10 WHERE lead_id = $1", LEAD)
        await conn.execute("VACUUM ANALYZE activities")
        seconds = time.monotonic() - started
        middle = await conn.fetchrow(
            "SELECT occurred_at, activity_id FROM activities WHERE lead_id = $1 "
            "ORDER BY occurred_at DESC, activity_id DESC OFFSET $2 LIMIT 1",
            LEAD,
            ON_LEAD // 2,
        )
        [plan] = json.loads(await conn.fetchval(_DEEP_PAGE, LEAD, *middle))
    finally:
        await conn.close()
    node = plan["Plan"]
    while "Index Name" not in node and node.get("Plans"):
        node = node["Plans"][0]
    return seconds, float(plan["Execution Time"]), str(node.get("Index Name", "no index"))


def _walk(client: httpx.Client, headers: dict[str, str], seconds: float) -> list[float]:
    """Page through the lead's timeline again and again; each page's latency in ms."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    cursor: str | None = None
    while time.monotonic() < deadline:
        params = {"cursor": cursor} if cursor else {}
        started = time.perf_counter()
        answer = client.get(f"/v1/leads/{LEAD}/timeline", params=params, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"timeline answered {answer.status_code}: {answer.text[:300]}")
        cursor = answer.json()["next_cursor"]
    return latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run(ctx: Context) -> list[Figure]:
    with ActivityStack("timeline") as stack:
        stack.seed_leads(OTHER_LEADS + 1)
        load_s, deep_ms, index = asyncio.run(_load(stack.database_dsn))
        with httpx.Client(base_url=stack.url("/"), timeout=30) as client:
            _walk(client, stack.rep, ctx.warmup)
            owner = _walk(client, stack.rep, ctx.duration)
            ops = _walk(client, stack.ops, ctx.duration / 2)
        rows = int(stack.scalar("SELECT count(*) FROM activities"))
        description = stack.server.description if stack.server else "activity"

    pages = -(-(ON_LEAD + 15) // 50)
    note = (
        f"one keep-alive client, pages of 50 walked with next_cursor ({pages} pages a walk), "
        f"{ctx.duration:g}s after {ctx.warmup:g}s warm-up, {description}; {rows:,} activities, "
        f"{ON_LEAD:,} on the lead"
    )
    return [
        Figure("timeline_page_p50", statistics.median(owner), "ms", f"owner; {note}"),
        Figure("timeline_page_p95", _percentile(owner, 95), "ms", f"owner, {len(owner)} pages"),
        Figure("timeline_page_p99", _percentile(owner, 99), "ms", f"owner, {len(owner)} pages"),
        Figure(
            "timeline_page_masked_p95",
            _percentile(ops, 95),
            "ms",
            f"ops (phones and names masked), {len(ops)} pages",
        ),
        Figure(
            "timeline_deep_page_sql",
            deep_ms,
            "ms",
            f"EXPLAIN ANALYZE of the activities query at item {ON_LEAD // 2}: {index}",
        ),
        Figure("timeline_load_s", load_s, "s", f"generating {rows:,} activities + index"),
    ]
