"""metrics settings (`SALESRAIL_METRICS_*` overrides `SALESRAIL_*`)."""

from typing import ClassVar

from salesrail.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "metrics"
    default_port: ClassVar[int] = 8005
