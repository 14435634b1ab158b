"""HTTP routes of lead-router: translate requests into use cases, nothing more."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from lead_router import access, directory, importing, pool, service
from lead_router.context import LeadRouterContext
from lead_router.models import Lead, LeadHistory, Rep
from lead_router.routing import assign
from lead_router.routing_rules import LeadFacts, RulesInvalid
from lead_router.rules import mask_phone
from lead_router.schemas import (
    HistoryEntry,
    LeadIn,
    LeadOut,
    Page,
    ReassignIn,
    RepIn,
    RepOut,
    RulesIn,
    RulesOut,
    SimulateIn,
    SimulateOut,
    TeamIn,
    TeamOut,
    rep_out,
    team_out,
)
from salesrail.auth import Principal, Role, require_roles
from salesrail.http.app import runtime_of
from salesrail.http.json_body import DocumentedHeader, JsonBody
from salesrail.http.problems import ProblemError
from salesrail.runtime import ServiceRuntime
from salesrail.unit_of_work import UnitOfWork

router = APIRouter()

Reader = Annotated[
    Principal, Depends(require_roles(Role.REP, Role.SUPERVISOR, Role.OPS, Role.INTEGRATION))
]
PoolReader = Annotated[Principal, Depends(require_roles(Role.REP, Role.SUPERVISOR, Role.OPS))]
Claimer = Annotated[Principal, Depends(require_roles(Role.REP))]
Supervisor = Annotated[Principal, Depends(require_roles(Role.SUPERVISOR))]
RulesReader = Annotated[Principal, Depends(require_roles(Role.OPS, Role.SUPERVISOR))]
RulesWriter = Annotated[Principal, Depends(require_roles(Role.OPS))]
DirectoryReader = Annotated[Principal, Depends(require_roles(Role.OPS, Role.SUPERVISOR))]
DirectoryWriter = Annotated[Principal, Depends(require_roles(Role.OPS))]
Importer = Annotated[Principal, Depends(require_roles(Role.INTEGRATION, Role.OPS, Role.SUPERVISOR))]


def _runtime(request: Request) -> ServiceRuntime:
    return runtime_of(request)


def _context(request: Request) -> LeadRouterContext:
    return runtime_of(request).context  # type: ignore[no-any-return]


async def _supervised(request: Request, caller: Principal) -> set[str]:
    if caller.role is not Role.SUPERVISOR:
        return set()
    async with _runtime(request).unit_of_work() as uow:
        return await directory.supervised_team_ids(uow, caller.subject)


def _present(lead: Lead, *, full_phone: bool, history: list[LeadHistory] | None = None) -> LeadOut:
    out = LeadOut.model_validate(lead, from_attributes=True)
    updates: dict[str, Any] = {}
    if not full_phone:
        updates["phone"] = mask_phone(lead.phone)
    if history is not None:
        updates["history"] = [HistoryEntry.model_validate(h, from_attributes=True) for h in history]
    return out.model_copy(update=updates)


# --- leads -------------------------------------------------------------------------------


# The busiest route reads its body itself (see salesrail.http.json_body).
_LEAD_BODY = JsonBody(
    LeadIn,
    headers=[
        DocumentedHeader(
            "Idempotency-Key",
            "The sender's own key for this lead: sent again, it answers the first result (200) "
            "and stores nothing new",
        )
    ],
)
_may_submit = require_roles(Role.INTEGRATION, Role.OPS, Role.SUPERVISOR, Role.REP)


@router.post(
    "/leads",
    response_model=LeadOut,
    status_code=201,
    responses={
        200: {"model": LeadOut, "description": "A replay: the first result, nothing new"},
        422: {
            "description": "Invalid (application/problem+json naming each field: body, or "
            "the Idempotency-Key header)"
        },
    },
    summary="Submit a lead (idempotent)",
    tags=["leads"],
    openapi_extra=_LEAD_BODY.openapi(),
)
@_LEAD_BODY.documents
async def submit_lead(request: Request) -> Response:
    caller = await _may_submit(request)
    lead_in = await _LEAD_BODY.read(request)
    intake = await service.receive_lead(
        unit_of_work=_runtime(request).unit_of_work,
        context=_context(request),
        lead_in=lead_in,
        caller=caller.subject,
        idempotency_key=_LEAD_BODY.header(request, "Idempotency-Key"),
    )
    # The sender sent the number itself; it sees it back as sent (normalised). The answer is
    # serialised here, once: `response_model` still documents it (and checks every other route).
    return Response(
        LeadOut.model_validate(intake.lead, from_attributes=True).model_dump_json(),
        status_code=201 if intake.created else 200,
        media_type="application/json",
    )


@router.get(
    "/leads/{lead_id}", response_model=LeadOut, summary="One lead, with its history", tags=["leads"]
)
async def read_lead(lead_id: str, request: Request, caller: Reader) -> LeadOut:
    found = await service.get_lead(unit_of_work=_runtime(request).unit_of_work, lead_id=lead_id)
    teams = await _supervised(request, caller)
    if found is None or not access.may_see(caller, found[0], supervised_teams=teams):
        raise ProblemError(404, f"no lead {lead_id}")
    lead, history = found
    full = access.sees_full_phone(caller, lead, supervised_teams=teams)
    return _present(lead, full_phone=full, history=history)


@router.post(
    "/leads/import",
    response_model=importing.ImportReport,
    summary="Import a CSV or .xlsx file of leads; each row is submitted as one lead",
    openapi_extra=importing.UPLOAD_OPENAPI,
    responses={
        413: {"description": "The file is too large"},
        422: {"description": "The file is unreadable or lacks required columns"},
    },
    tags=["leads"],
)
async def import_leads(request: Request, caller: Importer) -> importing.ImportReport:
    """Every row goes through intake; the report says per row what was created or refused."""
    return await importing.import_upload(request, caller)


# --- the public pool ---------------------------------------------------------------------


@router.get("/pool", response_model=Page, summary="Leads in the public pool", tags=["pool"])
async def read_pool(
    request: Request,
    caller: PoolReader,
    city: Annotated[str | None, Query(max_length=64)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    grade: Literal["A", "B", "C"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page:
    city_name = service.locate(city).city_name or city if city else None
    async with _runtime(request).unit_of_work() as uow:
        leads, next_cursor = await pool.list_pool(
            uow, city=city_name, category=category, grade=grade, limit=limit, cursor=cursor
        )
    full = caller.role is Role.ADMIN
    return Page(items=[_present(lead, full_phone=full) for lead in leads], next_cursor=next_cursor)


@router.post(
    "/leads/{lead_id}/claim",
    response_model=LeadOut,
    summary="Claim a pooled lead",
    responses={409: {"description": "Claimed by someone else first, or cap reached"}},
    tags=["pool"],
)
async def claim_lead(lead_id: str, request: Request, caller: Claimer) -> LeadOut:
    if caller.rep_id is None:
        raise ProblemError(403, "only a rep can claim a lead for themselves")
    async with _runtime(request).unit_of_work() as uow:
        lead = await pool.claim(uow, lead_id, rep_id=caller.rep_id)
    return _present(lead, full_phone=True)


@router.post(
    "/leads/{lead_id}/reassign",
    response_model=LeadOut,
    summary="Give a lead to another rep (supervisor, with a reason)",
    tags=["pool"],
)
async def reassign_lead(
    lead_id: str, body: ReassignIn, request: Request, caller: Supervisor
) -> LeadOut:
    teams = await _supervised(request, caller)
    async with _runtime(request).unit_of_work() as uow:
        current = await uow.session.get(Lead, lead_id)
        if current is None or not (
            access.may_see(caller, current, supervised_teams=teams) or current.status == "pooled"
        ):
            raise ProblemError(404, f"no lead {lead_id}")
        lead = await pool.reassign(
            uow, lead_id, to_rep=body.owner_id, reason=body.reason, by=caller.subject
        )
    return _present(lead, full_phone=True)


# --- rules -------------------------------------------------------------------------------


def _rules_out(stored: Any) -> RulesOut:
    return RulesOut(
        kind=stored.kind,
        version=stored.version,
        yaml=stored.source,
        created_by=stored.created_by,
        created_at=stored.created_at,
    )


def _rules_problem(exc: RulesInvalid) -> ProblemError:
    return ProblemError(
        422,
        f"the rule set is not valid: {exc}",
        type="urn:salesrail:problem:invalid-rules",
        title="Invalid rule set",
        errors=[
            {"field": p["field"], "rule": p["rule"], "message": p["message"]} for p in exc.problems
        ],
    )


@router.get("/rules/{kind}", response_model=RulesOut, summary="The active rule set", tags=["rules"])
async def read_rules(
    kind: Literal["routing", "scoring"], request: Request, caller: RulesReader
) -> RulesOut:
    stored = await _context(request).rulebook.current(kind, _runtime(request).unit_of_work)
    return _rules_out(stored)


@router.put(
    "/rules/{kind}",
    response_model=RulesOut,
    summary="Replace the rule set (validated first; a bad set changes nothing)",
    tags=["rules"],
)
async def replace_rules(
    kind: Literal["routing", "scoring"], body: RulesIn, request: Request, caller: RulesWriter
) -> RulesOut:
    try:
        stored = await _context(request).rulebook.replace(
            kind, body.yaml, by=caller.subject, unit_of_work=_runtime(request).unit_of_work
        )
    except RulesInvalid as exc:
        raise _rules_problem(exc) from exc
    return _rules_out(stored)


@router.post(
    "/rules/routing/simulate",
    response_model=SimulateOut,
    summary="Which rule would fire for this lead, and why (changes nothing)",
    tags=["rules"],
)
async def simulate_routing(body: SimulateIn, request: Request, caller: RulesReader) -> SimulateOut:
    context = _context(request)
    try:
        routing = (
            context.rulebook.validate("routing", body.rules_yaml)
            if body.rules_yaml
            else context.rulebook.routing
        )
    except RulesInvalid as exc:
        raise _rules_problem(exc) from exc
    assert routing is not None
    place = service.locate(body.city)
    match = routing.match(
        LeadFacts(
            city=place.city_name,
            province=place.province,
            category=body.category,
            grade=body.grade,
            source=body.source,
            score=body.score,
            tags=tuple(body.tags),
        )
    )
    runtime = _runtime(request)
    # The real assignment code, in a transaction that is rolled back: nothing changes.
    async with runtime.db.sessions() as session, session.begin():
        uow = UnitOfWork(session=session, outbox=runtime.outbox, clock=runtime.clock)
        decision = await assign(uow, match)
        await session.rollback()
    return SimulateOut(
        rule=match.rule.name if match.rule else None,
        assign=match.assign.model_dump(exclude_none=True, mode="json"),
        explanation=decision.trace,
        candidates=[decision.owner_id] if decision.owner_id else [],
        rules_version=routing.version or None,
        city_name=place.city_name,
        province=place.province,
        score=body.score,
        grade=body.grade,
    )


# --- reps and teams ----------------------------------------------------------------------


@router.put(
    "/teams/{team_id}",
    response_model=TeamOut,
    summary="Create or replace a team",
    tags=["directory"],
)
async def put_team(
    team_id: str, body: TeamIn, request: Request, response: Response, caller: DirectoryWriter
) -> TeamOut:
    async with _runtime(request).unit_of_work() as uow:
        team, created = await directory.put_team(
            uow, team_id, body, sealer=_context(request).settings.channel_sealer
        )
    response.status_code = 201 if created else 200
    return team_out(team)


@router.get("/teams", response_model=list[TeamOut], summary="All teams", tags=["directory"])
async def get_teams(request: Request, caller: DirectoryReader) -> list[TeamOut]:
    async with _runtime(request).unit_of_work() as uow:
        teams = await directory.list_teams(uow)
    return [team_out(t) for t in teams]


@router.put(
    "/reps/{rep_id}", response_model=RepOut, summary="Create or replace a rep", tags=["directory"]
)
async def put_rep(
    rep_id: str, body: RepIn, request: Request, response: Response, caller: DirectoryWriter
) -> RepOut:
    async with _runtime(request).unit_of_work() as uow:
        rep, created = await directory.put_rep(
            uow, rep_id, body, sealer=_context(request).settings.channel_sealer
        )
    response.status_code = 201 if created else 200
    return rep_out(rep)


@router.get(
    "/reps",
    response_model=list[RepOut],
    summary="Reps, with their open-lead counts",
    tags=["directory"],
)
async def get_reps(
    request: Request,
    caller: DirectoryReader,
    team_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[RepOut]:
    async with _runtime(request).unit_of_work() as uow:
        reps = await directory.list_reps(uow, team_id=team_id)
    return [rep_out(r) for r in reps]


@router.get("/reps/{rep_id}", response_model=RepOut, summary="One rep", tags=["directory"])
async def get_rep(rep_id: str, request: Request, caller: DirectoryReader) -> RepOut:
    async with _runtime(request).unit_of_work() as uow:
        rep = await uow.session.get(Rep, rep_id)
    if rep is None:
        raise ProblemError(404, f"no rep {rep_id}")
    return rep_out(rep)


@router.delete(
    "/reps/{rep_id}", status_code=204, summary="Remove a rep without open leads", tags=["directory"]
)
async def delete_rep(rep_id: str, request: Request, caller: DirectoryWriter) -> Response:
    async with _runtime(request).unit_of_work() as uow:
        await directory.delete_rep(uow, rep_id)
    return Response(status_code=204)


@router.delete(
    "/teams/{team_id}", status_code=204, summary="Remove a team without reps", tags=["directory"]
)
async def delete_team(team_id: str, request: Request, caller: DirectoryWriter) -> Response:
    async with _runtime(request).unit_of_work() as uow:
        await directory.delete_team(uow, team_id)
    return Response(status_code=204)
