"""The HTTP shapes of activity (contract.md, "Activity")."""

from __future__ import annotations

from pydantic import BaseModel

from activity.rules import Stage


class LeadStageOut(BaseModel):
    lead_id: str
    stage: Stage
    owner_id: str | None
    company_name: str
