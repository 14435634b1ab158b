"""Activity logging: POST /v1/activities on activity (real NATS + PostgreSQL), no file.

Each request logs a call with a short memo transcript on one of 2,000 leads owned by the
calling rep (an API key of role rep): the whole path of issue 5 for an activity without
attachments — owner check, requirements through durable-rules (memoised), memo extraction,
key people and tech-environment phrases, the lead's dossier, the next stage's completion,
the activity row, `activity.logged` through the outbox. Afterwards the activities in the
database and the messages in SALESRAIL_ACTIVITY are counted.

Options: ``--set activities.workers=N`` (uvicorn workers of the service, 1),
``activities.concurrency=N``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from bench import Context, Figure
from bench.activity_stack import REP, ActivityStack, lead_id
from bench.load import VaryingBody, _lua_string, run_load

NAME = "activities"
REQUIRES = ("yardstick",)

LEADS = 2_000
SUMMARY = "电话回访：客户关心交期"
TRANSCRIPT = "决策人是王总，预算50-80万，下一步：下周安排方案演示"


def _body(occurred_at: str, slot: int, n: int) -> bytes:
    body = {
        "lead_id": lead_id((n * 7 + slot * 131) % LEADS),
        "rep_id": REP,
        "type": "call",
        "occurred_at": occurred_at,
        "summary": SUMMARY,
        "transcript": TRANSCRIPT,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _varying(occurred_at: str) -> VaryingBody:
    head, tail = _body(occurred_at, 0, 0).split(lead_id(0).encode())
    lua = f"""
function make_body(slot, n)
  return {_lua_string(head)} .. "bench-lead-" .. ((n * 7 + slot * 131) % {LEADS}) ..
    {_lua_string(tail)}
end
"""
    return VaryingBody(lua=lua, python=lambda slot, n: _body(occurred_at, slot, n))


def run(ctx: Context) -> list[Figure]:
    concurrency = int(ctx.options.get("activities.concurrency", ctx.concurrency))
    workers = int(ctx.options.get("activities.workers", 1))
    occurred_at = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    with ActivityStack("activities", workers=workers) as stack:
        stack.seed_leads(LEADS)
        probe = httpx.post(
            stack.url("/v1/activities"),
            content=_body(occurred_at, 0, 0),
            headers={**stack.rep, "Content-Type": "application/json"},
            timeout=30,
        )
        if probe.status_code != 201:
            raise RuntimeError(f"the probe activity answered {probe.status_code}: {probe.text}")
        r = run_load(
            stack.url("/v1/activities"),
            method="POST",
            varying_body=_varying(occurred_at),
            headers=stack.rep,
            concurrency=concurrency,
            duration=ctx.duration,
            warmup=ctx.warmup,
            generator=ctx.generator,
        )
        unsent = stack.wait_drained()
        stored = int(stack.scalar("SELECT count(*) FROM activities"))
        messages, subjects = stack.stream_messages()
        log_events = stack.log_problems()
        description = stack.server.description if stack.server else "activity"

    sent_ok = r.requests + (r.warmup_requests or 0) + 1  # + the probe
    problems = []
    if stored < sent_ok:
        problems.append(f"fewer activities stored ({stored}) than 2xx answers ({sent_ok})")
    if unsent:
        problems.append(f"outbox still has {unsent} unsent after 30 s")
    if subjects.get("salesrail.activity.logged", 0) != stored:
        problems.append(f"{subjects} in SALESRAIL_ACTIVITY for {stored} activities")
    check = (
        f"DB: {stored} activities, outbox unsent {unsent}; SALESRAIL_ACTIVITY: {messages} msgs; "
        f"2xx seen {sent_ok} (warm-up {r.warmup_requests}, measured {r.requests}, probe 1)"
    )
    if log_events:
        check += "; service log: " + ", ".join(f"{k} x{v}" for k, v in sorted(log_events.items()))
    if problems:
        check += "; CHECK FAILED: " + "; ".join(problems)
    note = f"{r.note}, warmup {ctx.warmup:g}s, {description}, a call with a memo on {LEADS} leads"
    return [
        Figure("activities_rps", r.rps, "req/s", note),
        ctx.ratio_to_yardstick("activities_ratio_to_yardstick", r.rps, r.note),
        Figure("activities_p50", r.p50_ms, "ms", r.generator),
        Figure("activities_p99", r.p99_ms, "ms", f"{r.generator}; max {r.max_ms:.1f} ms"),
        Figure(
            "activities_non2xx_or_errors",
            float(r.errors),
            "requests",
            ", ".join(f"{k}={v}" for k, v in sorted(r.error_kinds.items())) or "none",
        ),
        Figure("activities_in_db", float(stored), "activities", check),
    ]
