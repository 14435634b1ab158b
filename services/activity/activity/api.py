"""HTTP routes of activity: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from activity import capture, rules, service
from activity.context import activity_context, context_of
from activity.schemas import (
    ActivityIn,
    ActivityOut,
    LeadStageOut,
    MissingDeliverable,
    StageChangeIn,
    StageChangeOut,
    TimelinePage,
)
from salesrail.auth import Principal, Role, require_roles
from salesrail.http.app import runtime_of
from salesrail.http.cursors import decode_cursor
from salesrail.http.json_body import DocumentedHeader, JsonBody
from salesrail.http.problems import ProblemError

router = APIRouter(lifespan=activity_context)

Reader = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.REP, Role.SUPERVISOR, Role.OPS, Role.PRESALES, Role.AFTER_SALES, Role.FINANCE
        )
    ),
]
# Who may act on a lead (and admin); which leads is decided per lead (rules.may_act).
_may_act = require_roles(Role.REP, Role.SUPERVISOR)
Actor = Annotated[Principal, Depends(_may_act)]
# The busiest route reads its body itself (see salesrail.http.json_body).
_ACTIVITY_BODY = JsonBody(
    ActivityIn,
    headers=[
        DocumentedHeader(
            "Idempotency-Key",
            "The caller's own key for this activity: sent again with the same request, "
            "answers the first result (200) and stores nothing new",
            min_length=1,
        )
    ],
)

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "The caller's role may not do this (e.g. override)"},
    404: {"description": "No such lead, or not one the caller may act on"},
    409: {"description": "The lead's stage changed meanwhile, or is already the target"},
    422: {"description": "Invalid, or missing what the rules require (each item named)"},
}


@router.get(
    "/leads/{lead_id}/stage", response_model=LeadStageOut, summary="A lead's stage", tags=["stages"]
)
async def read_stage(lead_id: str, request: Request, caller: Reader) -> LeadStageOut:
    lead = await service.get_lead(unit_of_work=runtime_of(request).unit_of_work, lead_id=lead_id)
    if lead is None or not rules.may_see(caller, lead.owner_id):
        raise ProblemError(404, f"no lead {lead_id}")
    return LeadStageOut.model_validate(lead, from_attributes=True)


@router.post(
    "/activities",
    status_code=201,
    response_model=ActivityOut,
    summary="Log an activity on a lead; refused (422) when it lacks what its type requires",
    responses={
        200: {
            "model": ActivityOut,
            "description": "A retry (same Idempotency-Key, same request): the first result; "
            "nothing new is stored or published",
        },
        **_PROBLEMS,
        422: {
            "description": "Invalid, or missing what the rules require (each item named), or "
            "an Idempotency-Key already used by the caller for a different activity"
        },
    },
    tags=["activities"],
    openapi_extra=_ACTIVITY_BODY.openapi(),
)
@_ACTIVITY_BODY.documents
async def log_activity(request: Request) -> Response:
    caller = await _may_act(request)
    body = await _ACTIVITY_BODY.read(request)
    context = context_of(request)
    submission = capture.prepare(
        body,
        caller,
        requirements=context.rulebook.requirements,
        now=runtime_of(request).clock.now(),
        idempotency_key=_ACTIVITY_BODY.header(request, "Idempotency-Key"),
    )
    logged = await context.capture.log(submission)
    row = logged.row
    answer = ActivityOut(
        id=row["activity_id"],
        lead_id=row["lead_id"],
        rep_id=row["rep_id"],
        type=row["type"],
        occurred_at=row["occurred_at"],
        logged_at=row["logged_at"],
        on_time=row["on_time"],
        flags=row["flags"],
        facts=row["facts"],
        missing_facts=row["missing_facts"],
        key_people=row["key_people"],
        attachments=row["attachments"],
        tech_env_change=row["tech_env_change"],
        overridden=row["overridden"],
        stage=logged.stage,
        key_people_covered=logged.key_people_covered,
        proposal_completion=logged.proposal_completion,
        first_contact=logged.first_contact,
    )
    # Serialised once, here: `response_model` documents it.
    return Response(
        answer.model_dump_json(),
        status_code=201 if logged.created else 200,
        media_type="application/json",
    )


@router.post(
    "/leads/{lead_id}/stage",
    response_model=StageChangeOut,
    summary="Move a lead to another stage; 422 names the deliverables its gate misses",
    responses=_PROBLEMS,
    tags=["stages"],
)
async def move_stage(
    lead_id: str, body: StageChangeIn, request: Request, caller: Actor
) -> StageChangeOut:
    change, missing = await service.change_stage(
        unit_of_work=runtime_of(request).unit_of_work,
        rulebook=context_of(request).rulebook,
        caller=caller,
        lead_id=lead_id,
        request=body,
    )
    return StageChangeOut(
        lead_id=change.lead_id,
        from_stage=change.from_stage,
        to_stage=change.to_stage,
        by=change.by,
        reason=change.reason,
        overridden=change.overridden,
        missing=[
            MissingDeliverable(
                stage=m.stage, check=m.check.name, field=m.field, message=m.check.message
            )
            for m in missing
        ],
        changed_at=change.occurred_at,
    )


@router.get(
    "/leads/{lead_id}/timeline",
    response_model=TimelinePage,
    summary="A lead's activities, stage changes and overrides, newest first, a page at a time",
    responses={404: _PROBLEMS[404], 422: {"description": "A cursor this service did not give"}},
    tags=["timeline"],
)
async def read_timeline(
    lead_id: str,
    request: Request,
    caller: Reader,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> TimelinePage:
    after = decode_cursor(cursor) if cursor else None
    page = await service.read_timeline(
        unit_of_work=runtime_of(request).unit_of_work,
        caller=caller,
        lead_id=lead_id,
        after=after,
        limit=limit or context_of(request).settings.timeline_page_size,
    )
    return TimelinePage.model_validate(
        {"lead_id": lead_id, "items": page.items, "next_cursor": page.next_cursor}
    )
