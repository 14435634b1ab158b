"""collab's ticket path on a real bus and a real database (both backends)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI

from collab.config import Settings
from collab.main import create_app
from salesrail.auth.principal import Role
from tests.support.apps import running, runtime, service_app
from tests.support.bus import envelope_of, wait_for_messages


@pytest.fixture
def app(database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return service_app(
        create_app,
        Settings,
        database_url=database_url,
        auth_database_url=auth_database_url,
        nats_url=nats_url,
        data_dir=tmp_path,
    )


async def key(app: FastAPI, role: Role, name: str) -> dict[str, str]:
    """A key of its own: a rep's key acts as that rep (the requester of a ticket)."""
    rep_id = name if role is Role.REP else None
    secret = await runtime(app).auth.api_keys.create(role=role, name=name, rep_id=rep_id)
    return {"X-API-Key": secret}


def ticket_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "technical_support",
        "lead_id": "lead-1",
        "title": "客户要求演示 M8 紧固件自动化产线",
        "details": "设备型号 KX-200；上次痛点：换线时间长。",
    }
    body.update(overrides)
    return body


async def test_an_opened_ticket_is_stored_and_announced_once_on_the_bus(app, nats_url):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        rep = await key(app, Role.REP, "rep-zhang")
        opened = await client.post("/v1/tickets", json=ticket_body(), headers=rep)
        assert opened.status_code == 201, opened.text
        ticket = opened.json()
        read = await client.get(f"/v1/tickets/{ticket['id']}", headers=rep)
        messages = await wait_for_messages(
            nats_url,
            "salesrail.collab.ticket.opened",
            where=lambda e: e.get("data", {}).get("ticket_id") == ticket["id"],
            settle_s=1.0,
        )
    assert ticket == {
        "id": ticket["id"],
        "kind": "technical_support",
        "lead_id": "lead-1",
        "title": "客户要求演示 M8 紧固件自动化产线",
        "details": "设备型号 KX-200；上次痛点：换线时间长。",
        "status": "open",
        "assignee_role": "presales",
        "requested_by": "rep-zhang",
        "opened_at": ticket["opened_at"],
    }
    assert datetime.fromisoformat(ticket["opened_at"]).tzinfo is not None
    assert opened.headers["location"] == f"/v1/tickets/{ticket['id']}"
    assert read.status_code == 200
    assert read.json() == ticket
    assert len(messages) == 1
    envelope = envelope_of(messages[0])
    assert messages[0].headers["Nats-Msg-Id"] == envelope["id"]
    assert envelope["type"] == "collab.ticket.opened"
    assert envelope["source"] == "collab"
    assert envelope["version"] == 1
    assert datetime.fromisoformat(envelope["occurred_at"]).tzinfo is not None
    assert envelope["data"] == {
        "ticket_id": ticket["id"],
        "lead_id": "lead-1",
        "kind": "technical_support",
        "requested_by": "rep-zhang",
        "assignee_role": "presales",
        "assignee_id": None,
    }


async def test_each_kind_of_ticket_lands_with_its_own_role(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        supervisor = await key(app, Role.SUPERVISOR, "supervisor-li")
        finance = await client.post(
            "/v1/tickets",
            json={"kind": "finance_review", "title": "审核付款条件"},
            headers=supervisor,
        )
        after_sales = await client.post(
            "/v1/tickets",
            json={"kind": "after_sales", "title": "客户投诉交货延迟"},
            headers=supervisor,
        )
    assert finance.status_code == 201, finance.text
    assert finance.json()["assignee_role"] == "finance"
    assert finance.json()["lead_id"] is None
    assert finance.json()["details"] is None
    assert after_sales.json()["assignee_role"] == "after_sales"


async def test_a_bad_ticket_is_a_problem_naming_each_field(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        rep = await key(app, Role.REP, "rep-zhang")
        bad_kind = await client.post("/v1/tickets", json=ticket_body(kind="gossip"), headers=rep)
        unknown = await client.post(
            "/v1/tickets", json=ticket_body(assignee_role="admin"), headers=rep
        )
        sizes = await client.post(
            "/v1/tickets", json=ticket_body(title="  ", details="x" * 4001), headers=rep
        )
        too_long = await client.post("/v1/tickets", json=ticket_body(title="x" * 201), headers=rep)
    assert bad_kind.status_code == 422
    assert bad_kind.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad_kind.json()["errors"]] == ["kind"]
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["assignee_role"]
    assert sizes.status_code == 422
    assert {e["field"] for e in sizes.json()["errors"]} == {"title", "details"}
    assert [e["field"] for e in too_long.json()["errors"]] == ["title"]


async def test_a_ticket_is_seen_by_its_requester_its_assignee_role_and_overseers_only(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        rep = await key(app, Role.REP, "rep-zhang")
        opened = await client.post("/v1/tickets", json=ticket_body(), headers=rep)
        path = f"/v1/tickets/{opened.json()['id']}"
        seen = {
            name: (await client.get(path, headers=await key(app, role, name))).status_code
            for name, role in [
                ("presales-wu", Role.PRESALES),
                ("supervisor-li", Role.SUPERVISOR),
                ("admin", Role.ADMIN),
                ("finance-chen", Role.FINANCE),
                ("after-sales-zhao", Role.AFTER_SALES),
                ("rep-wang", Role.REP),
                ("ops", Role.OPS),
                ("bi-tool", Role.INTEGRATION),
            ]
        }
        unknown = await client.get("/v1/tickets/no-such-ticket", headers=rep)
    assert seen == {
        "presales-wu": 200,
        "supervisor-li": 200,
        "admin": 200,
        "finance-chen": 404,
        "after-sales-zhao": 404,
        "rep-wang": 404,
        "ops": 404,
        "bi-tool": 404,
    }
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def test_only_reps_supervisors_and_admins_open_tickets(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        answers = {
            role: (
                await client.post(
                    "/v1/tickets", json=ticket_body(), headers=await key(app, role, f"k-{role}")
                )
            ).status_code
            for role in Role
        }
    assert answers == {
        Role.REP: 201,
        Role.SUPERVISOR: 201,
        Role.ADMIN: 201,
        Role.PRESALES: 403,
        Role.FINANCE: 403,
        Role.AFTER_SALES: 403,
        Role.OPS: 403,
        Role.INTEGRATION: 403,
    }


async def test_tickets_need_a_key_or_a_token(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        opening = await client.post("/v1/tickets", json=ticket_body())
        reading = await client.get("/v1/tickets/anything")
        basic = await client.get("/v1/tickets/anything", headers={"Authorization": "Basic eDp5"})
        forged = await client.get("/v1/tickets/anything", headers={"Authorization": "bearer x.y.z"})
        ready = await client.get("/readyz")
        document = (await client.get("/openapi.json")).json()
    assert basic.status_code == 401
    assert "send an API key" in basic.json()["detail"]
    assert forged.status_code == 401
    assert "bearer token is not valid" in forged.json()["detail"]
    assert set(document["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    assert document["paths"]["/v1/tickets"]["post"]["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert "security" not in document["paths"]["/readyz"]["get"]
    assert opening.status_code == 401
    assert opening.headers["content-type"] == "application/problem+json"
    assert reading.status_code == 401
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "auth_database": "ok", "nats": "ok"}
