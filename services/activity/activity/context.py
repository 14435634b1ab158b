"""activity's own context: its rules, compiled once, the activity group commit and the
attachment sweeper.

Started by the lifespan of activity's router, which FastAPI nests inside the service's own
lifespan: the database and bus are up before it starts, and it stops (applying what is
queued) before they close.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

from fastapi import FastAPI, Request

from activity.attachments.sweeper import AttachmentSweeper
from activity.capture import Capture
from activity.config import Settings
from activity.memo import default_memo_patterns
from activity.rulebook import DEFAULT_DIR, Rulebook, load_rulebook
from activity.tech_env import default_tech_env_phrases
from salesrail.rules_engine import rule_engine
from salesrail.runtime import ServiceRuntime
from salesrail.text import regions


@dataclass(frozen=True)
class ActivityContext:
    settings: Settings
    rulebook: Rulebook
    capture: Capture
    sweeper: AttachmentSweeper


@asynccontextmanager
async def activity_context(app: FastAPI) -> AsyncIterator[None]:
    runtime: ServiceRuntime = app.state.runtime
    settings = cast(Settings, runtime.settings)
    rulebook = load_rulebook(settings.rules_dir or DEFAULT_DIR, engine=rule_engine())
    # Load what the first request would otherwise wait for (and stop now if a file is bad):
    # the place-name index of contract party checks, the memo and tech-env patterns.
    for warm_up in (regions.warm_up, default_memo_patterns, default_tech_env_phrases):
        await asyncio.to_thread(warm_up)
    capture = Capture(
        unit_of_work=runtime.unit_of_work,
        rulebook=rulebook,
        party_threshold=settings.party_name_threshold,
        max_batch=settings.group_commit_size,
        # SQLite holds one writer at a time: a second batch would only wait for the first.
        concurrency=1 if runtime.db.is_sqlite else settings.group_commit_concurrency,
    )
    capture.start()
    sweeper = AttachmentSweeper.from_settings(settings, unit_of_work=runtime.unit_of_work)
    sweeper.start()
    app.state.activity = ActivityContext(settings, rulebook, capture, sweeper)
    try:
        yield
    finally:
        await sweeper.stop()
        await capture.stop()


def context_of(request: Request) -> ActivityContext:
    return cast(ActivityContext, request.app.state.activity)
