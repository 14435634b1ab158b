"""sla-monitor settings (`SALESRAIL_SLA_MONITOR_*` overrides `SALESRAIL_*`)."""

from typing import ClassVar

from salesrail.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "sla-monitor"
    default_port: ClassVar[int] = 8003
