"""Stage gates through the real app on a real bus and database (both backends): deliverables,
reasons, supervisor overrides (audited and published), concurrent changes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from activity.models import Override, StageChange
from salesrail.auth.principal import Role
from tests.service.activity.helpers import (
    ADMIN,
    CHECKLIST,
    PDF,
    activity,
    fields_of,
    lead_of,
    person,
    rep,
    supervisor,
    upload,
)
from tests.support.apps import running, runtime
from tests.support.bus import envelope_of, wait_for_messages


async def move(
    client: httpx.AsyncClient, lead_id: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(f"/v1/leads/{lead_id}/stage", json=body, headers=headers)


async def log(client: httpx.AsyncClient, lead_id: str, type_: str, **fields: Any) -> None:
    answer = await client.post(
        "/v1/activities", json=activity(lead_id, type_, **fields), headers=rep()
    )
    assert answer.status_code == 201, answer.text


async def test_a_stage_jump_without_deliverables_is_refused_listing_every_one(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        jump = await move(client, lead_id, rep(), to="negotiation")
        stage = await client.get(f"/v1/leads/{lead_id}/stage", headers=rep())

    assert jump.status_code == 422
    problem = jump.json()
    assert problem["type"] == "urn:salesrail:problem:stage-gate"
    assert problem["from"] == "contact" and problem["to"] == "negotiation"
    assert fields_of(jump) == [
        "deliverables.needs_confirmed.needs_documented",
        "deliverables.needs_confirmed.decision_maker_known",
        "deliverables.demo.demo_held",
        "deliverables.demo.key_people_covered",
        "deliverables.negotiation.quote_filed",
        "deliverables.negotiation.budget_known",
    ]
    assert all(error["message"] for error in problem["errors"])
    assert stage.json()["stage"] == "contact"


async def test_a_lead_passes_each_gate_once_its_deliverables_are_logged(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        needs = await upload(client, lead_id, PDF, rep(), "needs.pdf")
        await log(client, lead_id, "needs_list", attachments=[needs])
        early = await move(client, lead_id, rep(), to="needs_confirmed")
        await log(client, lead_id, "call", transcript="决策人是王总，预算50-80万，下一步：演示")
        confirmed = await move(client, lead_id, rep(), to="needs_confirmed")
        await log(client, lead_id, "demo", contacts=["王总", "李工"])
        demo = await move(client, lead_id, rep(), to="demo")
        await log(client, lead_id, "quote", checklist=CHECKLIST)
        negotiation = await move(client, lead_id, rep(), to="negotiation")
        messages = await wait_for_messages(
            nats_url,
            "salesrail.lead.stage_changed",
            count=3,
            where=lambda e: e["data"]["lead_id"] == lead_id,
        )

    assert fields_of(early) == ["deliverables.needs_confirmed.decision_maker_known"]
    for answer in (confirmed, demo, negotiation):
        assert answer.status_code == 200, answer.text
    assert negotiation.json()["from"] == "demo" and negotiation.json()["to"] == "negotiation"
    assert negotiation.json()["overridden"] is False
    changes = [envelope_of(m)["data"] for m in messages]
    assert [(c["from"], c["to"]) for c in changes] == [
        ("contact", "needs_confirmed"),
        ("needs_confirmed", "demo"),
        ("demo", "negotiation"),
    ]
    assert all(c["by"] == "rep-zhang" and c["overridden"] is False for c in changes)


async def test_a_supervisor_override_is_audited_and_published(app: FastAPI, nats_url: str) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        by_rep = await move(client, lead_id, rep(), to="demo", override=True, reason="急")
        without_reason = await move(client, lead_id, supervisor(), to="demo", override=True)
        other_team = await move(
            client, lead_id, supervisor("west"), to="demo", override=True, reason="x"
        )
        overridden = await move(
            client, lead_id, supervisor(), to="demo", override=True, reason="客户总部已看过演示"
        )
        async with runtime(app).unit_of_work() as uow:
            audit = (await uow.session.scalars(select(Override))).all()
            changes = (await uow.session.scalars(select(StageChange))).all()
        [gate_event] = await wait_for_messages(nats_url, "salesrail.activity.gate_overridden")
        [stage_event] = await wait_for_messages(nats_url, "salesrail.lead.stage_changed")
        timeline = (await client.get(f"/v1/leads/{lead_id}/timeline", headers=rep())).json()

    assert by_rep.status_code == 403
    assert fields_of(without_reason) == ["reason"]
    assert other_team.status_code == 404
    assert overridden.status_code == 200, overridden.text
    body = overridden.json()
    assert body["overridden"] is True and body["by"] == "sup-east"
    assert [m["check"] for m in body["missing"]] == [
        "needs_documented",
        "decision_maker_known",
        "demo_held",
        "key_people_covered",
    ]
    [record] = audit
    assert record.scope == "stage_gate" and record.reason == "客户总部已看过演示"
    assert record.by == "sup-east" and record.role == "supervisor"
    assert record.subject_id == changes[0].change_id and changes[0].overridden
    gate = envelope_of(gate_event)["data"]
    assert gate["lead_id"] == lead_id and gate["to_stage"] == "demo"
    assert gate["reason"] == "客户总部已看过演示" and gate["by"] == "sup-east"
    assert "deliverables.demo.demo_held" in gate["missing"]
    stage = envelope_of(stage_event)["data"]
    assert stage["from"] == "contact" and stage["to"] == "demo" and stage["overridden"] is True
    # Both at the same instant: their order on the timeline is their ids'.
    assert sorted(item["kind"] for item in timeline["items"]) == ["override", "stage_change"]


async def test_going_back_or_reopening_a_closed_lead_needs_a_reason(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        await log(client, lead_id, "call", summary="客户已选了别家")
        unexplained_loss = await move(client, lead_id, rep(), to="lost")
        lost = await move(client, lead_id, rep(), to="lost", reason="客户选了别家")
        again = await move(client, lead_id, rep(), to="lost", reason="x")
        reopen = await move(client, lead_id, rep(), to="contact")
        reopened = await move(client, lead_id, rep(), to="contact", reason="客户回头了")
        forward = await move(client, lead_id, ADMIN, to="demo", override=True, reason="补录")
        back = await move(client, lead_id, rep(), to="needs_confirmed")
        went_back = await move(client, lead_id, rep(), to="needs_confirmed", reason="重新确认需求")

    assert fields_of(unexplained_loss) == ["deliverables.lost.reason_given"]
    assert lost.status_code == 200, lost.text
    assert again.status_code == 409
    assert fields_of(reopen) == ["reason"]
    assert "reopening" in reopen.json()["errors"][0]["message"]
    assert reopened.status_code == 200, reopened.text
    assert forward.status_code == 200 and forward.json()["overridden"] is True
    assert fields_of(back) == ["reason"]
    assert went_back.status_code == 200, went_back.text


async def test_two_stage_changes_at_once_apply_only_one(app: FastAPI, nats_url: str) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        await log(client, lead_id, "call", summary="没有预算了")
        answers = await asyncio.gather(
            *(
                move(client, lead_id, headers, to="lost", reason="预算取消")
                for headers in (rep(), supervisor())
            )
        )
        async with runtime(app).unit_of_work() as uow:
            changes = (await uow.session.scalars(select(StageChange))).all()

    assert sorted(a.status_code for a in answers) == [200, 409]
    assert len(changes) == 1


async def test_only_those_who_may_act_on_the_lead_move_its_stage(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        ops = await move(client, lead_id, person("ops-1", Role.OPS), to="lost", reason="x")
        other_rep = await move(client, lead_id, rep("rep-li"), to="lost", reason="x")
        unknown_stage = await move(client, lead_id, rep(), to="closed")
    assert ops.status_code == 403
    assert other_rep.status_code == 404
    assert fields_of(unknown_stage) == ["to"]
