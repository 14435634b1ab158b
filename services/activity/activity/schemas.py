"""The HTTP shapes of activity (contract.md, "Activity")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from activity.rules import Stage

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class LeadStageOut(BaseModel):
    lead_id: str
    stage: Stage
    owner_id: str | None
    company_name: str | None  # None until lead-router's announcement of the lead arrives


class ActivityIn(BaseModel):
    """An activity; what its type requires is in rules/activity_requirements.yaml."""

    lead_id: Id
    rep_id: Id
    type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    occurred_at: AwareDatetime
    summary: Annotated[str | None, Field(max_length=4000)] = None
    transcript: Annotated[str | None, Field(max_length=20000)] = None  # the voice memo's text
    minutes: Annotated[str | None, Field(max_length=20000)] = None
    attachments: Annotated[list[Id], Field(max_length=50)] = Field(default_factory=list)
    # Quote checklist: each item answered true or false (not "yes", not null).
    checklist: Annotated[dict[Name, StrictBool | None], Field(max_length=50)] = Field(
        default_factory=dict
    )
    party_name: Annotated[str | None, Field(max_length=200)] = None  # read from the contract
    contacts: Annotated[list[Name], Field(max_length=50)] = Field(default_factory=list)
    decision_maker: Annotated[str | None, Field(max_length=100)] = None
    tech_env_change: StrictBool = False
    # A supervisor (or admin) accepting what the rules refuse, and why.
    override_reason: Annotated[str | None, Field(max_length=1000)] = None

    _blanks = field_validator(
        "summary",
        "transcript",
        "minutes",
        "party_name",
        "decision_maker",
        "override_reason",
        mode="before",
    )(_blank_is_none)


class Flag(BaseModel):
    code: str  # late | photo_far_from_activity | missing_memo_facts | overridden
    message: str
    attachment_id: str | None = None


class ActivityOut(BaseModel):
    id: str
    lead_id: str
    rep_id: str
    type: str
    occurred_at: datetime
    logged_at: datetime
    on_time: bool | None
    flags: list[Flag]
    facts: dict[str, Any]
    missing_facts: list[str]
    key_people: list[str]
    attachments: list[str]
    tech_env_change: bool
    overridden: bool
    # The lead after this activity.
    stage: str
    key_people_covered: int
    proposal_completion: float | None
    first_contact: bool


class StageChangeIn(BaseModel):
    to: Stage
    reason: Annotated[str | None, Field(max_length=1000)] = None
    override: StrictBool = False  # a supervisor passing a gate that is not met (needs a reason)

    _blanks = field_validator("reason", mode="before")(_blank_is_none)


class MissingDeliverable(BaseModel):
    stage: str
    check: str
    field: str
    message: str


class StageChangeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    lead_id: str
    from_stage: str = Field(alias="from")
    to_stage: str = Field(alias="to")
    by: str
    reason: str | None
    overridden: bool
    missing: list[MissingDeliverable]  # what an override passed over
    changed_at: datetime


# --- timeline ----------------------------------------------------------------------------


class ActivityItem(BaseModel):
    kind: Literal["activity"] = "activity"
    id: str
    occurred_at: datetime
    type: str
    rep_id: str
    logged_at: datetime
    on_time: bool | None
    summary: str | None
    transcript: str | None
    details: dict[str, Any]
    facts: dict[str, Any]
    missing_facts: list[str]
    key_people: list[str]
    flags: list[Flag]
    attachments: list[str]
    tech_env_change: bool
    overridden: bool


class StageChangeItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    kind: Literal["stage_change"] = "stage_change"
    id: str
    occurred_at: datetime
    from_stage: str = Field(alias="from")
    to_stage: str = Field(alias="to")
    by: str
    reason: str | None
    overridden: bool


class OverrideItem(BaseModel):
    kind: Literal["override"] = "override"
    id: str
    occurred_at: datetime
    scope: str  # stage_gate | activity
    subject_id: str
    missing: list[dict[str, Any]]
    reason: str
    by: str
    role: str


TimelineItem = Annotated[ActivityItem | StageChangeItem | OverrideItem, Field(discriminator="kind")]


class TimelinePage(BaseModel):
    lead_id: str
    items: list[TimelineItem]
    next_cursor: str | None  # pass as `cursor` for the next (older) page; None: no more
