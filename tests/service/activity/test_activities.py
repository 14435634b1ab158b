"""Logging activities through the real app on a real bus and database (both backends): what
each type requires, who may log, what is flagged, what is published."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select

from activity.models import Activity, Lead, Override
from salesrail.auth.principal import Role
from tests.service.activity.helpers import (
    ADMIN,
    CHECKLIST,
    MP3,
    PDF,
    activity,
    ago,
    fields_of,
    lead_of,
    make_app,
    person,
    rep,
    supervisor,
    upload,
)
from tests.support.apps import running, runtime
from tests.support.bus import envelope_of, wait_for_messages
from tests.unit.activity.test_attachments_photo_metadata import exif_jpeg

MEMO = (
    "今天拜访了王总和李工，决策人是王总，预算50-80万，下一步：下周安排方案演示。王总电话13812345678"
)


async def count(app: FastAPI, model: Any, **where: Any) -> int:
    async with runtime(app).unit_of_work() as uow:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return int(await uow.session.scalar(query) or 0)


async def logged_events(nats_url: str, activity_id: str) -> dict[str, Any]:
    [message] = await wait_for_messages(
        nats_url,
        "salesrail.activity.logged",
        where=lambda e: e.get("data", {}).get("activity_id") == activity_id,
    )
    return envelope_of(message)


async def test_a_visit_with_a_photo_and_its_memo_is_logged_on_time_with_the_memos_facts(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        photo = await upload(client, lead_id, exif_jpeg(), rep(), "visit.jpg")
        answer = await client.post(
            "/v1/activities",
            json=activity(lead_id, "visit", attachments=[photo], transcript=MEMO),
            headers=rep(),
        )
        assert answer.status_code == 201, answer.text
        logged = answer.json()
        envelope = await logged_events(nats_url, logged["id"])

    assert logged["on_time"] is True
    assert logged["facts"]["decision_maker"] == "王总"
    assert logged["facts"]["budget_min"] == 500_000
    assert logged["facts"]["budget_max"] == 800_000
    assert logged["missing_facts"] == []
    assert set(logged["key_people"]) >= {"王总", "李工"}
    assert logged["first_contact"] is True
    assert logged["stage"] == "contact"
    assert logged["key_people_covered"] >= 2
    # needs_confirmed: a known decision maker, but no needs list yet: half its gate.
    assert logged["proposal_completion"] == 0.5
    data = envelope["data"]
    assert envelope["type"] == "activity.logged" and envelope["source"] == "activity"
    assert data["lead_id"] == lead_id and data["rep_id"] == "rep-zhang" and data["type"] == "visit"
    assert data["on_time"] is True
    assert data["facts"]["decision_maker"] == "王总"
    assert data["first_contact"] is True
    assert data["proposal_completion"] == 0.5


async def test_a_visit_logged_three_hours_after_it_happened_is_accepted_but_marked_late(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        photo = await upload(client, lead_id, exif_jpeg(), rep(), "visit.jpg")
        audio = await upload(client, lead_id, MP3, rep(), "memo.mp3")
        answer = await client.post(
            "/v1/activities",
            json=activity(lead_id, "visit", occurred_at=ago(hours=3), attachments=[photo, audio]),
            headers=rep(),
        )
        assert answer.status_code == 201, answer.text
        envelope = await logged_events(nats_url, answer.json()["id"])

    logged = answer.json()
    assert logged["on_time"] is False
    codes = {flag["code"] for flag in logged["flags"]}
    # The photo's EXIF says 2026-11-20: far from a visit three hours ago.
    assert {"late", "photo_far_from_activity", "missing_memo_facts"} <= codes
    assert logged["missing_facts"] == ["decision_maker", "budget", "next_step"]
    assert envelope["data"]["on_time"] is False


async def test_a_visit_without_photo_or_memo_is_refused_naming_both(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        pdf = await upload(client, lead_id, PDF, rep(), "scan.pdf")
        answer = await client.post(
            "/v1/activities", json=activity(lead_id, "visit", attachments=[pdf]), headers=rep()
        )
    assert answer.status_code == 422
    assert fields_of(answer) == ["attachments", "transcript"]
    assert answer.json()["type"] == "urn:salesrail:problem:activity-incomplete"


async def test_an_incomplete_quote_is_refused_and_nothing_is_stored(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        checklist = {"freight_included": True, "instalments_allowed": None}
        refused = await client.post(
            "/v1/activities",
            json=activity(lead_id, "quote", checklist=checklist, summary="报价 12 万"),
            headers=rep(),
        )
        stored = await count(app, Activity, lead_id=lead_id)
        async with runtime(app).unit_of_work() as uow:
            lead = await uow.session.get(Lead, lead_id)
        timeline = await client.get(f"/v1/leads/{lead_id}/timeline", headers=rep())
        published = await wait_for_messages(
            nats_url, "salesrail.activity.>", timeout_s=1.0, count=1
        )

    assert refused.status_code == 422
    assert fields_of(refused) == [
        "checklist.instalments_allowed",
        "checklist.technical_parameters_attached",
    ]
    assert stored == 0
    assert lead is not None and lead.dossier == {}
    assert timeline.json()["items"] == []
    assert published == []


async def test_a_quote_answering_every_item_is_filed_even_when_the_answers_are_no(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        answer = await client.post(
            "/v1/activities",
            json=activity(lead_id, "quote", checklist={k: False for k in CHECKLIST}),
            headers=rep(),
        )
        yes = await client.post(
            "/v1/activities",
            json=activity(lead_id, "quote", checklist={**CHECKLIST, "freight_included": "yes"}),
            headers=rep(),
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["on_time"] is None
    assert yes.status_code == 422  # "yes" is not an explicit true/false
    assert fields_of(yes) == ["checklist.freight_included"]


async def test_a_contract_under_the_wrong_company_is_refused_unless_a_supervisor_overrides(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        signed = await upload(client, lead_id, PDF, rep(), "signed.pdf")
        contract = activity(
            lead_id, "contract", attachments=[signed], party_name="宁波另一家机床有限公司"
        )
        refused = await client.post("/v1/activities", json=contract, headers=rep())
        by_rep = await client.post(
            "/v1/activities", json={**contract, "override_reason": "我确认"}, headers=rep()
        )
        by_other_team = await client.post(
            "/v1/activities",
            json={**contract, "override_reason": "集团子公司签约"},
            headers=supervisor("west"),
        )
        unexplained = await client.post(
            "/v1/activities", json={**contract, "override_reason": " "}, headers=supervisor()
        )
        accepted = await client.post(
            "/v1/activities",
            json={**contract, "override_reason": "集团子公司签约，法务已确认"},
            headers=supervisor(),
        )
        overrides = await count(app, Override, lead_id=lead_id)
        timeline = (await client.get(f"/v1/leads/{lead_id}/timeline", headers=rep())).json()

    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["field"] == "party_name" and error["code"] == "mismatch"
    assert error["overridable"] is True
    assert (
        "宁波另一家机床有限公司" in error["message"]
        and "杭州某某紧固件有限公司" in error["message"]
    )
    assert by_rep.status_code == 403
    assert by_other_team.status_code == 404
    assert unexplained.status_code == 422
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["overridden"] is True
    assert overrides == 1
    # The audit entry (logged now), then the contract (it happened half an hour ago).
    [override, logged] = timeline["items"]
    assert override["kind"] == "override" and override["scope"] == "activity"
    assert override["subject_id"] == accepted.json()["id"]
    assert override["reason"] == "集团子公司签约，法务已确认"
    assert override["by"] == "sup-east" and override["role"] == "supervisor"
    assert override["missing"][0]["field"] == "party_name"
    assert logged["kind"] == "activity" and logged["overridden"] is True


async def test_a_contract_whose_party_is_the_leads_company_delivers_a_matched_contract(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        signed = await upload(client, lead_id, exif_jpeg(), rep(), "signed.jpg")
        answer = await client.post(
            "/v1/activities",
            json=activity(
                lead_id, "contract", attachments=[signed], party_name="杭州某某紧固件公司"
            ),
            headers=rep(),
        )
        async with runtime(app).unit_of_work() as uow:
            lead = await uow.session.get(Lead, lead_id)
    assert answer.status_code == 201, answer.text
    assert answer.json()["overridden"] is False
    assert lead is not None and lead.dossier["counts"]["contract_party_matched"] == 1


async def test_a_rep_cannot_log_on_or_read_another_reps_lead(app: FastAPI, nats_url: str) -> None:
    async with running(app) as client:
        theirs = await lead_of(client, nats_url, owner_id="rep-li")
        note = activity(theirs, "note", summary="顺路拜访")
        logged = await client.post("/v1/activities", json=note, headers=rep())
        timeline = await client.get(f"/v1/leads/{theirs}/timeline", headers=rep())
        stage = await client.post(
            f"/v1/leads/{theirs}/stage", json={"to": "lost", "reason": "x"}, headers=rep()
        )
        unknown = await client.post(
            "/v1/activities", json=activity(str(uuid.uuid4()), "note", summary="x"), headers=rep()
        )
        as_other = await client.post(
            "/v1/activities", json={**note, "rep_id": "rep-li"}, headers=rep()
        )
        ops = await client.post("/v1/activities", json=note, headers=person("ops-1", Role.OPS))
        stored = await count(app, Activity, lead_id=theirs)

    for refused in (logged, timeline, stage, unknown):
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert logged.json()["detail"] == f"no lead {theirs}"
    assert as_other.status_code == 403  # a rep logs under their own id only
    assert ops.status_code == 403  # ops reads leads, does not log on them
    assert stored == 0


async def test_the_owners_supervisor_and_admin_may_log_on_a_lead(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        by_supervisor = await client.post(
            "/v1/activities",
            json=activity(lead_id, "call", rep_id="rep-zhang", summary="陪访"),
            headers=supervisor(),
        )
        by_admin = await client.post(
            "/v1/activities", json=activity(lead_id, "call"), headers=ADMIN
        )
    assert by_supervisor.status_code == 201, by_supervisor.text
    assert by_admin.status_code == 201, by_admin.text
    assert by_supervisor.json()["first_contact"] is True
    assert by_admin.json()["first_contact"] is False  # the same rep's second activity


async def test_a_technical_environment_change_is_published_for_presales_and_after_sales(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        said = await client.post(
            "/v1/activities",
            json=activity(lead_id, "call", summary="客户说明年要做系统迁移，电话13812345678"),
            headers=rep(),
        )
        marked = await client.post(
            "/v1/activities",
            json=activity(lead_id, "note", summary="设备情况有变", tech_env_change=True),
            headers=rep(),
        )
        plain = await client.post(
            "/v1/activities", json=activity(lead_id, "call", summary="约了下周见面"), headers=rep()
        )
        messages = await wait_for_messages(
            nats_url, "salesrail.activity.tech_env_changed", count=2, settle_s=1.0
        )

    assert said.status_code == marked.status_code == plain.status_code == 201
    assert said.json()["tech_env_change"] and marked.json()["tech_env_change"]
    assert not plain.json()["tech_env_change"]
    by_activity = {envelope_of(m)["data"]["activity_id"]: envelope_of(m)["data"] for m in messages}
    assert set(by_activity) == {said.json()["id"], marked.json()["id"]}
    spoken = by_activity[said.json()["id"]]
    assert spoken["matched_phrases"]
    assert "13812345678" not in spoken["summary"]
    assert by_activity[marked.json()["id"]]["matched_phrases"] == []


async def test_bad_input_is_problem_json_naming_each_field_never_a_500(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        empty = await client.post("/v1/activities", json={}, headers=rep())
        unknown_type = await client.post(
            "/v1/activities", json=activity(lead_id, "dinner"), headers=rep()
        )
        future = await client.post(
            "/v1/activities",
            json=activity(lead_id, "call", occurred_at=ago(hours=-2)),
            headers=rep(),
        )
        naive = await client.post(
            "/v1/activities",
            json=activity(lead_id, "call", occurred_at="2026-03-01T10:00:00"),
            headers=rep(),
        )
        foreign = await client.post(
            "/v1/activities",
            json=activity(lead_id, "visit", attachments=["nope"], transcript="王总"),
            headers=rep(),
        )
        not_json = await client.post(
            "/v1/activities", content=b"{", headers={**rep(), "content-type": "application/json"}
        )
        anonymous = await client.post("/v1/activities", json=activity(lead_id, "call"))

    assert set(fields_of(empty)) == {"lead_id", "rep_id", "type", "occurred_at"}
    assert fields_of(unknown_type) == ["type"]
    assert fields_of(future) == ["occurred_at"]
    assert fields_of(naive) == ["occurred_at"]
    assert fields_of(foreign) == ["attachments[0]"]
    assert fields_of(not_json) == ["body"]
    assert anonymous.status_code == 401


async def test_activities_logged_at_once_on_one_lead_all_count(
    database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path
) -> None:
    # On PostgreSQL batches overlap (group_commit_concurrency): two on one lead must still
    # apply one after the other, or the lead's dossier would lose one batch's counts. Batches
    # of 3: the 12 activities make 4, two of them applied at once.
    app = make_app(
        database_url,
        auth_database_url,
        nats_url,
        tmp_path,
        group_commit_size=3,
        group_commit_concurrency=2,
    )
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/activities",
                    json=activity(lead_id, "call", summary=f"第{i}次电话"),
                    headers=rep(),
                )
                for i in range(12)
            )
        )
        events = await wait_for_messages(
            nats_url,
            "salesrail.activity.logged",
            count=12,
            where=lambda e: e.get("data", {}).get("lead_id") == lead_id,
            settle_s=0.5,
        )
        async with runtime(app).unit_of_work() as uow:
            lead = await uow.session.get(Lead, lead_id)
            stored = await uow.session.scalar(
                select(func.count()).select_from(Activity).where(Activity.lead_id == lead_id)
            )

    assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers]
    assert stored == 12 and len(events) == 12
    assert lead is not None and lead.dossier["activities"] == 12
    assert sum(a.json()["first_contact"] for a in answers) == 1
