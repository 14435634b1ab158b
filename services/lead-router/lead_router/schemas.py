"""The HTTP shapes of lead-router (contract.md, "Lead intake")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class LeadIn(BaseModel):
    """A lead as a marketing system sends it. Unknown fields are refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid")

    source: Annotated[Text, StringConstraints(max_length=64)]
    company_name: Annotated[Text, StringConstraints(max_length=200)]
    contact_name: Annotated[Text, StringConstraints(max_length=100)]
    phone: Annotated[Text, StringConstraints(max_length=32)]
    city: Annotated[Text, StringConstraints(max_length=64)]
    category: Annotated[Text, StringConstraints(max_length=64)]
    external_id: Annotated[Text, StringConstraints(max_length=128)] | None = None
    email: Annotated[Text, StringConstraints(max_length=254)] | None = None
    budget: Annotated[float, Field(ge=0, le=1e12)] | None = None
    purchase_timeframe: Annotated[Text, StringConstraints(max_length=100)] | None = None
    notes: Annotated[str, StringConstraints(max_length=4000)] | None = None
    tags: Annotated[list[Annotated[Text, StringConstraints(max_length=64)]], Field(max_length=50)] = []
    received_at: AwareDatetime | None = None


class LeadOut(BaseModel):
    id: str
    status: Literal["routed", "pooled", "duplicate", "pending"]
    owner_id: str | None
    score: int | None
    grade: Literal["A", "B", "C"] | None
    route: str
    source: str
    external_id: str | None
    company_name: str
    contact_name: str
    phone: str
    email: str | None
    city: str
    category: str
    budget: float | None
    purchase_timeframe: str | None
    notes: str | None
    tags: list[str]
    received_at: datetime
    created_at: datetime
