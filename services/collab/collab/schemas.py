"""The HTTP shapes of collab."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from collab.rules import TicketKind, TicketStatus

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class TicketIn(BaseModel):
    """A request for another role's help. Unknown fields are refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid")

    kind: TicketKind
    lead_id: Annotated[Text, StringConstraints(max_length=128)] | None = None
    title: Annotated[Text, StringConstraints(max_length=200)]
    details: Annotated[str, StringConstraints(max_length=4000)] | None = None


class TicketOut(BaseModel):
    id: str
    kind: TicketKind
    lead_id: str | None
    title: str
    details: str | None
    status: TicketStatus
    assignee_role: str
    requested_by: str
    opened_at: datetime
