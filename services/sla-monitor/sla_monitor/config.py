"""sla-monitor settings (`SALESRAIL_SLA_MONITOR_*` overrides `SALESRAIL_*`)."""

from typing import ClassVar

from salesrail.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "sla-monitor"
    default_port: ClassVar[int] = 8003

    # Due clocks fired per transaction.
    fire_batch_size: int = 1000
    # Events moved per transaction, at most: a batch costs a dozen statements whatever its
    # size, and a busy stream's clocks were created at ~3 k/s in batches of 100 against
    # ~5.7 k/s in batches of 500 (bench sla_clocks). A quiet stream still gets each event
    # at once: a fetch hands over what has arrived without waiting for a full batch.
    consumer_batch_size: int = 500
    # The scheduler sleeps until the next deadline, but looks again at least this often
    # (clocks another replica committed; its own wake-ups cover this replica's).
    scheduler_max_sleep_s: float = 5.0
    # /readyz fails the scheduler check when it has not looked again this long after it
    # meant to (its task died or is stuck).
    scheduler_stall_s: float = 60.0
