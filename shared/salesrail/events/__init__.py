"""The public event contract: envelope, typed payloads per subject, subjects and streams."""

from salesrail.events.catalog import EventData, data_model_for, event_types
from salesrail.events.envelope import SUBJECT_PREFIX, Envelope, new_event_id, subject_of

__all__ = [
    "SUBJECT_PREFIX",
    "Envelope",
    "EventData",
    "data_model_for",
    "event_types",
    "new_event_id",
    "subject_of",
]
