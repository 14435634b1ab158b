"""HTTP floor: the yardstick's POST through the Salesrail HTTP stack, with an empty handler.

``http_floor_ratio_to_yardstick`` is the most any `/v1/` route can score against the bare
FastAPI yardstick on this machine (middleware, problem handlers, JSON logging and bearer-token
authentication included; one uvicorn worker): a service's ratio is this one times the share
its own work leaves.
"""

from __future__ import annotations

import httpx

from bench import Context, Figure
from bench.load import run_load
from bench.servers import start_uvicorn
from bench.yardstick_app import SAMPLE_LEAD

NAME = "http_floor"
REQUIRES: tuple[str, ...] = ("yardstick",)


def run(ctx: Context) -> list[Figure]:
    from bench.http_floor_app import bearer_token

    concurrency = int(ctx.options.get("http_floor.concurrency", ctx.concurrency))
    headers = {"Authorization": f"Bearer {bearer_token()}"}
    with start_uvicorn("bench.http_floor_app:app", ready_path="/openapi.json") as server:
        probe = httpx.post(server.url("/v1/leads"), json=SAMPLE_LEAD, headers=headers)
        if probe.status_code != 201:
            raise RuntimeError(f"the probe answered {probe.status_code}: {probe.text}")
        r = run_load(
            server.url("/v1/leads"),
            method="POST",
            body=SAMPLE_LEAD,
            headers=headers,
            concurrency=concurrency,
            duration=ctx.duration,
            warmup=ctx.warmup,
            generator=ctx.generator,
        )
    note = f"{r.note}, warmup {ctx.warmup:g}s, {server.description}"
    return [
        Figure("http_floor_rps", r.rps, "req/s", note),
        ctx.ratio_to_yardstick("http_floor_ratio_to_yardstick", r.rps, r.note),
        Figure("http_floor_p99", r.p99_ms, "ms", r.generator),
    ]
