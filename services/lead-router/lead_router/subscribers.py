"""Bus handlers of lead-router: SLA alerts it acts on, and notification delivery."""

from __future__ import annotations

from lead_router import pool
from lead_router.config import Settings
from lead_router.notifications import notification_consumers
from salesrail.bus.consumer import EventConsumer
from salesrail.events.catalog import SlaAlert
from salesrail.events.envelope import Envelope
from salesrail.events.streams import SLA_STREAM
from salesrail.unit_of_work import UnitOfWork

sla_alerts = EventConsumer(
    name="lead-router-sla",
    stream=SLA_STREAM,
    filter_subject="salesrail.sla.alert.untouched_72h",
    description="Releases leads nobody touched for 72 h to the pool and routes them again",
)


@sla_alerts.on("sla.alert.untouched_72h")
async def release_untouched_lead(uow: UnitOfWork, _envelope: Envelope, alert: SlaAlert) -> None:
    if alert.lead_id is None:
        return
    await pool.release_untouched(
        uow,
        context=uow.context,
        lead_id=alert.lead_id,
        owner_id=alert.owner_id,
        reason="untouched for 72 h (salesrail.sla.alert.untouched_72h)",
    )


def consumers(settings: Settings) -> tuple[EventConsumer, ...]:
    """The SLA consumer, and notification delivery configured by the settings."""
    return (sla_alerts, *notification_consumers(settings))
