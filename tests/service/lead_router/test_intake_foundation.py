"""lead-router's intake path on a real bus and a real database (both backends)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from lead_router.config import Settings
from lead_router.main import create_app
from salesrail.auth.principal import Role
from tests.support.apps import api_key, running, service_app
from tests.support.bus import envelope_of, wait_for_messages


def lead_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "source": "website",
        "company_name": "杭州某某紧固件有限公司",
        "contact_name": "王总",
        "phone": "13812345678",
        "city": "杭州",
        "category": "紧固件",
    }
    body.update(overrides)
    return body


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


async def test_a_submitted_lead_is_stored_and_announced_once_on_the_bus(app, nats_url):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        headers["Idempotency-Key"] = uuid.uuid4().hex
        first = await client.post("/v1/leads", json=lead_body(), headers=headers)
        again = await client.post("/v1/leads", json=lead_body(), headers=headers)

        assert first.status_code == 201, first.text
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        lead_id = first.json()["id"]
        messages = await wait_for_messages(
            nats_url,
            "salesrail.lead.received",
            where=lambda e: e.get("data", {}).get("lead_id") == lead_id,
            settle_s=1.0,
        )
    assert len(messages) == 1
    envelope = envelope_of(messages[0])
    assert messages[0].headers["Nats-Msg-Id"] == envelope["id"]
    assert envelope["type"] == "lead.received"
    assert envelope["source"] == "lead-router"
    assert envelope["version"] == 1
    assert envelope["data"]["company_name"] == "杭州某某紧固件有限公司"


async def test_concurrent_retries_of_one_lead_make_one_lead(app, nats_url):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        body = lead_body(external_id=f"ext-{uuid.uuid4().hex}")
        answers = await asyncio.gather(
            *(client.post("/v1/leads", json=body, headers=headers) for _ in range(8))
        )
        ids = {a.json()["id"] for a in answers}
        assert [a.status_code for a in answers].count(201) == 1
        assert len(ids) == 1
        messages = await wait_for_messages(
            nats_url,
            "salesrail.lead.received",
            where=lambda e: e.get("data", {}).get("lead_id") in ids,
            settle_s=1.0,
        )
    assert len(messages) == 1


async def test_the_answer_to_a_submission_is_the_stored_lead_as_read_back(app):  # type: ignore[no-untyped-def]
    # The intake answer is serialised by the route itself; it must be what `LeadOut` gives
    # for the stored lead, field for field and in the same order (read back by an admin,
    # who sees the whole phone number too).
    async with running(app) as client:
        headers = await api_key(app, Role.ADMIN)
        headers["Idempotency-Key"] = uuid.uuid4().hex
        body = lead_body(
            email="wang@example.com",
            budget=50000,
            tags=["展会", "回访"],
            notes="请尽快联系",
            purchase_timeframe="3 个月内",
            external_id=f"ext-{uuid.uuid4().hex}",
        )
        first = await client.post("/v1/leads", json=body, headers=headers)
        again = await client.post("/v1/leads", json=body, headers=headers)
        stored = await client.get(f"/v1/leads/{first.json()['id']}", headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert int(first.headers["content-length"]) == len(first.content)
    read_back = stored.json()
    assert len(read_back.pop("history")) >= 2
    assert list(first.json()) == [*read_back, "history"]
    assert first.json() == {**read_back, "history": None}
    assert again.content == first.content


async def test_a_retry_gets_the_first_result_whatever_it_says_now(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        keyed = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        external_id = f"ext-{uuid.uuid4().hex}"
        first = await client.post("/v1/leads", json=lead_body(), headers=keyed)
        by_key = await client.post(
            "/v1/leads", json=lead_body(received_at="2099-01-01T00:00:00+08:00"), headers=keyed
        )
        by_id = await client.post(
            "/v1/leads", json=lead_body(external_id=external_id), headers=headers
        )
        by_id_again = await client.post(
            "/v1/leads",
            json=lead_body(external_id=external_id, received_at="2099-01-01T00:00:00+08:00"),
            headers=headers,
        )
    assert first.status_code == 201, first.text
    assert (by_key.status_code, by_key.json()["id"]) == (200, first.json()["id"])
    assert by_id.status_code == 201, by_id.text
    assert (by_id_again.status_code, by_id_again.json()["id"]) == (200, by_id.json()["id"])


async def test_bad_input_is_a_problem_naming_each_field_and_stores_nothing(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        bad = await client.post(
            "/v1/leads", json=lead_body(owner_id="rep-zhang", phone="", city=None), headers=headers
        )
        future = await client.post(
            "/v1/leads", json=lead_body(received_at="2099-01-01T00:00:00+08:00"), headers=headers
        )
        malformed = await client.post(
            "/v1/leads",
            content=b"{not json",
            headers={**headers, "content-type": "application/json"},
        )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in bad.json()["errors"]} == {"owner_id", "phone", "city"}
    assert future.status_code == 422
    assert [e["field"] for e in future.json()["errors"]] == ["received_at"]
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "body"


async def test_an_over_long_idempotency_key_is_refused_naming_the_header(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        headers = await api_key(app, Role.INTEGRATION)
        answer = await client.post(
            "/v1/leads", json=lead_body(), headers={**headers, "Idempotency-Key": "k" * 201}
        )
        empty = await client.post("/v1/leads", json=lead_body(), headers=headers)
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {
            "field": "Idempotency-Key",
            "in": "header",
            "message": "String should have at most 200 characters",
            "code": "string_too_long",
        }
    ]
    assert empty.status_code == 201, empty.text  # the refused one stored nothing in between


async def test_the_openapi_document_describes_the_lead_body_and_its_header(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        document = (await client.get("/openapi.json")).json()
    submit = document["paths"]["/v1/leads"]["post"]
    body = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/LeadIn"}
    lead_in = document["components"]["schemas"]["LeadIn"]
    assert {"source", "company_name", "phone", "city", "category"} <= set(lead_in["required"])
    assert lead_in["additionalProperties"] is False  # no mass assignment
    assert "owner_id" not in lead_in["properties"]
    assert [(p["name"], p["in"]) for p in submit["parameters"]] == [("Idempotency-Key", "header")]
    assert submit["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert set(submit["responses"]) >= {"200", "201", "422"}


async def test_v1_routes_need_a_key_or_a_token(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        missing = await client.post("/v1/leads", json=lead_body())
        wrong = await client.post("/v1/leads", json=lead_body(), headers={"X-API-Key": "srk_x_y"})
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 401
    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "auth_database": "ok",
        "nats": "ok",
        "consumers": "ok",
    }


async def test_the_asyncapi_document_lists_what_the_service_publishes(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        document = (await client.get("/asyncapi.json")).json()
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert "salesrail.lead.received" in addresses
    schemas = document["components"]["schemas"]
    assert "lead_id" in schemas["LeadReceived"]["properties"]
