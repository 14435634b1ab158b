"""Intake latency: POST /v1/leads sent -> salesrail.lead.routed received, at a fixed rate.

Same stack as ``intake`` (lead-router on its own NATS + PostgreSQL, the city rule). A JetStream
ordered consumer on ``salesrail.lead.routed``, subscribed before the load, records when each
lead's event arrives. An open-loop generator (asyncio streams, keep-alive connections:
``bench.load.RawJsonClient``; httpx cost the generator a core at 200/s) sends a new lead at
scheduled times, ``rate`` per second for ``seconds`` (not back-to-back: a slow answer does not
delay the next send), and records per lead id (the 201 answer's ``id``) when its POST was sent.
Only leads answered ``status: routed`` are expected on lead.routed (1 in 10 goes to the pool).

Options: ``--set intake_latency.rate=200``, ``intake_latency.seconds=15``,
``intake_latency.grace=5`` (seconds a lead.routed may take before it counts as missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench import Context, Figure
from bench.intake_stack import IntakeStack, lead_body
from bench.load import RawJsonClient

NAME = "intake_latency"
REQUIRES: tuple[str, ...] = ()

SUBJECT = "salesrail.lead.routed"
WARMUP_SLOT, MEASURED_SLOT = 0, 1
#: An answer slower than this is an error (the run stays bounded when the service falls behind).
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Sent:
    scheduled: float
    sent: float
    answered: float | None = None
    lead_id: str | None = None
    status: str | None = None  # the lead's status in the answer (routed / pooled / ...)
    error: str | None = None


@dataclass
class Phase:
    sends: list[Sent] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    max_lag: float = 0.0  # how late the generator itself sent, at worst


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def _open_loop(client: RawJsonClient, slot: int, rate: float, seconds: float) -> Phase:
    """Send lead n of ``slot`` at start + (n-1)/rate; each send is its own task."""
    phase = Phase()
    total = int(round(rate * seconds))
    start = time.perf_counter() + 0.05

    async def one(record: Sent, body: dict[str, Any]) -> None:
        try:
            status, answer = await asyncio.wait_for(client.post(body), REQUEST_TIMEOUT_S)
            record.answered = time.perf_counter()
            if status == 201:
                data = json.loads(answer)
                record.lead_id, record.status = data.get("id"), data.get("status")
            else:
                record.error = f"status {status}"
        except Exception as exc:  # noqa: BLE001 - counted, reported
            record.error = type(exc).__name__

    for n in range(1, total + 1):
        scheduled = start + (n - 1) / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = lead_body(slot, n)
        now = time.perf_counter()
        phase.max_lag = max(phase.max_lag, now - scheduled)
        record = Sent(scheduled=scheduled, sent=now)
        phase.sends.append(record)
        phase.tasks.append(asyncio.create_task(one(record, body)))
    return phase


async def _measure(
    stack: IntakeStack, rate: float, seconds: float, warmup: float, grace: float
) -> dict[str, Any]:
    import nats

    arrivals: dict[str, float] = {}
    duplicates = 0
    arrived = asyncio.Event()  # set on every new arrival

    async def on_routed(msg: Any) -> None:
        nonlocal duplicates
        now = time.perf_counter()
        try:
            lead_id = json.loads(msg.data)["data"]["lead_id"]
        except (ValueError, KeyError, TypeError):
            return
        if lead_id in arrivals:
            duplicates += 1
        else:
            arrivals[lead_id] = now
            arrived.set()

    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(SUBJECT, ordered_consumer=True, cb=on_routed)
        client = RawJsonClient(stack.url("/v1/leads"), stack.submitter)
        try:
            if warmup > 0:
                w = await _open_loop(client, WARMUP_SLOT, rate, warmup)
                if w.tasks:
                    await asyncio.wait(w.tasks, timeout=REQUEST_TIMEOUT_S)
            t0 = time.perf_counter()
            phase = await _open_loop(client, MEASURED_SLOT, rate, seconds)
            last_send = time.perf_counter()
            # Answers may take long when the service falls behind: bounded by the timeout.
            if phase.tasks:
                await asyncio.wait(phase.tasks, timeout=REQUEST_TIMEOUT_S + 5)
            for task in phase.tasks:
                task.cancel()
            answered_by = time.perf_counter()
            # Each routed lead has `grace` seconds from its POST to show up.
            routed = [s for s in phase.sends if s.status == "routed" and s.lead_id]
            deadline = max([s.sent + grace for s in routed], default=answered_by)
            while any(s.lead_id not in arrivals for s in routed):
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), timeout=remaining)
                except TimeoutError:
                    break
        finally:
            await client.close()
        await sub.unsubscribe()
    finally:
        await nc.close()

    sends = phase.sends
    latencies = []
    missing = 0
    for s in routed:
        arrived = arrivals.get(s.lead_id)  # type: ignore[arg-type]
        if arrived is None or arrived - s.sent > grace:
            missing += 1
        else:
            latencies.append((arrived - s.sent) * 1000)
    answered = [s for s in sends if s.answered is not None and s.error is None]
    http_ms = [(s.answered - s.sent) * 1000 for s in answered]  # type: ignore[operator]
    errors: dict[str, int] = {}
    for s in sends:
        if s.error is not None:
            errors[s.error] = errors.get(s.error, 0) + 1
        elif s.answered is None:
            errors["unanswered"] = errors.get("unanswered", 0) + 1
    statuses: dict[str, int] = {}
    for s in answered:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    send_span = max(sends[-1].sent - sends[0].sent, 1e-9) if len(sends) > 1 else seconds
    return {
        "sent": len(sends),
        "sent_rate": (len(sends) - 1) / send_span if len(sends) > 1 else 0.0,
        "answered_rate": len(answered) / max(answered_by - t0, 1e-9),
        "answered": len(answered),
        "statuses": statuses,
        "errors": errors,
        "routed": len(routed),
        "missing": missing,
        "latencies": latencies,
        "http_ms": http_ms,
        "max_lag_ms": phase.max_lag * 1000,
        "duplicate_events": duplicates,
        "last_send": last_send - t0,
    }


@contextlib.contextmanager
def _without_collector_pauses() -> Iterator[None]:
    """The generator's own garbage collections paused it for up to ~200 ms (measured with
    gc.callbacks), and every answer and event arriving meanwhile was stamped late: the tail
    of the figures was partly the generator's. Reference counting still frees what it sends
    and receives; the few cycles wait for the end of the run."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def run(ctx: Context) -> list[Figure]:
    rate = float(ctx.options.get("intake_latency.rate", 200))
    seconds = float(
        ctx.options.get("intake_latency.seconds", 15 if ctx.duration >= 10 else ctx.duration)
    )
    grace = float(ctx.options.get("intake_latency.grace", 5))
    workers = int(ctx.options.get("intake_latency.workers", 1))
    with IntakeStack("latency", workers=workers) as stack:
        stack.setup_routing()
        stack.probe()
        try:
            import uvloop

            runner: Any = uvloop.run
        except ImportError:
            runner = asyncio.run
        with _without_collector_pauses():
            m = runner(_measure(stack, rate, seconds, ctx.warmup, grace))
        checks = stack.checks()

    lat = m["latencies"]
    errors = ", ".join(f"{k}={v}" for k, v in sorted(m["errors"].items()))
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(m["statuses"].items()))
    how = (
        f"open loop {rate:g}/s for {seconds:g}s after {ctx.warmup:g}s warm-up, "
        "raw keep-alive client, "
        f"POST sent -> {SUBJECT} received (JetStream ordered consumer); "
        f"{len(lat)} of {m['routed']} routed leads"
    )
    if m["errors"]:
        how += f"; ERRORS: {errors}"
    if m["answered_rate"] < 0.9 * m["sent_rate"]:
        how += (
            f"; OVERLOADED: answered {m['answered_rate']:.0f}/s of {m['sent_rate']:.0f}/s sent, "
            "so these are queueing times (and the generator competes for the CPU)"
        )
    return [
        Figure("routed_latency_p50", _pct(lat, 50), "ms", how),
        Figure("routed_latency_p95", _pct(lat, 95), "ms", ""),
        Figure("routed_latency_p99", _pct(lat, 99), "ms", "target <= 50 ms (issue 4)"),
        Figure("routed_latency_max", max(lat) if lat else float("nan"), "ms", ""),
        Figure(
            "intake_latency_sent_rate",
            m["sent_rate"],
            "leads/s",
            f"{m['sent']} POSTs; generator at worst {m['max_lag_ms']:.1f} ms late",
        ),
        Figure(
            "intake_latency_answered_rate",
            m["answered_rate"],
            "leads/s",
            f"{m['answered']} answered 2xx ({statuses}) until the last answer; "
            f"HTTP p50 {_pct(m['http_ms'], 50):.1f} ms, p99 {_pct(m['http_ms'], 99):.1f} ms",
        ),
        Figure(
            "routed_missing_after_grace",
            float(m["missing"]),
            "leads",
            f"routed leads without a lead.routed within {grace:g}s of the POST; "
            f"{m['duplicate_events']} repeated events; errors: {errors or 'none'}",
        ),
        Figure("intake_latency_leads_in_db", float(checks.leads), "leads", checks.summary()),
    ]
