"""Routing, scoring, duplicates, the pool and access, through lead-router's public API on a
real bus and database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from lead_router.config import Settings
from lead_router.main import create_app
from salesrail.auth.jwt_tokens import issue_token
from salesrail.auth.principal import Role
from tests.support.apps import api_key, running
from tests.support.bus import envelope_of, untouched_alert, wait_for_messages

JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def person(subject: str, role: Role, **claims: Any) -> dict[str, str]:
    """A person's bearer token, as a frontend sends it."""
    token = issue_token(
        secret=JWT_SECRET,
        subject=subject,
        role=role,
        issuer="salesrail",
        audience="salesrail",
        now=time.time(),
        **claims,
    )
    return {"Authorization": f"Bearer {token}"}


ROUTING = """
rules:
  - name: hangzhou-fasteners
    when: {city: [杭州], category: [fasteners, 紧固件]}
    assign: {reps: [rep-zhang, rep-li], strategy: round_robin}
  - name: zhejiang-high-grade
    when: {province: [浙江], grade: [A]}
    assign: {team: east-china, strategy: least_loaded}
default: {pool: public}
"""


@pytest.fixture
def app(database_url: str, auth_database_url: str, fresh_nats_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_app(
        Settings(
            database_url=database_url,
            auth_database_url=auth_database_url,
            nats_url=fresh_nats_url,
            data_dir=tmp_path,
            rules_refresh_s=0.2,
            jwt_secret=JWT_SECRET,
            channel_keys=Fernet.generate_key().decode(),
        )
    )


def lead(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "website",
        "company_name": f"测试{uuid.uuid4().hex[:6]}贸易有限公司",
        "contact_name": "王总",
        "phone": _phone(),
        "city": "杭州",
        "category": "紧固件",
    }
    body.update(overrides)
    return body


def _phone() -> str:
    return "139" + str(uuid.uuid4().int)[:8]


async def setup_directory(client: Any, ops: dict[str, str]) -> None:
    assert (
        await client.put(
            "/v1/teams/east-china", json={"name": "华东", "supervisor_id": "sup-wu"}, headers=ops
        )
    ).status_code in (200, 201)
    for rep_id, extra in {
        "rep-zhang": {},
        "rep-li": {},
        "rep-wang": {"cap": 1},
        "rep-zhao": {"status": "away"},
    }.items():
        body = {"name": rep_id, "team_id": "east-china", "cities": ["杭州"], **extra}
        answer = await client.put(f"/v1/reps/{rep_id}", json=body, headers=ops)
        assert answer.status_code in (200, 201), answer.text
    answer = await client.put("/v1/rules/routing", json={"yaml": ROUTING}, headers=ops)
    assert answer.status_code == 200, answer.text


async def test_leads_are_routed_by_city_and_category_in_turn_with_a_readable_trace(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        web = await api_key(app, Role.INTEGRATION)
        await setup_directory(client, ops)
        answers = [
            (await client.post("/v1/leads", json=lead(city=city), headers=web)).json()
            for city in ("杭州", "杭州市", "Hangzhou", "hangzhou")
        ]
    assert [a["status"] for a in answers] == ["routed"] * 4
    assert [a["owner_id"] for a in answers] == ["rep-zhang", "rep-li", "rep-zhang", "rep-li"]
    assert answers[1]["route"] == (
        "rule hangzhou-fasteners matched city=杭州市, category=紧固件; round-robin picked rep-li"
    )
    assert {a["city_name"] for a in answers} == {"杭州市"}
    assert all(a["grade"] in {"A", "B", "C"} and 0 <= a["score"] <= 100 for a in answers)


async def test_a_lead_no_rule_takes_goes_to_the_public_pool_and_is_announced(app, fresh_nats_url):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        answer = await client.post(
            "/v1/leads", json=lead(city="成都", category="包装"), headers=ops
        )
        pooled = await wait_for_messages(
            fresh_nats_url,
            "salesrail.lead.pooled",
            where=lambda e: e["data"]["lead_id"] == answer.json()["id"],
        )
    assert answer.json()["status"] == "pooled"
    assert answer.json()["owner_id"] is None
    assert "no rule matched" in answer.json()["route"]
    assert len(pooled) == 1


async def test_the_pool_pages_newest_first_by_cursor_and_refuses_a_forged_cursor(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        ids = []
        for _ in range(3):
            answer = await client.post(
                "/v1/leads",
                json=lead(city="成都", category="包装"),
                headers=ops,
            )
            ids.append(answer.json()["id"])
        seen, cursor = [], None
        for _ in range(5):
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/pool", params=params, headers=ops)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        forged = await client.get("/v1/pool", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=ops)
    assert seen == ids[::-1]  # each once, newest first
    assert forged.status_code == 422
    assert forged.json()["errors"][0]["field"] == "cursor"


async def test_the_seeds_high_potential_company_scores_grade_a_with_its_reasons(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        strong = await client.post(
            "/v1/leads",
            json=lead(
                company_name="杭州恒固紧固件有限公司",
                category="机床",
                budget=500000,
                purchase_timeframe="三个月内",
            ),
            headers=ops,
        )
        weak = await client.post(
            "/v1/leads",
            json=lead(company_name="杭州萧华包装材料有限公司", category="机床"),
            headers=ops,
        )
    strong_lead, weak_lead = strong.json(), weak.json()
    assert strong_lead["enrichment"]["insured_headcount"] == 186
    assert strong_lead["grade"] == "A"
    assert strong_lead["qualified"] is True
    factors = {r["factor"] for r in strong_lead["score_reasons"]}
    assert {"established", "insured-staff", "manufacturing", "high-potential"} <= factors
    # Grade A in 浙江 -> the province rule, least loaded in the team.
    assert strong_lead["route"].startswith(
        "rule zhejiang-high-grade matched province=浙江省, grade=A"
    )
    assert weak_lead["grade"] in {"B", "C"}
    assert weak_lead["qualified"] is False
    assert "high-potential" not in {r["factor"] for r in weak_lead["score_reasons"]}


async def test_away_reps_and_full_caps_are_skipped_and_counts_stay_exact_under_concurrency(app):  # type: ignore[no-untyped-def]
    rules = """
rules:
  - name: cap-test
    when: {city: [宁波]}
    assign: {reps: [rep-zhao, rep-wang, rep-li], strategy: least_loaded}
"""
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        assert (
            await client.put("/v1/rules/routing", json={"yaml": rules}, headers=ops)
        ).status_code == 200
        answers = await asyncio.gather(
            *(client.post("/v1/leads", json=lead(city="宁波"), headers=ops) for _ in range(6))
        )
        reps = {r["id"]: r for r in (await client.get("/v1/reps", headers=ops)).json()}
    owners = [a.json()["owner_id"] for a in answers]
    assert "rep-zhao" not in owners  # away
    assert owners.count("rep-wang") == 1  # cap 1
    assert owners.count("rep-li") == 5
    assert reps["rep-wang"]["open_leads"] == 1
    assert reps["rep-li"]["open_leads"] == 5


async def test_a_bad_rule_set_is_refused_naming_the_rule_and_the_old_one_stays(app):  # type: ignore[no-untyped-def]
    bad = """
rules:
  - name: good
    when: {city: [杭州]}
    assign: {rep: rep-zhang}
  - name: typo-city
    when: {city: [杭洲不存在]}
    assign: {rep: rep-li}
  - name: ghost
    when: {city: [宁波]}
    assign: {rep: rep-nobody}
"""
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        before = (await client.get("/v1/rules/routing", headers=ops)).json()
        refused = await client.put("/v1/rules/routing", json={"yaml": bad}, headers=ops)
        broken_yaml = await client.put(
            "/v1/rules/routing", json={"yaml": "rules: [oops"}, headers=ops
        )
        no_strategy_target = await client.put(
            "/v1/rules/routing",
            json={"yaml": "rules:\n  - name: x\n    assign: {}\n"},
            headers=ops,
        )
        after = (await client.get("/v1/rules/routing", headers=ops)).json()
        routed = (await client.post("/v1/leads", json=lead(), headers=ops)).json()
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert {e["rule"] for e in refused.json()["errors"]} == {"typo-city", "ghost"}
    assert broken_yaml.status_code == 422
    assert no_strategy_target.status_code == 422
    assert no_strategy_target.json()["errors"][0]["rule"] == "x"
    assert after["version"] == before["version"]
    assert routed["route"].startswith("rule hangzhou-fasteners")


async def test_simulation_answers_which_rule_would_fire_and_changes_nothing(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        first = await client.post("/v1/rules/routing/simulate", json=lead(), headers=ops)
        second = await client.post("/v1/rules/routing/simulate", json=lead(), headers=ops)
        graded = await client.post(
            "/v1/rules/routing/simulate", json=lead(city="温州", grade="A"), headers=ops
        )
        reps = (await client.get("/v1/reps", headers=ops)).json()
        routed = (await client.post("/v1/leads", json=lead(), headers=ops)).json()
    assert first.status_code == 200, first.text
    assert first.json()["rule"] == "hangzhou-fasteners"
    assert "matched city=杭州市, category=紧固件" in first.json()["explanation"]
    # Nothing moved: the same rep again, no open leads counted, the real lead gets rep-zhang.
    assert second.json()["candidates"] == first.json()["candidates"] == ["rep-zhang"]
    assert all(r["open_leads"] == 0 for r in reps)
    assert routed["owner_id"] == "rep-zhang"
    assert graded.json()["rule"] == "zhejiang-high-grade"


async def test_a_returning_customer_is_linked_to_the_first_lead_and_its_owner(app, fresh_nats_url):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        first = (await client.post("/v1/leads", json=lead(phone="13812340001"), headers=ops)).json()
        same_phone = (
            await client.post(
                "/v1/leads", json=lead(phone="+86 138 1234 0001", source="douyin"), headers=ops
            )
        ).json()
        original = (
            await client.post(
                "/v1/leads",
                json=lead(company_name="杭州某某紧固件有限公司", city="宁波"),
                headers=ops,
            )
        ).json()
        same_company = (
            await client.post(
                "/v1/leads",
                json=lead(company_name="某某紧固件（杭州）有限公司", city="宁波"),
                headers=ops,
            )
        ).json()
        events = await wait_for_messages(
            fresh_nats_url, "salesrail.lead.duplicate_detected", count=2
        )
    assert same_phone["status"] == "duplicate"
    assert same_phone["duplicate_of"] == first["id"]
    assert same_phone["owner_id"] == first["owner_id"] == "rep-zhang"
    assert same_company["status"] == "duplicate"
    assert same_company["duplicate_of"] == original["id"]
    assert sorted(envelope_of(m)["data"]["matched_on"] for m in events) == ["company_name", "phone"]


async def test_of_many_concurrent_claimers_exactly_one_wins(app, fresh_nats_url):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        pooled = (await client.post("/v1/leads", json=lead(city="成都"), headers=ops)).json()
        claimers = [
            await api_key(app, Role.REP, rep_id=r) for r in ("rep-zhang", "rep-li", "rep-wang")
        ]
        answers = await asyncio.gather(
            *(client.post(f"/v1/leads/{pooled['id']}/claim", headers=h) for h in claimers * 2)
        )
        claimed = await wait_for_messages(fresh_nats_url, "salesrail.lead.claimed", settle_s=0.5)
        listed = (await client.get("/v1/reps", headers=ops)).json()
        reps = {r["id"]: r["open_leads"] for r in listed}
        reps_teams = {r["id"]: r["team_id"] for r in listed}
        pool = (await client.get("/v1/pool", headers=ops)).json()
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409, 409, 409, 409, 409]
    winner = next(a.json()["owner_id"] for a in answers if a.status_code == 200)
    assert len(claimed) == 1 and envelope_of(claimed[0])["data"]["owner_id"] == winner
    assert envelope_of(claimed[0])["data"]["team_id"] == reps_teams[winner]
    assert sum(reps.values()) == 1 and reps[winner] == 1
    assert pooled["id"] not in {item["id"] for item in pool["items"]}


async def test_reps_read_only_their_own_leads_and_others_see_masked_phones(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        mine = (await client.post("/v1/leads", json=lead(phone="13700001111"), headers=ops)).json()
        zhang = await api_key(app, Role.REP, rep_id="rep-zhang")
        li = await api_key(app, Role.REP, rep_id="rep-li")
        supervisor = await api_key(app, Role.SUPERVISOR)
        as_owner = await client.get(f"/v1/leads/{mine['id']}", headers=zhang)
        as_other_rep = await client.get(f"/v1/leads/{mine['id']}", headers=li)
        as_ops = await client.get(f"/v1/leads/{mine['id']}", headers=ops)
        as_foreign_supervisor = await client.get(f"/v1/leads/{mine['id']}", headers=supervisor)
    assert as_owner.status_code == 200
    assert as_owner.json()["phone"] == "+8613700001111"
    assert [h["kind"] for h in as_owner.json()["history"]] == ["received", "routed"]
    assert as_other_rep.status_code == 404
    assert as_ops.json()["phone"] == "137****1111"
    assert as_foreign_supervisor.status_code == 404


async def test_a_supervisor_reassigns_with_a_reason_and_the_counts_follow(app, fresh_nats_url):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        first = (await client.post("/v1/leads", json=lead(), headers=ops)).json()
        wu = person("sup-wu", Role.SUPERVISOR)  # east-china's supervisor
        stranger = person("sup-other", Role.SUPERVISOR)
        as_stranger = await client.post(
            f"/v1/leads/{first['id']}/reassign",
            json={"owner_id": "rep-li", "reason": "想要这个客户"},
            headers=stranger,
        )
        missing_reason = await client.post(
            f"/v1/leads/{first['id']}/reassign", json={"owner_id": "rep-li"}, headers=wu
        )
        as_rep = await client.post(
            f"/v1/leads/{first['id']}/reassign",
            json={"owner_id": "rep-li", "reason": "x"},
            headers=person("rep-zhang", Role.REP),
        )
        moved = await client.post(
            f"/v1/leads/{first['id']}/reassign",
            json={"owner_id": "rep-li", "reason": "客户要求换人"},
            headers=wu,
        )
        as_supervisor = await client.get(f"/v1/leads/{first['id']}", headers=wu)
        reps = {
            r["id"]: r["open_leads"] for r in (await client.get("/v1/reps", headers=ops)).json()
        }
        events = await wait_for_messages(fresh_nats_url, "salesrail.lead.reassigned")
    assert as_stranger.status_code == 404
    assert missing_reason.status_code == 422
    assert as_rep.status_code == 403
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner_id"] == "rep-li"
    assert as_supervisor.json()["phone"].startswith("+86"), "the owner's supervisor sees it all"
    assert reps["rep-zhang"] == 0 and reps["rep-li"] == 1
    event = envelope_of(events[0])["data"]
    assert event["team_id"] == "east-china"
    assert (event["reason"], event["by"], event["previous_owner_id"]) == (
        "客户要求换人",
        "sup-wu",
        "rep-zhang",
    )


async def test_an_untouched_72h_alert_releases_the_lead_and_routes_it_to_someone_else(
    app, fresh_nats_url
):  # type: ignore[no-untyped-def]
    import nats

    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        first = (await client.post("/v1/leads", json=lead(), headers=ops)).json()
        assert first["owner_id"] == "rep-zhang"
        nc = await nats.connect(fresh_nats_url)
        js = nc.jetstream()
        for owner in ("rep-somebody-else", "rep-zhang"):  # a stale alert first
            alert = untouched_alert(first["id"], owner)
            await js.publish("salesrail.sla.alert.untouched_72h", alert)
        await nc.close()
        routed = await wait_for_messages(
            fresh_nats_url,
            "salesrail.lead.routed",
            count=2,
            where=lambda e: e["data"]["lead_id"] == first["id"],
        )
        pooled = await wait_for_messages(
            fresh_nats_url,
            "salesrail.lead.pooled",
            settle_s=0.5,
            where=lambda e: e["data"]["lead_id"] == first["id"],
        )
        after = (await client.get(f"/v1/leads/{first['id']}", headers=ops)).json()
        reps = {
            r["id"]: r["open_leads"] for r in (await client.get("/v1/reps", headers=ops)).json()
        }
    assert len(pooled) == 1, "the stale alert (another owner) changed nothing"
    assert envelope_of(pooled[0])["data"]["previous_owner_id"] == "rep-zhang"
    rerouted = envelope_of(routed[1])["data"]
    assert rerouted["owner_id"] == "rep-li" and rerouted["previous_owner_id"] == "rep-zhang"
    assert after["owner_id"] == "rep-li"
    assert [h["kind"] for h in after["history"]] == ["received", "routed", "released", "routed"]
    assert reps["rep-zhang"] == 0 and reps["rep-li"] == 1


async def test_a_rules_update_during_a_stream_of_leads_loses_none_and_mixes_no_versions(
    app, fresh_nats_url
):  # type: ignore[no-untyped-def]
    new_rules = """
rules:
  - name: hangzhou-to-wang
    when: {city: [杭州]}
    assign: {rep: rep-li}
"""
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)

        async def stream() -> list[Any]:
            return list(
                await asyncio.gather(
                    *(client.post("/v1/leads", json=lead(), headers=ops) for _ in range(40))
                )
            )

        answers, swap = await asyncio.gather(
            stream(), client.put("/v1/rules/routing", json={"yaml": new_rules}, headers=ops)
        )
        received = await wait_for_messages(
            fresh_nats_url, "salesrail.lead.received", count=40, settle_s=0.5
        )
    assert swap.status_code == 200
    assert all(a.status_code == 201 for a in answers)
    leads = [a.json() for a in answers]
    assert len({item["id"] for item in leads}) == 40 and len(received) == 40
    for item in leads:
        if item["route_rule"] == "hangzhou-to-wang":
            assert item["owner_id"] == "rep-li"
        else:
            assert item["route_rule"] == "hangzhou-fasteners"
            assert item["owner_id"] in {"rep-zhang", "rep-li"}
            assert "round-robin" in item["route"]


async def test_reps_and_teams_are_managed_and_a_rep_with_open_leads_cannot_be_removed(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await setup_directory(client, ops)
        await client.post("/v1/leads", json=lead(), headers=ops)  # -> rep-zhang
        secret = "x" * 24
        updated = await client.put(
            "/v1/reps/rep-li",
            headers=ops,
            json={
                "name": "李四",
                "team_id": "east-china",
                "cities": ["杭州"],
                "cap": 30,
                "roles": ["trainer", "trainer"],
                "channels": [
                    {
                        "id": "hook",
                        "type": "webhook",
                        "url": "https://hooks.example.com/a?token=t",
                        "secret": secret,
                    }
                ],
            },
        )
        bad_team = await client.put(
            "/v1/reps/rep-x", json={"name": "x", "team_id": "nope"}, headers=ops
        )
        bad_role = await client.put(
            "/v1/reps/rep-x", json={"name": "x", "roles": ["Sales Director!"]}, headers=ops
        )
        busy = await client.delete("/v1/reps/rep-zhang", headers=ops)
        gone = await client.delete("/v1/reps/rep-zhao", headers=ops)
        missing = await client.get("/v1/reps/rep-zhao", headers=ops)
        team_in_use = await client.delete("/v1/teams/east-china", headers=ops)
        as_rep = await client.put(
            "/v1/reps/rep-y",
            json={"name": "y"},
            headers=await api_key(app, Role.REP, rep_id="rep-li"),
        )
    assert updated.status_code == 200
    assert updated.json()["cap"] == 30
    assert updated.json()["roles"] == ["trainer"]
    assert bad_role.status_code == 422
    assert bad_role.json()["errors"][0]["field"].startswith("roles")
    channel = updated.json()["channels"][0]
    assert secret not in str(channel) and "token" not in channel["url"]
    assert bad_team.status_code == 422 and bad_team.json()["errors"][0]["field"] == "team_id"
    assert busy.status_code == 409
    assert gone.status_code == 204 and missing.status_code == 404
    assert team_in_use.status_code == 409
    assert as_rep.status_code == 403
