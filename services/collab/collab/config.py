"""collab settings (`SALESRAIL_COLLAB_*` overrides `SALESRAIL_*`)."""

from typing import ClassVar

from salesrail.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "collab"
    default_port: ClassVar[int] = 8004
