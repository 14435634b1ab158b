"""Logging an activity: checked against its type's rules, folded into its lead, published.

`prepare` does what needs no database (validation, memo extraction) in the request itself;
`apply_batch` checks and stores a batch of them in one unit of work (see salesrail.group_commit).
A refused activity stores nothing and changes nothing.

Idempotency: an activity sent with an `Idempotency-Key` is stored with it, scoped to its caller
(`logged_by`, the caller's subject), next to the hash of its canonical request. The same caller
sending the same key again is answered the first result, and nothing is stored or published
again; with another request, refused (422 naming the header). A refused activity stores
nothing, so its key stays free. Within a batch the first of two requests with one key wins.
Between batches, the keys are looked up after the leads' lock, so a batch that held it first
has committed; across replicas, the unique constraint on (logged_by, idempotency_key) decides,
and the loser, applied again alone, answers with the winner's result (`Capture._recover`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic_core import to_json
from sqlalchemy import Select, select, text, tuple_
from sqlalchemy.exc import IntegrityError

from activity import dossier, evidence, publishers, rules
from activity.attachments.service import load_attachments
from activity.conditions import facts_read
from activity.memo import extract_memo_facts, key_people
from activity.models import LEAD_AFTER, RECORD_FIELDS, Activity, Attachment, Lead, Override
from activity.party_match import PartyMatch, match_party
from activity.requirements import CompiledRequirements, Requirement
from activity.rulebook import Rulebook
from activity.schemas import ActivityIn
from activity.tech_env import detect_tech_env_change
from salesrail.auth import Principal, Role
from salesrail.bus.outbox import OUTBOX_FROM_JSON
from salesrail.db import driver
from salesrail.db.bulk import insert_from_json, insert_rows, is_postgresql, one_of, update_rows
from salesrail.group_commit import GroupCommit
from salesrail.http.problems import VALIDATION, ProblemError, invalid_field
from salesrail.unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
INCOMPLETE = "urn:salesrail:problem:activity-incomplete"
KEY_REUSED = "urn:salesrail:problem:idempotency-key-reused"
IDEMPOTENCY_HEADER = "Idempotency-Key"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Submission:
    """An activity ready to be checked against its lead: what the request alone tells."""

    body: ActivityIn
    caller: Principal
    memo_facts: dict[str, Any]
    missing_facts: list[str]
    key_people: list[str]
    tech_env_phrases: list[str]
    idempotency_key: str | None = None  # the caller's own: scoped by caller.subject
    request_hash: str | None = None  # of the canonical body, when a key is given

    @property
    def scoped_key(self) -> tuple[str, str] | None:
        """(logged_by, key), as the unique constraint holds it; None without a key."""
        if self.idempotency_key is None:
            return None
        return self.caller.subject, self.idempotency_key


@dataclass(frozen=True)
class Logged:
    row: dict[str, Any]
    stage: str
    key_people_covered: int
    proposal_completion: float | None
    first_contact: bool
    created: bool = True  # False: the first result of this key, answered again (HTTP 200)

    def lead_after(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "key_people_covered": self.key_people_covered,
            "proposal_completion": self.proposal_completion,
            "first_contact": self.first_contact,
        }


@dataclass(frozen=True)
class _First:
    """The activity a key already stands for, and the hash of the request it came with."""

    request_hash: str | None
    logged: Logged


def request_hash(body: ActivityIn) -> str:
    """SHA-256 of the request as understood, not as typed: the same activity sent again with
    its fields in another order, its `occurred_at` in another offset, or a default spelled out
    (or left out) hashes the same. Defaults are left out, so a field added to ActivityIn later
    does not change the hash of requests that do not use it."""
    canonical = body.model_dump(mode="json", exclude_defaults=True)
    canonical["occurred_at"] = body.occurred_at.astimezone(UTC).isoformat()
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _LeadState:
    lead_id: str
    owner_id: str | None
    team_id: str | None
    company_name: str | None
    stage: str
    dossier: dict[str, Any]
    changed: bool = False


def prepare(
    body: ActivityIn,
    caller: Principal,
    *,
    requirements: CompiledRequirements,
    now: datetime,
    idempotency_key: str | None = None,
) -> Submission:
    """Refuse what is wrong whatever the lead; read the memo."""
    if body.type not in requirements.types:
        known = ", ".join(requirements.types)
        raise invalid_field("type", f"unknown activity type {body.type!r}; known: {known}")
    if rules.in_future(body.occurred_at, now=now):
        raise invalid_field("occurred_at", "is in the future")
    if caller.role is Role.REP and body.rep_id != caller.rep_id:
        raise ProblemError(403, "a rep logs activities under their own rep_id")
    if body.override_reason and caller.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise ProblemError(403, "only a supervisor or admin may override the activity rules")
    found, missing = {}, []
    if body.transcript or requirements.rules_of(body.type).memo_facts:
        memo = extract_memo_facts(body.transcript or "")
        found = {k: v for k, v in memo.facts.items() if v is not None}
        missing = list(memo.missing)
    people = [*body.contacts, *(key_people(body.transcript) if body.transcript else [])]
    decision_maker = body.decision_maker or found.get("decision_maker")
    if decision_maker:
        people.append(decision_maker)
    text = "\n".join(t for t in (body.summary, body.transcript, body.minutes) if t)
    return Submission(
        body=body,
        caller=caller,
        memo_facts=found,
        missing_facts=missing,
        key_people=people,
        tech_env_phrases=detect_tech_env_change(text) if text else [],
        idempotency_key=idempotency_key,
        request_hash=request_hash(body) if idempotency_key is not None else None,
    )


class Capture:
    """Where requests hand their activities: applied in shared transactions, answered each."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        rulebook: Rulebook,
        party_threshold: float,
        max_batch: int,
        concurrency: int = 1,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._rulebook = rulebook
        self._party_threshold = party_threshold
        # Batches may overlap: each locks its leads in lead order, so two batches on one lead
        # apply one after the other (its activities, dossier and events in order).
        self._commit: GroupCommit[Submission, Logged] = GroupCommit(
            self._apply,
            name="activities",
            max_batch=max_batch,
            recover=self._recover,
            concurrency=concurrency,
        )

    def start(self) -> None:
        self._commit.start()

    async def stop(self) -> None:
        await self._commit.stop()

    async def log(self, submission: Submission) -> Logged:
        return await self._commit.submit(submission)

    async def _apply(self, items: list[Submission]) -> list[Logged | ProblemError]:
        async with self._unit_of_work() as uow:
            return await apply_batch(
                uow, items, rulebook=self._rulebook, party_threshold=self._party_threshold
            )

    async def _recover(self, item: Submission, exc: Exception) -> Logged:
        """An activity that failed alone because another replica stored its key first (a
        unique violation is raised only once the other transaction has committed): answered
        with that replica's result, or refused if the key came with another request."""
        scoped_key = item.scoped_key
        if scoped_key is None or not isinstance(exc, IntegrityError):
            raise exc
        async with self._unit_of_work() as uow:
            first = (await _stored_firsts(uow, [item])).get(scoped_key)
        if first is None:
            raise exc
        log.info("activity.idempotency_race_lost", activity_id=first.logged.row["activity_id"])
        answer = _replayed(item, first)
        if isinstance(answer, ProblemError):
            raise answer
        return answer


async def apply_batch(
    uow: UnitOfWork, items: Sequence[Submission], *, rulebook: Rulebook, party_threshold: float
) -> list[Logged | ProblemError]:
    """Check each activity against its lead, in order; store the accepted ones together.

    An Idempotency-Key already stored, or accepted earlier in this batch, answers its first
    result before the lead is even looked at: that request was accepted once, and is not
    judged again."""
    leads = await _lock_leads(uow, {item.body.lead_id for item in items})
    # After the leads' lock: a batch that held it before this one has committed its keys.
    firsts = await _stored_firsts(uow, items)
    results: list[Logged | ProblemError] = []
    activities: list[Logged] = []
    overrides: list[dict[str, Any]] = []
    for item in items:
        scoped_key = item.scoped_key
        first = firsts.get(scoped_key) if scoped_key is not None else None
        if first is not None:
            results.append(_replayed(item, first))
            continue
        try:
            lead = leads.get(item.body.lead_id)
            if lead is None or not rules.may_act(item.caller, lead.owner_id, lead.team_id):
                raise ProblemError(404, f"no lead {item.body.lead_id}")
            attachments = await _attachments(uow, item.body)
            logged, override = _accept(
                item,
                lead,
                attachments,
                now=uow.now(),
                rulebook=rulebook,
                party_threshold=party_threshold,
            )
        except ProblemError as refusal:
            results.append(refusal)  # nothing stored: its key stays free
            continue
        results.append(logged)
        activities.append(logged)
        if scoped_key is not None:  # a repeat later in this same batch answers this
            firsts[scoped_key] = _First(item.request_hash, logged)
        if override is not None:
            overrides.append(override)
        await uow.publish(
            publishers.activity_logged(
                logged.row,
                stage=logged.stage,
                key_people_covered=logged.key_people_covered,
                proposal_completion=logged.proposal_completion,
                first_contact=logged.first_contact,
            )
        )
        if logged.row["tech_env_change"]:
            await uow.publish(
                publishers.tech_env_changed(logged.row, matched_phrases=item.tech_env_phrases)
            )
    await _store(uow, activities, overrides, [lead for lead in leads.values() if lead.changed])
    return results


def _accept(
    item: Submission,
    lead: _LeadState,
    attachments: list[Attachment],
    *,
    now: datetime,
    rulebook: Rulebook,
    party_threshold: float,
) -> tuple[Logged, dict[str, Any] | None]:
    """The activity as stored and what it did to its lead, or a refusal (ProblemError)."""
    body, caller = item.body, item.caller
    type_rules = rulebook.requirements.rules_of(body.type)
    party = (
        match_party(body.party_name, lead.company_name, threshold=party_threshold)
        if body.party_name
        else None
    )
    facts = evidence.activity_facts(body, attachments, memo_facts=item.memo_facts, party=party)
    verdict = rulebook.requirements.check(body.type, facts)
    overridden = bool(verdict.missing)
    if verdict.missing and not (body.override_reason and verdict.overridable):
        raise _incomplete(body.type, verdict.missing, party)
    if overridden and not rules.may_override(caller, lead.owner_id, lead.team_id):
        raise ProblemError(403, "only the supervisor of the lead's team or admin may override")

    on_time = rules.on_time(body.occurred_at, now, type_rules.on_time_within)
    memo_facts = dict(item.memo_facts)
    if body.decision_maker:
        memo_facts["decision_maker"] = body.decision_maker
    missing_facts = [f for f in item.missing_facts if f not in memo_facts]
    flags = evidence.flags(
        occurred_at=body.occurred_at,
        on_time=on_time,
        late_after=type_rules.on_time_within,
        logged_at=now,
        attachments=attachments,
        photo_tolerance=rulebook.requirements.document.photo_tolerance,
        missing_facts=missing_facts,
    )
    activity_id = str(uuid.uuid4())
    override = None
    if overridden:
        assert body.override_reason is not None
        missing = [_described(r, party) for r in verdict.missing]
        flags.append({"code": "overridden", "message": "; ".join(m["message"] for m in missing)})
        override = {
            "override_id": str(uuid.uuid4()),
            "lead_id": lead.lead_id,
            "scope": "activity",
            "subject_id": activity_id,
            "missing": missing,
            "reason": body.override_reason,
            "by": caller.subject,
            "role": caller.role.value,
            "occurred_at": now,
        }

    folded = dossier.fold(
        lead.dossier,
        activity_type=body.type,
        rep_id=body.rep_id,
        delivers=verdict.delivers,
        facts=memo_facts,
        key_people=item.key_people,
        overridden=overridden,
    )
    lead.dossier, lead.changed = folded.dossier, True
    completion = rulebook.gates.completion(
        rules.next_stage(lead.stage), dossier.gate_facts(folded.dossier, owner_id=lead.owner_id)
    )
    row = {
        "activity_id": activity_id,
        "lead_id": lead.lead_id,
        "rep_id": body.rep_id,
        "type": body.type,
        "occurred_at": body.occurred_at,
        "logged_at": now,
        "logged_by": caller.subject,
        "on_time": on_time,
        "summary": body.summary,
        "transcript": body.transcript,
        "details": _details(body, party),
        "attachments": [a.attachment_id for a in attachments],
        "facts": memo_facts,
        "missing_facts": missing_facts,
        "key_people": _distinct(item.key_people),
        "flags": flags,
        "tech_env_change": body.tech_env_change or bool(item.tech_env_phrases),
        "overridden": overridden,
        "idempotency_key": item.idempotency_key,
        "request_hash": item.request_hash,
    }
    logged = Logged(row, lead.stage, folded.key_people_covered, completion, folded.first_contact)
    return logged, override


async def _lock_leads(uow: UnitOfWork, lead_ids: set[str]) -> dict[str, _LeadState]:
    """The batch's leads, locked in a fixed order (two batches cannot deadlock)."""
    wanted = sorted(lead_ids)
    rows: Any
    if is_postgresql(uow.session):
        # One statement whatever the batch's size: the ids as one array, straight to asyncpg
        # (salesrail.db.driver: through the session a statement costs ~0.4 ms more CPU).
        rows = await driver.fetch(uow.session, _LOCK_LEADS, {"ids": wanted})
    else:
        rows = await uow.session.execute(
            _lock_leads_statement(one_of(_LEADS.c.lead_id, wanted, postgresql=False))
        )
    return {
        lead_id: _LeadState(lead_id, owner_id, team_id, company_name, stage, dossier or {})
        for lead_id, owner_id, team_id, company_name, stage, dossier in rows
    }


def _lock_leads_statement(which: Any) -> Select[Any]:
    leads = _LEADS
    return (
        select(
            leads.c.lead_id,
            leads.c.owner_id,
            leads.c.team_id,
            leads.c.company_name,
            leads.c.stage,
            leads.c.dossier,
        )
        .where(which)
        .order_by(leads.c.lead_id)
        .with_for_update()
    )


_LEADS = Lead.__table__
_LOCK_LEADS = text(
    "SELECT lead_id, owner_id, team_id, company_name, stage, dossier FROM leads "
    "WHERE lead_id = ANY(CAST(:ids AS text[])) ORDER BY lead_id FOR UPDATE"
)


async def _store(
    uow: UnitOfWork,
    activities: Sequence[Logged],
    overrides: Sequence[dict[str, Any]],
    changed: Sequence[_LeadState],
) -> None:
    """The batch's accepted activities, their overrides and their leads' new dossiers: on
    PostgreSQL one statement with the batch's events, each table's rows as a JSON document;
    elsewhere one statement each."""
    now = uow.now()
    dossiers = [
        {"lead_id": lead.lead_id, "dossier": lead.dossier, "updated_at": now} for lead in changed
    ]
    if is_postgresql(uow.session):
        documents = {
            "activities": to_json([_stored(a) for a in activities]).decode(),
            "overrides": to_json(overrides).decode(),
            "dossiers": to_json(dossiers).decode(),
            # None taken when write_staged must notify another process's relay: it writes them.
            "events": uow.outbox.take_staged_json(uow.session),
        }
        await driver.execute(uow.session, _WRITE_BATCH, documents)
        return
    if activities:
        await insert_rows(uow.session, Activity.__table__, [_stored(a) for a in activities])
    if overrides:
        await insert_rows(uow.session, Override.__table__, overrides)
    if dossiers:
        await update_rows(uow.session, Lead.__table__, "lead_id", dossiers)


_ACTIVITY_COLUMNS = tuple(column.key for column in Activity.__table__.columns)
_OVERRIDE_COLUMNS = tuple(column.key for column in Override.__table__.columns)
_WRITE_BATCH = text(
    f"WITH new_activities AS "
    f"({insert_from_json(Activity.__table__, _ACTIVITY_COLUMNS, 'activities')}), "
    f"new_overrides AS ({insert_from_json(Override.__table__, _OVERRIDE_COLUMNS, 'overrides')}), "
    f"new_events AS ({OUTBOX_FROM_JSON}) "
    "UPDATE leads SET dossier = given.dossier, updated_at = given.updated_at "
    "FROM json_to_recordset(CAST(:dossiers AS json)) "
    "AS given(lead_id text, dossier jsonb, updated_at timestamptz) "
    "WHERE leads.lead_id = given.lead_id"
)


async def _attachments(uow: UnitOfWork, body: ActivityIn) -> list[Attachment]:
    """The activity's attachments, in the order given; any not of this lead is refused."""
    wanted = list(dict.fromkeys(body.attachments))
    found = await load_attachments(uow.session, body.lead_id, wanted) if wanted else {}
    unknown = [i for i, attachment_id in enumerate(body.attachments) if attachment_id not in found]
    if unknown:
        raise ProblemError(
            422,
            "unknown attachments: upload them for this lead first",
            type=VALIDATION,
            title="Invalid request",
            errors=[
                {
                    "field": f"attachments[{i}]",
                    "in": "body",
                    "message": f"no attachment {body.attachments[i]} on lead {body.lead_id}",
                    "code": "unknown",
                }
                for i in unknown
            ],
        )
    return [found[attachment_id] for attachment_id in wanted]


def _described(requirement: Requirement, party: PartyMatch | None) -> dict[str, Any]:
    message = requirement.message
    about_party = party is not None and "party_match" in facts_read(requirement.when)
    if about_party:
        assert party is not None
        message = f"{message}: {party.explain()}"
    return {
        "field": requirement.field,
        "in": "body",
        "message": message,
        "code": "mismatch" if about_party else "missing",
        "requirement": requirement.name,
        "overridable": requirement.overridable,
    }


def _incomplete(
    activity_type: str, missing: list[Requirement], party: PartyMatch | None
) -> ProblemError:
    errors = [_described(r, party) for r in missing]
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return ProblemError(
        422,
        f"this {activity_type} cannot be logged: {fields}",
        type=INCOMPLETE,
        title="Activity incomplete",
        errors=errors,
    )


def _stored(logged: Logged) -> dict[str, Any]:
    row = logged.row
    stored = {k: v for k, v in row.items() if k not in RECORD_FIELDS}
    stored["record"] = {k: row[k] for k in RECORD_FIELDS} | {LEAD_AFTER: logged.lead_after()}
    return stored


# --- idempotency -------------------------------------------------------------------------

# What answering an activity again needs: its row as `_accept` built it.
_ANSWERED = (
    Activity.activity_id,
    Activity.lead_id,
    Activity.rep_id,
    Activity.type,
    Activity.occurred_at,
    Activity.logged_at,
    Activity.logged_by,
    Activity.on_time,
    Activity.summary,
    Activity.transcript,
    Activity.tech_env_change,
    Activity.overridden,
    Activity.idempotency_key,
    Activity.request_hash,
    Activity.record,
)


async def _stored_firsts(
    uow: UnitOfWork, items: Sequence[Submission]
) -> dict[tuple[str, str], _First]:
    """The activities already stored under the items' keys: one query, none without keys."""
    wanted = {item.scoped_key for item in items if item.scoped_key is not None}
    if not wanted:
        return {}
    rows = await uow.session.execute(
        select(*_ANSWERED).where(
            tuple_(Activity.logged_by, Activity.idempotency_key).in_(sorted(wanted))
        )
    )
    firsts: dict[tuple[str, str], _First] = {}
    for found in rows.mappings():
        row = dict(found)
        record = dict(row.pop("record"))
        lead_after = record.pop(LEAD_AFTER)
        row.update(record)
        logged = Logged(row, **lead_after, created=False)
        firsts[row["logged_by"], row["idempotency_key"]] = _First(row["request_hash"], logged)
    return firsts


def _replayed(item: Submission, first: _First) -> Logged | ProblemError:
    """The first result again if this is the same request; a refusal naming the key if not."""
    if first.request_hash != item.request_hash:
        return _key_reused()
    # The same instant (the hash says so), shown in the offset this request gave it.
    row = first.logged.row | {"occurred_at": item.body.occurred_at}
    return dataclasses.replace(first.logged, row=row, created=False)


def _key_reused() -> ProblemError:
    message = (
        "already used by you for a different activity: send that same request again to get "
        "its result, or a new key for a new activity"
    )
    return ProblemError(
        422,
        f"{IDEMPOTENCY_HEADER} {message}",
        type=KEY_REUSED,
        title="Idempotency key reused",
        errors=[
            {"field": IDEMPOTENCY_HEADER, "in": "header", "message": message, "code": "reused"}
        ],
    )


def _details(body: ActivityIn, party: PartyMatch | None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "checklist": body.checklist or None,
        "party_name": body.party_name,
        "party_score": party.score if party else None,
        "minutes": body.minutes,
        "contacts": body.contacts or None,
        "decision_maker": body.decision_maker,
        "override_reason": body.override_reason,
    }
    return {k: v for k, v in details.items() if v is not None}


def _distinct(names: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        if name.strip():
            seen.setdefault(dossier.person_key(name), " ".join(name.split()))
    return list(seen.values())
