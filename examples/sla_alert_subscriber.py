"""Listen to Salesrail's SLA alerts with a durable JetStream pull consumer (nats-py only).

    python examples/sla_alert_subscriber.py nats://127.0.0.1:4222 my-crm-sla-alerts

Every `salesrail.sla.alert.<rule>` message is the contract's envelope; `data` holds `rule`,
`lead_id` (`ticket_id` for tickets), `owner_id`, `due_at`, `fired_at`, `notify`, `severity`
and `alert_id`. The consumer is durable: stop it, start it again under the same name, and it
carries on where it left off. Acknowledge after your own work is done; a message you do not
acknowledge comes back. Each alert is fired once, but a re-delivery can bring it twice:
keep `alert_id` (or the envelope `id`) to drop a copy. Watch `salesrail.sla.alert_retracted`
too if you act on alerts: it names an alert that fired only because an answer arrived late.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

STREAM = "SALESRAIL_SLA"
SUBJECT = "salesrail.sla.alert.>"

Handler = Callable[[dict[str, Any]], Awaitable[None]]


async def listen(
    nats_url: str, durable: str, handle: Handler, *, stop_after: int | None = None
) -> int:
    """Hand each alert envelope to `handle`, then acknowledge it; returns how many were
    handled (when `stop_after` is given, once that many were)."""
    nc = await nats.connect(nats_url)
    handled = 0
    try:
        js = nc.jetstream()
        subscription = await js.pull_subscribe(
            SUBJECT,
            durable=durable,
            stream=STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=60,
            ),
        )
        while stop_after is None or handled < stop_after:
            try:
                messages = await subscription.fetch(10, timeout=5)
            except NatsTimeout:
                continue
            for message in messages:
                await handle(json.loads(message.data))
                await message.ack()
                handled += 1
    finally:
        await nc.drain()
    return handled


async def _print(envelope: dict[str, Any]) -> None:
    data = envelope["data"]
    print(
        f"{data['rule']}: lead {data.get('lead_id')} owner {data.get('owner_id')} "
        f"due {data['due_at']} ({data['severity']}) -> {', '.join(data.get('notify', []))}"
    )


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222"
    name = sys.argv[2] if len(sys.argv) > 2 else "example-sla-alerts"
    asyncio.run(listen(url, name, _print))
