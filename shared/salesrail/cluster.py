"""The services that make up a Salesrail cluster, with their default ports (contract.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    port: int
    summary: str

    @property
    def env_prefix(self) -> str:
        return f"SALESRAIL_{self.module.upper()}_"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "lead-router", "lead_router", 8001, "leads, routing and scoring rules, public pool"
    ),
    ServiceSpec("activity", "activity", 8002, "activities, attachments, stages and gates"),
    ServiceSpec("sla-monitor", "sla_monitor", 8003, "SLA policies, clocks, alerts, escalations"),
    ServiceSpec("collab", "collab", 8004, "collaboration tickets, customer 360"),
    ServiceSpec("metrics", "metrics", 8005, "KPIs, funnels, role dashboards"),
)
