"""`POST /v1/activities` with an Idempotency-Key, on a real bus and database (both backends):
a retry answers the first result and creates nothing, whether it comes later, at the same
moment (one batch or two), or from another replica; the key is the caller's own, is refused
with another request, and is not spent by a refused activity."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from activity import capture
from activity.capture import KEY_REUSED, Logged, apply_batch
from activity.models import Activity, Lead
from activity.schemas import ActivityIn
from salesrail.auth.principal import Principal, Role
from salesrail.events.catalog import LeadReassigned
from salesrail.http.problems import ProblemError
from tests.service.activity.helpers import (
    ADMIN,
    CHECKLIST,
    TEAM,
    activity,
    fields_of,
    lead_of,
    make_app,
    rep,
    supervisor,
    upload,
)
from tests.support.apps import running, runtime
from tests.support.bus import wait_for_messages
from tests.support.publishing import envelope_for, eventually, publish
from tests.unit.activity.test_attachments_photo_metadata import exif_jpeg

MEMO = "今天拜访了王总，决策人是王总，预算50-80万，下一步：下周安排方案演示。"


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def activities_on(app: FastAPI, lead_id: str) -> list[str]:
    async with runtime(app).unit_of_work() as uow:
        rows = await uow.session.scalars(
            select(Activity.activity_id).where(Activity.lead_id == lead_id)
        )
        return list(rows)


async def dossier_of(app: FastAPI, lead_id: str) -> dict[str, Any]:
    async with runtime(app).unit_of_work() as uow:
        lead = await uow.session.get(Lead, lead_id)
        assert lead is not None
        return dict(lead.dossier)


async def logged_on(nats_url: str, lead_id: str, *, expected: int = 1) -> list[Any]:
    """The `activity.logged` events of the lead, listening on a while to catch any extra."""
    return await wait_for_messages(
        nats_url,
        "salesrail.activity.logged",
        count=expected,
        where=lambda e: e.get("data", {}).get("lead_id") == lead_id,
        settle_s=1.0,
    )


async def a_visit(client: httpx.AsyncClient, lead_id: str) -> dict[str, Any]:
    """A visit worth answering exactly: facts from its memo, its lead's progress, and an
    `occurred_at` in China's offset (the stored instant is UTC)."""
    photo = await upload(client, lead_id, exif_jpeg(), rep(), "visit.jpg")
    occurred = (datetime.now(UTC) - timedelta(minutes=30)).astimezone(timezone(timedelta(hours=8)))
    return activity(
        lead_id, "visit", attachments=[photo], transcript=MEMO, occurred_at=occurred.isoformat()
    )


def statuses(answers: Sequence[httpx.Response]) -> list[int]:
    return sorted(answer.status_code for answer in answers)


async def test_a_retry_answers_the_first_result_with_200_and_creates_nothing(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = await a_visit(client, lead_id)
        first = await client.post("/v1/activities", json=body, headers=keyed(rep(), "visit-1"))
        assert first.status_code == 201, first.text
        dossier = await dossier_of(app, lead_id)
        again = await client.post("/v1/activities", json=body, headers=keyed(rep(), "visit-1"))
        later = await client.post("/v1/activities", json=body, headers=keyed(rep(), "visit-1"))
        timeline = await client.get(f"/v1/leads/{lead_id}/timeline", headers=rep())
        events = await logged_on(nats_url, lead_id)

        assert again.status_code == later.status_code == 200, again.text
        # The first answer, whole: not the activity judged again (it would no longer be the
        # rep's first contact with the lead, nor hold its stored timestamps).
        assert again.json() == later.json() == first.json()
        assert first.json()["first_contact"] is True
        assert first.json()["occurred_at"] == body["occurred_at"]
        assert await activities_on(app, lead_id) == [first.json()["id"]]
        assert len(events) == 1
        assert await dossier_of(app, lead_id) == dossier
        assert dossier["activities"] == 1
        [item] = timeline.json()["items"]
        assert item["id"] == first.json()["id"]
        assert "lead_after" not in item  # kept to answer retries, not shown

        # Without a key, the same body is a new activity, as before.
        fresh = await client.post("/v1/activities", json=body, headers=rep())
        assert fresh.status_code == 201, fresh.text
        assert fresh.json()["id"] != first.json()["id"]
        assert fresh.json()["first_contact"] is False


async def test_five_identical_requests_at_once_store_one_activity_and_all_answer_it(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = await a_visit(client, lead_id)
        headers = keyed(rep(), "flaky-network")
        answers = await asyncio.gather(
            *(client.post("/v1/activities", json=body, headers=headers) for _ in range(5))
        )
        events = await logged_on(nats_url, lead_id)

    assert statuses(answers) == [200, 200, 200, 200, 201], [a.text for a in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    first = next(a for a in answers if a.status_code == 201).json()
    assert all(answer.json() == first for answer in answers)
    assert await activities_on(app, lead_id) == [first["id"]]
    assert len(events) == 1
    assert (await dossier_of(app, lead_id))["activities"] == 1


async def test_in_one_batch_the_first_request_wins_and_a_repeat_answers_it(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = await a_visit(client, lead_id)
        context = app.state.activity
        caller = Principal("rep-zhang", Role.REP, via="jwt", rep_id="rep-zhang", team_id=TEAM)

        def submission(key: str, **changes: Any) -> capture.Submission:
            return capture.prepare(
                ActivityIn.model_validate(body | changes),
                caller,
                requirements=context.rulebook.requirements,
                now=datetime.now(UTC),
                idempotency_key=key,
            )

        batch = [
            submission("k"),
            submission("k"),
            submission("k", summary="another visit"),
            submission("other"),
        ]
        async with runtime(app).unit_of_work() as uow:
            results = await apply_batch(
                uow,
                batch,
                rulebook=context.rulebook,
                party_threshold=context.settings.party_name_threshold,
            )
        events = await logged_on(nats_url, lead_id, expected=2)

    first, repeat, reused, other = results
    assert isinstance(first, Logged) and first.created
    assert isinstance(repeat, Logged) and not repeat.created
    assert repeat.row["activity_id"] == first.row["activity_id"]
    assert repeat.lead_after() == first.lead_after()
    assert isinstance(reused, ProblemError) and reused.type == KEY_REUSED
    assert isinstance(other, Logged) and other.created
    assert sorted(await activities_on(app, lead_id)) == sorted(
        [first.row["activity_id"], other.row["activity_id"]]
    )
    assert len(events) == 2


async def test_a_retry_after_the_lead_changed_hands_still_gets_its_answer(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = activity(lead_id, "call", summary="first call")
        headers = keyed(rep(), "call-1")
        first = await client.post("/v1/activities", json=body, headers=headers)
        assert first.status_code == 201, first.text
        moved = LeadReassigned(lead_id=lead_id, owner_id="rep-li", reason="left", by="sup-east")
        await publish(nats_url, envelope_for(moved))
        await eventually(
            lambda: client.get(f"/v1/leads/{lead_id}/stage", headers=ADMIN),
            lambda r: r.json()["owner_id"] == "rep-li",
        )
        again = await client.post("/v1/activities", json=body, headers=headers)
        # A new activity on the lead is no longer this rep's to log.
        new = await client.post("/v1/activities", json=body, headers=keyed(rep(), "call-2"))

    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert new.status_code == 404, new.text
    assert await activities_on(app, lead_id) == [first.json()["id"]]


async def test_the_same_key_with_another_request_is_refused_naming_the_header(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = await a_visit(client, lead_id)
        headers = keyed(rep(), "visit-1")
        first = await client.post("/v1/activities", json=body, headers=headers)
        assert first.status_code == 201, first.text
        other = await client.post(
            "/v1/activities", json=body | {"summary": "a second visit"}, headers=headers
        )
        # Another activity under the key is refused even when the first was logged under it...
        note = await client.post(
            "/v1/activities", json=activity(lead_id, "note", summary="hi"), headers=headers
        )
        # ...while the first request itself is still answered.
        again = await client.post("/v1/activities", json=body, headers=headers)
        events = await logged_on(nats_url, lead_id)

    for refused in (other, note):
        assert refused.status_code == 422, refused.text
        assert fields_of(refused) == ["Idempotency-Key"]
        problem = refused.json()
        assert problem["type"] == KEY_REUSED
        assert problem["errors"][0]["in"] == "header"
        assert "Idempotency-Key" in problem["detail"]
    assert again.status_code == 200 and again.json() == first.json()
    assert await activities_on(app, lead_id) == [first.json()["id"]]
    assert len(events) == 1


async def test_the_request_is_compared_as_understood_not_as_typed(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = activity(lead_id, "quote", checklist=CHECKLIST)
        headers = keyed(rep(), "quote-1")
        first = await client.post("/v1/activities", json=body, headers=headers)
        assert first.status_code == 201, first.text
        # The same quote: keys in another order, the time in UTC, a default spelled out.
        when = datetime.fromisoformat(body["occurred_at"]).astimezone(UTC)
        same = {
            "checklist": dict(reversed(list(CHECKLIST.items()))),
            "tech_env_change": False,
            **{k: v for k, v in reversed(body.items()) if k != "checklist"},
            "occurred_at": when.isoformat().replace("+00:00", "Z"),
        }
        again = await client.post("/v1/activities", json=same, headers=headers)

    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert await activities_on(app, lead_id) == [first.json()["id"]]


async def test_keys_are_each_callers_own(app: FastAPI, nats_url: str) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        other_lead = await lead_of(client, nats_url, "rep-li")
        body = activity(lead_id, "call")
        by_rep = await client.post("/v1/activities", json=body, headers=keyed(rep(), "1"))
        # The owner's supervisor logs the very same request under the very same key.
        by_sup = await client.post("/v1/activities", json=body, headers=keyed(supervisor(), "1"))
        # Another rep, on their own lead, uses the key for another activity altogether.
        by_li = await client.post(
            "/v1/activities",
            json=activity(other_lead, "call", rep_id="rep-li"),
            headers=keyed(rep("rep-li"), "1"),
        )
        retried = await client.post("/v1/activities", json=body, headers=keyed(supervisor(), "1"))

    assert [by_rep.status_code, by_sup.status_code, by_li.status_code] == [201, 201, 201]
    assert len({by_rep.json()["id"], by_sup.json()["id"], by_li.json()["id"]}) == 3
    assert retried.status_code == 200 and retried.json()["id"] == by_sup.json()["id"]
    assert sorted(await activities_on(app, lead_id)) == sorted(
        [by_rep.json()["id"], by_sup.json()["id"]]
    )


async def test_a_refused_activity_leaves_its_key_for_the_corrected_one(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        headers = keyed(rep(), "quote-1")
        incomplete = activity(lead_id, "quote", checklist={"freight_included": True})
        refused = await client.post("/v1/activities", json=incomplete, headers=headers)
        refused_again = await client.post("/v1/activities", json=incomplete, headers=headers)
        corrected = activity(lead_id, "quote", checklist=CHECKLIST)
        stored = await client.post("/v1/activities", json=corrected, headers=headers)
        retried = await client.post("/v1/activities", json=corrected, headers=headers)
        events = await logged_on(nats_url, lead_id)

    assert refused.status_code == refused_again.status_code == 422, refused.text
    assert refused.json()["type"] == "urn:salesrail:problem:activity-incomplete"
    assert stored.status_code == 201, stored.text
    assert retried.status_code == 200 and retried.json() == stored.json()
    assert await activities_on(app, lead_id) == [stored.json()["id"]]
    assert len(events) == 1


async def test_a_key_is_1_to_200_characters_named_as_the_header(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        too_long = await client.post(
            "/v1/activities", json=activity(lead_id, "call"), headers=keyed(rep(), "k" * 201)
        )
        empty = await client.post(
            "/v1/activities", json=activity(lead_id, "call"), headers=keyed(rep(), "")
        )
        longest = await client.post(
            "/v1/activities", json=activity(lead_id, "call"), headers=keyed(rep(), "k" * 200)
        )

    for refused in (too_long, empty):
        assert refused.status_code == 422, refused.text
        assert fields_of(refused) == ["Idempotency-Key"]
    assert longest.status_code == 201, longest.text
    assert await activities_on(app, lead_id) == [longest.json()["id"]]


@pytest.mark.parametrize("same_request", [True, False], ids=["same-request", "another-request"])
async def test_the_unique_constraint_decides_a_race_the_lookup_did_not_see(
    app: FastAPI, nats_url: str, monkeypatch: pytest.MonkeyPatch, same_request: bool
) -> None:
    """As another replica would: its lookup ran before the winner committed, so its insert
    meets the unique constraint; the loser then answers with the winner's result."""
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = activity(lead_id, "call", summary="first")
        headers = keyed(rep(), "call-1")
        first = await client.post("/v1/activities", json=body, headers=headers)
        assert first.status_code == 201, first.text

        looked_up = capture._stored_firsts
        missed: list[bool] = []

        async def blind_once(uow: Any, items: Any) -> Any:
            if not missed:
                missed.append(True)
                return {}
            return await looked_up(uow, items)

        monkeypatch.setattr(capture, "_stored_firsts", blind_once)
        loser = body if same_request else body | {"summary": "second"}
        answer = await client.post("/v1/activities", json=loser, headers=headers)
        events = await logged_on(nats_url, lead_id)

    assert missed, "the race was not staged"
    if same_request:
        assert answer.status_code == 200, answer.text
        assert answer.json() == first.json()
    else:
        assert answer.status_code == 422, answer.text
        assert fields_of(answer) == ["Idempotency-Key"]
    assert await activities_on(app, lead_id) == [first.json()["id"]]
    assert len(events) == 1
    assert (await dossier_of(app, lead_id))["activities"] == 1


async def test_two_replicas_answer_the_same_retry_with_one_activity(
    app: FastAPI,
    database_url: str,
    auth_database_url: str,
    nats_url: str,
    tmp_path: Path,
) -> None:
    replica = make_app(database_url, auth_database_url, nats_url, tmp_path / "replica")
    async with running(app) as one, running(replica) as two:
        lead_id = await lead_of(one, nats_url)
        await lead_of_seen(two, lead_id)
        body = activity(lead_id, "note", summary=f"note {uuid.uuid4()}")
        headers = keyed(rep(), "note-1")
        answers = await asyncio.gather(
            *(
                client.post("/v1/activities", json=body, headers=headers)
                for client in (one, two, one, two)
            )
        )
        events = await logged_on(nats_url, lead_id)

    assert statuses(answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert await activities_on(app, lead_id) == [answers[0].json()["id"]]
    assert len(events) == 1


async def lead_of_seen(client: httpx.AsyncClient, lead_id: str) -> None:
    """Both replicas share one database: the lead the first heard of is the second's too."""
    answer = await client.get(f"/v1/leads/{lead_id}/stage", headers=rep())
    assert answer.status_code == 200, answer.text


async def test_every_activity_without_a_key_is_stored_as_before(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = activity(lead_id, "call")
        answers = await asyncio.gather(
            *(client.post("/v1/activities", json=body, headers=rep()) for _ in range(3))
        )
        events = await logged_on(nats_url, lead_id, expected=3)

    assert statuses(answers) == [201, 201, 201]
    async with runtime(app).unit_of_work() as uow:
        keys = await uow.session.scalar(
            select(func.count())
            .select_from(Activity)
            .where(Activity.lead_id == lead_id, Activity.idempotency_key.is_not(None))
        )
    assert keys == 0
    assert len(await activities_on(app, lead_id)) == 3
    assert len(events) == 3


async def test_an_empty_or_over_long_key_is_refused_naming_the_header(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        body = activity(lead_id, "note", summary="hi")
        empty = await client.post("/v1/activities", json=body, headers=keyed(rep(), ""))
        long = await client.post("/v1/activities", json=body, headers=keyed(rep(), "k" * 201))
    for refused, code in ((empty, "string_too_short"), (long, "string_too_long")):
        assert refused.status_code == 422, refused.text
        assert fields_of(refused) == ["Idempotency-Key"]
        assert refused.json()["errors"][0]["in"] == "header"
        assert refused.json()["errors"][0]["code"] == code
    assert await activities_on(app, lead_id) == []


async def test_the_openapi_document_describes_the_activity_body_and_its_key(app: FastAPI) -> None:
    async with running(app) as client:
        document = (await client.get("/openapi.json")).json()
    log = document["paths"]["/v1/activities"]["post"]
    body = log["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ActivityIn"}
    schemas = document["components"]["schemas"]
    assert {"lead_id", "rep_id", "type", "occurred_at"} <= set(schemas["ActivityIn"]["required"])
    assert {"checklist", "party_name", "attachments"} <= set(schemas["ActivityIn"]["properties"])
    key = log["parameters"][0]
    assert (key["name"], key["in"], key["schema"]["minLength"]) == ("Idempotency-Key", "header", 1)
    assert set(log["responses"]) >= {"200", "201", "404", "422"}
