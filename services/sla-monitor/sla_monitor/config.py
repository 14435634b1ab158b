"""sla-monitor settings (`SALESRAIL_SLA_MONITOR_*` overrides `SALESRAIL_*`)."""

from typing import ClassVar

from salesrail.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "sla-monitor"
    default_port: ClassVar[int] = 8003

    # Due clocks fired per transaction.
    fire_batch_size: int = 1000
    # The scheduler sleeps until the next deadline, but looks again at least this often
    # (clocks another replica committed; its own wake-ups cover this replica's).
    scheduler_max_sleep_s: float = 5.0
    # /readyz fails the scheduler check when it has not looked again this long after it
    # meant to (its task died or is stuck).
    scheduler_stall_s: float = 60.0
