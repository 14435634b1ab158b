"""GET /v1/alerts (filters, cursor pages, who sees what) and POST /v1/alerts/{id}/ack."""

from __future__ import annotations

import uuid
from datetime import timedelta

from salesrail.auth.principal import Role
from salesrail.events.catalog import LeadRouted
from tests.service.sla_monitor.conftest import NOW, event, lead_received, move_to, signals
from tests.support.apps import api_key, running
from tests.support.publishing import eventually, publish, wait_until_consumed


async def test_alerts_page_newest_first_filter_and_reps_see_their_own(pg_app, clock, nats_url):  # type: ignore[no-untyped-def]
    leads = [f"lead-{uuid.uuid4()}" for _ in range(5)]
    async with running(pg_app) as client:
        ops = await api_key(pg_app, Role.OPS)
        rep = await api_key(pg_app, Role.REP, rep_id="rep-1")
        envelopes = []
        for i, lead_id in enumerate(leads):
            owner = "rep-1" if i < 3 else "rep-2"
            received = NOW + i * timedelta(minutes=1)
            envelopes += [
                event(lead_received(lead_id, received), at=received),
                event(LeadRouted(lead_id=lead_id, owner_id=owner, rule="r"), at=received),
            ]
        await publish(nats_url, *envelopes)
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "sla-monitor-leads")
        await move_to(pg_app, clock, NOW + timedelta(hours=49))
        await signals(
            nats_url, "salesrail.sla.alert.first_touch_48h", entity_id=leads[-1], timeout_s=10
        )

        async def first_touch_alerts(headers, **params):  # type: ignore[no-untyped-def]
            params = {"rule": "first_touch_48h", "limit": 2, **params}
            found, cursor = [], None
            while True:
                query = {**params, **({"cursor": cursor} if cursor else {})}
                page = await client.get("/v1/alerts", params=query, headers=headers)
                assert page.status_code == 200, page.text
                found += [a for a in page.json()["alerts"] if a["lead_id"] in leads]
                cursor = page.json()["next_cursor"]
                if not cursor:
                    return found

        everything = await eventually(
            lambda: first_touch_alerts(ops), until=lambda found: len(found) == 5
        )
        mine = await first_touch_alerts(rep)
        by_owner = await first_touch_alerts(ops, owner_id="rep-2")
        bad_cursor = await client.get("/v1/alerts", params={"cursor": "nope"}, headers=ops)
    # Fired in one instant: pages hold each alert once, none lost between pages.
    assert sorted(a["lead_id"] for a in everything) == sorted(leads)
    assert {a["lead_id"] for a in mine} == set(leads[:3])
    assert {a["lead_id"] for a in by_owner} == set(leads[3:])
    assert bad_cursor.status_code == 422


async def test_acknowledging_is_idempotent_and_a_rep_may_only_acknowledge_their_own(
    app, clock, nats_url
):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    async with running(app) as client:
        owner = await api_key(app, Role.REP, rep_id="rep-own")
        other = await api_key(app, Role.REP, rep_id="rep-else")
        await publish(
            nats_url,
            event(lead_received(lead_id, NOW), at=NOW),
            event(LeadRouted(lead_id=lead_id, owner_id="rep-own", rule="r"), at=NOW),
        )
        assert await wait_until_consumed(nats_url, "SALESRAIL_LEAD", "sla-monitor-leads")
        await move_to(app, clock, NOW + timedelta(hours=48))
        [alert] = await signals(nats_url, "salesrail.sla.alert.first_touch_48h", entity_id=lead_id)
        alert_id = alert["data"]["alert_id"]
        refused = await client.post(f"/v1/alerts/{alert_id}/ack", headers=other)
        first = await client.post(f"/v1/alerts/{alert_id}/ack", headers=owner)
        again = await client.post(f"/v1/alerts/{alert_id}/ack", headers=owner)
        missing = await client.post("/v1/alerts/no-such-alert/ack", headers=owner)
        [acked] = await signals(nats_url, "salesrail.sla.alert_acknowledged", entity_id=lead_id)
    assert refused.status_code == 404
    assert first.status_code == 200 and first.json()["state"] == "acknowledged"
    assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    assert missing.status_code == 404
    assert acked["data"]["alert_id"] == alert_id
