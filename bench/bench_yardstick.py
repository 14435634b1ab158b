"""Yardstick: a bare FastAPI POST (pydantic lead body) on one uvicorn worker.

Every service benchmark divides its throughput by ``bare_fastapi_post_rps`` measured in the same
run, so that the figures compare across machines and across load generators.
"""

from __future__ import annotations

import json
import urllib.request

from bench import Context, Figure
from bench.load import run_load
from bench.servers import start_uvicorn
from bench.yardstick_app import SAMPLE_LEAD

NAME = "yardstick"
REQUIRES: tuple[str, ...] = ()

APP = "bench.yardstick_app:app"
PATH = "/leads"


def _check(url: str) -> None:
    """One real POST first: a 422 under load would otherwise only show as errors."""
    req = urllib.request.Request(
        url,
        data=json.dumps(SAMPLE_LEAD).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        body = json.loads(resp.read())
    if resp.status != 200 or body.get("accepted") is not True:
        raise RuntimeError(f"yardstick answered {resp.status}: {body}")


def run(ctx: Context) -> list[Figure]:
    concurrency = int(ctx.options.get("yardstick.concurrency", ctx.concurrency))
    with start_uvicorn(APP) as server:
        _check(server.url(PATH))
        r = run_load(
            server.url(PATH),
            method="POST",
            body=SAMPLE_LEAD,
            concurrency=concurrency,
            duration=ctx.duration,
            warmup=ctx.warmup,
            generator=ctx.generator,
        )
    note = f"{r.note}, warmup {ctx.warmup:g}s, {server.description}"
    return [
        Figure("bare_fastapi_post_rps", r.rps, "req/s", note),
        Figure("bare_fastapi_post_p50", r.p50_ms, "ms", r.generator),
        Figure("bare_fastapi_post_p99", r.p99_ms, "ms", r.generator),
    ]
