"""GET/PUT /v1/policies: versioned with who and when; a bad document changes nothing."""

from __future__ import annotations

from salesrail.auth.principal import Role
from sla_monitor.policybook import DEFAULTS
from tests.support.apps import api_key, running

ONE_POLICY = """
policies:
  - name: first_touch_24h
    entity: lead
    start: [{event: lead.received}]
    start_at: received_at
    duration: 24h
    calendar: {kind: business_hours, working_hours: ["09:00-18:00"]}
    breach: {severity: high, notify: [owner, supervisor]}
"""


async def test_the_shipped_policies_are_version_1_and_a_put_stores_version_2_with_who(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        first = await client.get("/v1/policies", headers=ops)
        put = await client.put("/v1/policies", json={"yaml": ONE_POLICY}, headers=ops)
        now = await client.get("/v1/policies", headers=ops)
    assert first.status_code == 200
    assert first.json()["version"] == 1
    assert first.json()["created_by"] == "defaults"
    assert first.json()["yaml"] == DEFAULTS.read_text(encoding="utf-8")
    assert put.status_code == 200, put.text
    assert now.json()["version"] == 2
    assert now.json()["yaml"] == ONE_POLICY
    assert now.json()["created_by"].startswith("api_key:") or now.json()["created_by"]


async def test_a_bad_document_is_refused_with_422_naming_policy_and_field_and_nothing_changes(
    app,
):  # type: ignore[no-untyped-def]
    bad = ONE_POLICY.replace("duration: 24h", "duration: soon")
    async with running(app) as client:
        admin = await api_key(app, Role.ADMIN)
        refused = await client.put("/v1/policies", json={"yaml": bad}, headers=admin)
        after = await client.get("/v1/policies", headers=admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert [(e["policy"], e["field"]) for e in refused.json()["errors"]] == [
        ("first_touch_24h", "duration")
    ]
    assert after.json()["version"] == 1


async def test_policies_are_for_ops_and_admin_only(app):  # type: ignore[no-untyped-def]
    async with running(app) as client:
        supervisor = await api_key(app, Role.SUPERVISOR)
        rep = await api_key(app, Role.REP, rep_id="rep-1")
        read = await client.get("/v1/policies", headers=supervisor)
        write = await client.put("/v1/policies", json={"yaml": ONE_POLICY}, headers=rep)
    assert read.status_code == 403
    assert write.status_code == 403
