"""A lead's timeline through the real app (both backends): newest first, a stable cursor,
personal data masked outside the owner's side."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from salesrail.auth.principal import Role
from tests.service.activity.helpers import (
    ADMIN,
    activity,
    ago,
    fields_of,
    lead_of,
    person,
    rep,
    supervisor,
)
from tests.support.apps import running

MEMO = "见了王建国，他是决策人，电话13812345678；李工负责技术"


async def note(client: httpx.AsyncClient, lead_id: str, minutes_ago: float, text: str) -> str:
    body = activity(lead_id, "note", occurred_at=ago(minutes=minutes_ago), summary=text)
    answer = await client.post("/v1/activities", json=body, headers=rep())
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def all_pages(
    client: httpx.AsyncClient, lead_id: str, limit: int, between_pages: Any = None
) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = await client.get(f"/v1/leads/{lead_id}/timeline", params=params, headers=rep())
        assert answer.status_code == 200, answer.text
        pages.append([item["id"] for item in answer.json()["items"]])
        cursor = answer.json()["next_cursor"]
        if between_pages is not None and len(pages) == 1:
            await between_pages()
        if cursor is None:
            return pages


async def test_the_timeline_pages_newest_first_and_inserts_never_shift_a_page(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        ids = [
            await note(client, lead_id, minutes, f"第{minutes}分钟")
            for minutes in (50, 40, 30, 20, 10)
        ]
        await client.post(
            f"/v1/leads/{lead_id}/stage", json={"to": "lost", "reason": "预算取消"}, headers=rep()
        )
        newest_first = await all_pages(client, lead_id, limit=2)

        async def insert_meanwhile() -> None:
            await note(client, lead_id, 0.5, "刚刚")  # newer than everything already paged
            await note(client, lead_id, 35, "补录")  # older: appears where it belongs

        paged = await all_pages(client, lead_id, limit=2, between_pages=insert_meanwhile)

    [[change, fifth], [fourth, third], [second, first]] = newest_first
    assert [fifth, fourth, third, second, first] == ids[::-1]
    flat = [item for page in paged for item in page]
    assert flat[:2] == [change, fifth]  # the first page, read before the inserts
    assert len(flat) == len(set(flat)) == 7  # nothing repeated; the older insert included
    assert flat[2:4] == [fourth, third]


async def test_personal_data_is_masked_for_everyone_but_the_owners_side(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        logged = await client.post(
            "/v1/activities",
            json=activity(
                lead_id, "call", transcript=MEMO, contacts=["王建国"], summary="王建国来电"
            ),
            headers=rep(),
        )
        assert logged.status_code == 201, logged.text
        seen = {
            name: (await client.get(f"/v1/leads/{lead_id}/timeline", headers=headers)).json()
            for name, headers in {
                "owner": rep(),
                "supervisor": supervisor(),
                "admin": ADMIN,
                "other supervisor": supervisor("west"),
                "ops": person("ops-1", Role.OPS),
                "presales": person("pre-1", Role.PRESALES),
            }.items()
        }

    for name in ("owner", "supervisor", "admin"):
        [item] = seen[name]["items"]
        assert item["transcript"] == MEMO, name
        assert "王建国" in item["key_people"], name
    for name in ("other supervisor", "ops", "presales"):
        [item] = seen[name]["items"]
        text = item["transcript"] + item["summary"] + str(item["details"]) + str(item["facts"])
        assert "13812345678" not in text and "138****5678" in item["transcript"], name
        assert "王建国" not in text and "王**" in item["summary"], name
        assert "王建国" not in item["key_people"] and "王**" in item["key_people"], name
        assert item["details"]["contacts"] == ["王**"], name


async def test_reading_a_timeline_needs_sight_of_the_lead_and_a_real_cursor(
    app: FastAPI, nats_url: str
) -> None:
    async with running(app) as client:
        lead_id = await lead_of(client, nats_url)
        other_rep = await client.get(f"/v1/leads/{lead_id}/timeline", headers=rep("rep-li"))
        bad_cursor = await client.get(
            f"/v1/leads/{lead_id}/timeline", params={"cursor": "not-ours"}, headers=rep()
        )
        bad_limit = await client.get(
            f"/v1/leads/{lead_id}/timeline", params={"limit": 0}, headers=rep()
        )
        integration = await client.get(
            f"/v1/leads/{lead_id}/timeline", headers=person("crm", Role.INTEGRATION)
        )
    assert other_rep.status_code == 404
    assert fields_of(bad_cursor) == ["cursor"]
    assert fields_of(bad_limit) == ["limit"]
    assert integration.status_code == 403
