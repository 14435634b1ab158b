"""activity settings (`SALESRAIL_ACTIVITY_*` overrides `SALESRAIL_*`)."""

from typing import ClassVar

from salesrail.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "activity"
    default_port: ClassVar[int] = 8002
