"""The HTTP shapes of lead-router (contract.md, "Lead intake")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from lead_router.rules import InvalidPhone, normalise_phone
from salesrail.notify import ChannelConfig, ChannelList, redacted_sealed
from salesrail.notify.sealing import is_sealed

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Id = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$"
    ),
]
Grade = Literal["A", "B", "C"]
Status = Literal["routed", "pooled", "duplicate", "pending"]


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
    email: (
        Annotated[Text, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
        | None
    ) = None
    budget: Annotated[float, Field(ge=0, le=1e12)] | None = None
    purchase_timeframe: Annotated[Text, StringConstraints(max_length=100)] | None = None
    notes: Annotated[str, StringConstraints(max_length=4000)] | None = None
    tags: Annotated[
        list[Annotated[Text, StringConstraints(max_length=64)]], Field(max_length=50)
    ] = []
    received_at: AwareDatetime | None = None

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        try:
            return normalise_phone(value)
        except InvalidPhone as exc:
            raise ValueError(str(exc)) from exc


class HistoryEntry(BaseModel):
    at: datetime
    kind: str
    by: str
    detail: dict[str, Any]


class LeadOut(BaseModel):
    id: str
    status: Status
    owner_id: str | None
    team_id: str | None = None
    score: int | None
    grade: Grade | None
    qualified: bool | None = None
    route: str
    route_rule: str | None = None
    duplicate_of: str | None = None
    source: str
    external_id: str | None
    company_name: str
    contact_name: str
    phone: str
    email: str | None
    city: str
    city_name: str | None = None
    province: str | None = None
    category: str
    budget: float | None
    purchase_timeframe: str | None
    notes: str | None
    tags: list[str]
    score_reasons: list[dict[str, Any]] = []
    enrichment: dict[str, Any] = {}
    enrichment_status: str = "pending"
    rules_version: int | None = None
    received_at: datetime
    created_at: datetime
    assigned_at: datetime | None = None
    history: list[HistoryEntry] | None = None


# Who else a notification may be addressed to: "trainer", "sales_director", "ops_support"...
RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
RoleList = Annotated[list[RoleName], Field(max_length=20)]


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, StringConstraints(max_length=100)]
    supervisor_id: Id | None = None
    channels: ChannelList = []
    roles: RoleList = []


class TeamOut(BaseModel):
    id: str
    name: str
    supervisor_id: str | None
    channels: list[dict[str, Any]]  # redacted: no robot keys, no secrets
    roles: list[str]


class RepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, StringConstraints(max_length=100)]
    team_id: Id | None = None
    cities: Annotated[
        list[Annotated[Text, StringConstraints(max_length=64)]], Field(max_length=200)
    ] = []
    categories: Annotated[
        list[Annotated[Text, StringConstraints(max_length=64)]], Field(max_length=200)
    ] = []
    cap: Annotated[int, Field(ge=0, le=100000)] | None = None
    status: Literal["active", "away", "inactive"] = "active"
    channels: ChannelList = []
    roles: RoleList = []


class RepOut(BaseModel):
    id: str
    name: str
    team_id: str | None
    cities: list[str]
    categories: list[str]
    cap: int | None
    status: str
    open_leads: int
    channels: list[dict[str, Any]]  # redacted: no robot keys, no secrets
    roles: list[str]


class RulesIn(BaseModel):
    """The rule set as YAML text (a JSON body, so it travels through any client)."""

    model_config = ConfigDict(extra="forbid")
    yaml: Annotated[str, StringConstraints(min_length=1, max_length=2_000_000)]


class RulesOut(BaseModel):
    kind: str
    version: int
    yaml: str
    created_by: str
    created_at: datetime


class SimulateIn(LeadIn):
    """A lead body, plus optional facts routing may look at (grade, score) and a draft."""

    grade: Grade | None = None
    score: Annotated[int, Field(ge=0, le=100)] | None = None
    rules_yaml: str | None = None


class SimulateOut(BaseModel):
    rule: str | None
    assign: dict[str, Any]
    explanation: str
    candidates: list[str]
    rules_version: int | None
    city_name: str | None
    province: str | None
    score: int | None
    grade: str | None


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner_id: Id
    reason: Annotated[Text, StringConstraints(max_length=500)]


class Page(BaseModel):
    items: list[LeadOut]
    next_cursor: str | None


def redacted(channels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Channels for an API answer. One stored before today's checks, and failing them, is
    shown from its raw form (marked `invalid`) rather than failing the whole answer."""
    from pydantic import ValidationError

    answer = []
    for raw in channels or []:
        try:
            if isinstance(raw, dict) and is_sealed(raw.get("url")):
                answer.append(redacted_sealed(raw))  # never opened for an answer
            else:
                answer.append(ChannelConfig.model_validate(raw).redacted())
        except ValidationError as exc:
            answer.append(_invalid_channel(raw, exc))
    return answer


def _invalid_channel(raw: Any, exc: Exception) -> dict[str, Any]:
    """{id, type, url: scheme://host/…, secret: set|None, enabled, invalid: True}; logged
    without the input (a robot URL carries its key)."""
    import httpx
    import structlog
    from pydantic import ValidationError

    data = raw if isinstance(raw, dict) else {}
    channel_id, kind, enabled = data.get("id"), data.get("type"), data.get("enabled", True)
    url = None
    if isinstance(data.get("url"), str):
        try:
            parsed = httpx.URL(data["url"])
            if parsed.scheme and parsed.host:
                url = f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}/…"
        except Exception:  # not a URL at all
            url = None
    errors = (
        exc.errors(include_input=False, include_url=False, include_context=False)
        if isinstance(exc, ValidationError)
        else []
    )
    structlog.get_logger(__name__).warning(
        "channel.stored_invalid",
        channel_id=channel_id if isinstance(channel_id, str) else None,
        errors="; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
    )
    return {
        "id": channel_id if isinstance(channel_id, str) else None,
        "type": kind if isinstance(kind, str) else None,
        "url": url,
        "secret": "set" if data.get("secret") else None,
        "enabled": enabled if isinstance(enabled, bool) else None,
        "invalid": True,
    }


def team_out(team: Any) -> TeamOut:
    return TeamOut(
        id=team.id,
        name=team.name,
        supervisor_id=team.supervisor_id,
        channels=redacted(team.channels),
        roles=team.roles or [],
    )


def rep_out(rep: Any) -> RepOut:
    return RepOut(
        id=rep.id,
        name=rep.name,
        team_id=rep.team_id,
        cities=rep.cities,
        categories=rep.categories,
        cap=rep.cap,
        status=rep.status,
        open_leads=rep.open_leads,
        channels=redacted(rep.channels),
        roles=rep.roles or [],
    )
