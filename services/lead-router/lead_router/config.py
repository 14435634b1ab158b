"""lead-router settings (`SALESRAIL_LEAD_ROUTER_*` overrides `SALESRAIL_*`)."""

from typing import ClassVar

from salesrail.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "lead-router"
    default_port: ClassVar[int] = 8001
