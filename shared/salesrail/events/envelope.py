"""The envelope every message on the bus carries (contract.md, "Events on NATS")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SUBJECT_PREFIX = "salesrail."


def new_event_id() -> str:
    return str(uuid.uuid4())


def subject_of(event_type: str) -> str:
    return SUBJECT_PREFIX + event_type


class Envelope(BaseModel):
    """`type` is the subject without the `salesrail.` prefix; `data` is checked per type."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    source: str = Field(min_length=1, max_length=100)
    version: int = 1
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def subject(self) -> str:
        return subject_of(self.type)

    def occurred(self) -> datetime:
        return self.occurred_at
