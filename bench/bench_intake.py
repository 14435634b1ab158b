"""Lead intake: POST /v1/leads on lead-router (real NATS + PostgreSQL), every request a new lead.

The whole path of issue 4: validate, dedup, offline enrichment, score, route (a city rule with
round robin over 4 reps; 1 lead in 10 has no rule and goes to the pool), persist, outbox.
Afterwards the leads in the database and the messages in SALESRAIL_LEAD are counted.
"""

from __future__ import annotations

from bench import Context, Figure
from bench.intake_stack import LEADS, IntakeStack
from bench.load import run_load

NAME = "intake"
REQUIRES = ("yardstick",)


def run(ctx: Context) -> list[Figure]:
    concurrency = int(ctx.options.get("intake.concurrency", ctx.concurrency))
    workers = int(ctx.options.get("intake.workers", 1))
    with IntakeStack("intake", workers=workers) as stack:
        stack.setup_routing()
        probes = len(stack.probe())
        r = run_load(
            stack.url("/v1/leads"),
            method="POST",
            varying_body=LEADS,
            headers=stack.submitter,
            concurrency=concurrency,
            duration=ctx.duration,
            warmup=ctx.warmup,
            generator=ctx.generator,
        )
        checks = stack.checks()
        description = stack.server.description if stack.server else "lead-router"

    sent_ok = r.requests + (r.warmup_requests or 0) + probes
    consistency = (
        f"2xx seen by the generator {sent_ok} (warm-up {r.warmup_requests}, measured "
        f"{r.requests}, probes {probes}; requests cut off when the generator stops may still "
        "commit)"
    )
    problems = []
    duplicates = checks.by_status.get("duplicate", 0)
    if duplicates:
        problems.append(f"{duplicates} leads marked duplicate (generator not unique?)")
    if checks.leads < sent_ok:
        problems.append(f"fewer leads in the DB ({checks.leads}) than 2xx answers ({sent_ok})")
    if checks.distinct_phones != checks.leads:
        problems.append("phone numbers repeat")
    if checks.outbox_unsent:
        problems.append(f"outbox still has {checks.outbox_unsent} unsent after 30 s")
    expected_msgs = checks.leads * 2  # lead.received + lead.routed or lead.pooled
    if checks.stream_messages != expected_msgs:
        problems.append(f"stream holds {checks.stream_messages} msgs, expected {expected_msgs}")
    check_note = checks.summary() + f"; {consistency}"
    if problems:
        check_note += "; CHECK FAILED: " + "; ".join(problems)

    note = f"{r.note}, warmup {ctx.warmup:g}s, {description}, new lead per request"
    return [
        Figure("intake_rps", r.rps, "req/s", note),
        ctx.ratio_to_yardstick("intake_ratio_to_yardstick", r.rps, r.note),
        Figure("intake_p50", r.p50_ms, "ms", r.generator),
        Figure("intake_p99", r.p99_ms, "ms", f"{r.generator}; max {r.max_ms:.1f} ms"),
        Figure(
            "intake_non2xx_or_errors",
            float(r.errors),
            "requests",
            ", ".join(f"{k}={v}" for k, v in sorted(r.error_kinds.items())) or "none",
        ),
        Figure("intake_leads_in_db", float(checks.leads), "leads", check_note),
        Figure(
            "intake_lead_stream_msgs",
            float(checks.stream_messages),
            "msgs",
            f"SALESRAIL_LEAD after the outbox drained; expected 2 per lead ({expected_msgs})",
        ),
    ]
