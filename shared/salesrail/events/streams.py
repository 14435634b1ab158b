"""JetStream streams, one per domain, created idempotently when a service starts."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from salesrail.events.envelope import SUBJECT_PREFIX

_STREAM_NAME_IN_USE = 10058


@dataclass(frozen=True)
class StreamSpec:
    name: str
    domain: str
    description: str
    max_age_days: int = 30

    @property
    def subjects(self) -> list[str]:
        return [f"{SUBJECT_PREFIX}{self.domain}.>"]


LEAD_STREAM = StreamSpec(
    "SALESRAIL_LEAD", "lead", "Lead lifecycle: received, routed, pooled, owners, stages"
)
ACTIVITY_STREAM = StreamSpec("SALESRAIL_ACTIVITY", "activity", "Visits, calls, quotes, contracts")
COLLAB_STREAM = StreamSpec("SALESRAIL_COLLAB", "collab", "Collaboration ticket lifecycle")
SLA_STREAM = StreamSpec("SALESRAIL_SLA", "sla", "SLA warnings, alerts and retractions")
NOTIFY_STREAM = StreamSpec(
    "SALESRAIL_NOTIFY", "notify", "Messages for people through their channels"
)
DLQ_STREAM = StreamSpec(
    "SALESRAIL_DLQ",
    "dlq",
    "Messages a consumer could not process, with the reason",
    max_age_days=90,
)

STREAMS: tuple[StreamSpec, ...] = (
    LEAD_STREAM,
    ACTIVITY_STREAM,
    COLLAB_STREAM,
    SLA_STREAM,
    NOTIFY_STREAM,
    DLQ_STREAM,
)

DEAD_LETTER_PREFIX = f"{SUBJECT_PREFIX}dlq."


def stream_for_subject(subject: str) -> StreamSpec:
    for spec in STREAMS:
        if subject.startswith(f"{SUBJECT_PREFIX}{spec.domain}."):
            return spec
    raise LookupError(f"no stream holds subject {subject!r}")


def stream_config(
    spec: StreamSpec, *, duplicate_window_s: float, replicas: int = 1
) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=spec.subjects,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=spec.max_age_days * 86400.0,
        duplicate_window=duplicate_window_s,
        num_replicas=replicas,
    )


async def ensure_streams(
    js: JetStreamContext, *, duplicate_window_s: float, replicas: int = 1
) -> None:
    """Create every stream, or bring an existing one to this configuration."""
    for spec in STREAMS:
        config = stream_config(spec, duplicate_window_s=duplicate_window_s, replicas=replicas)
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:
                raise
            await js.update_stream(config)
