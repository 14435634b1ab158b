"""Each default policy fires at its instant, once, with the contract's payload (PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from salesrail.auth.principal import Role
from salesrail.events.catalog import (
    ActivityLogged,
    LeadRouted,
    LeadStageChanged,
    TicketDelivered,
    TicketOpened,
)
from tests.service.sla_monitor.conftest import (
    NOW,
    clocks_of,
    event,
    lead_received,
    move_to,
    signals,
)
from tests.support.apps import api_key, running
from tests.support.publishing import eventually, publish, wait_until_consumed

H = timedelta(hours=1)
D = timedelta(days=1)
SECOND = timedelta(seconds=1)


def iso(moment) -> str:  # type: ignore[no-untyped-def]
    return moment.isoformat().replace("+00:00", "Z")


def activity(lead_id: str, rep_id: str, at, **facts) -> ActivityLogged:  # type: ignore[no-untyped-def]
    return ActivityLogged(
        activity_id=f"act-{uuid.uuid4()}",
        lead_id=lead_id,
        rep_id=rep_id,
        type="visit",
        occurred_at=at,
        **facts,
    )


def stage(lead_id: str, old: str | None, new: str, at) -> LeadStageChanged:  # type: ignore[no-untyped-def]
    return LeadStageChanged.model_validate(
        {"lead_id": lead_id, "from": old, "to": new, "occurred_at": at}
    )


async def settled(nats_url: str) -> None:
    for stream, durable in (
        ("SALESRAIL_LEAD", "sla-monitor-leads"),
        ("SALESRAIL_ACTIVITY", "sla-monitor-activity"),
        ("SALESRAIL_COLLAB", "sla-monitor-collab"),
    ):
        assert await wait_until_consumed(nats_url, stream, durable)


async def test_untouched_72h_fires_from_routing_and_a_reroute_starts_a_new_cycle(
    pg_app, clock, nats_url
):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    async with running(pg_app) as client:
        headers = await api_key(pg_app, Role.OPS)
        await publish(
            nats_url,
            event(LeadRouted(lead_id=lead_id, owner_id="rep-a", rule="r"), at=NOW),
            event(LeadRouted(lead_id=lead_id, owner_id="rep-b", rule="r"), at=NOW + 10 * H),
        )
        await settled(nats_url)
        clocks = [
            c for c in await clocks_of(client, lead_id, headers) if c["policy"] == "untouched_72h"
        ]
        assert [(c["cycle"], c["state"]) for c in clocks] == [(1, "stopped"), (2, "running")]
        await move_to(pg_app, clock, NOW + 82 * H - timedelta(seconds=1))
        assert (
            await signals(
                nats_url, "salesrail.sla.alert.untouched_72h", entity_id=lead_id, timeout_s=1.0
            )
            == []
        )
        await move_to(pg_app, clock, NOW + 82 * H)
        [alert] = await signals(
            nats_url, "salesrail.sla.alert.untouched_72h", entity_id=lead_id, settle_s=0.5
        )
    assert alert["data"]["owner_id"] == "rep-b"
    assert alert["data"]["cycle"] == 2
    assert alert["data"]["due_at"] == iso(NOW + 82 * H)


async def test_stalled_5d_restarts_on_any_action_stops_at_won_and_a_reopen_is_a_new_cycle(
    pg_app, clock, nats_url
):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    async with running(pg_app) as client:
        headers = await api_key(pg_app, Role.OPS)
        await publish(
            nats_url,
            event(LeadRouted(lead_id=lead_id, owner_id="rep-a", rule="r"), at=NOW),
            event(stage(lead_id, "contact", "won", NOW + H), at=NOW + H),
            event(stage(lead_id, "won", "contact", NOW + 2 * H), at=NOW + 2 * H),
        )
        await settled(nats_url)
        await publish(nats_url, event(activity(lead_id, "rep-a", NOW + 3 * H), at=NOW + 3 * H))
        await settled(nats_url)
        stalled = [
            c for c in await clocks_of(client, lead_id, headers) if c["policy"] == "stalled_5d"
        ]
        assert [(c["cycle"], c["state"]) for c in stalled] == [
            (1, "stopped"),  # won
            (2, "stopped"),  # reopened, then an activity restarted it
            (3, "running"),
        ]
        await move_to(pg_app, clock, NOW + 3 * H + 5 * D - timedelta(seconds=1))
        assert (
            await signals(
                nats_url, "salesrail.sla.alert.stalled_5d", entity_id=lead_id, timeout_s=1.0
            )
            == []
        )
        await move_to(pg_app, clock, NOW + 3 * H + 5 * D)
        [alert] = await signals(nats_url, "salesrail.sla.alert.stalled_5d", entity_id=lead_id)
    assert alert["data"]["notify"] == ["supervisor_of:rep-a", "role:trainer"]
    assert alert["data"]["cycle"] == 3


async def test_ticket_48h_warns_at_24h_alerts_at_48h_not_a_second_before_escalates_unless_acked(
    pg_app, clock, nats_url
):  # type: ignore[no-untyped-def]
    acked, ignored, delivered = (f"ticket-{uuid.uuid4()}" for _ in range(3))
    async with running(pg_app) as client:
        supervisor = await api_key(pg_app, Role.SUPERVISOR)
        opened = [
            event(
                TicketOpened(
                    ticket_id=t, lead_id="lead-t", kind="tech_proposal", assignee_id="ps-1"
                ),
                at=NOW,
            )
            for t in (acked, ignored, delivered)
        ]
        await publish(nats_url, *opened)
        await publish(
            nats_url,
            event(TicketDelivered(ticket_id=delivered, kind="tech_proposal"), at=NOW + 30 * H),
        )
        await settled(nats_url)
        await move_to(pg_app, clock, NOW + 24 * H - SECOND)
        assert (
            await signals(
                nats_url, "salesrail.sla.warning.ticket_48h", entity_id=acked, timeout_s=1.0
            )
            == []
        )
        await move_to(pg_app, clock, NOW + 24 * H)
        warnings = await signals(nats_url, "salesrail.sla.warning.ticket_48h", entity_id=acked)
        assert warnings[0]["data"]["ticket_id"] == acked
        assert warnings[0]["data"]["owner_id"] == "ps-1"
        await move_to(pg_app, clock, NOW + 48 * H - SECOND)
        assert (
            await signals(
                nats_url, "salesrail.sla.alert.ticket_48h", entity_id=acked, timeout_s=1.0
            )
            == []
        )
        await move_to(pg_app, clock, NOW + 48 * H)
        [alert] = await signals(nats_url, "salesrail.sla.alert.ticket_48h", entity_id=acked)
        answer = await client.post(
            f"/v1/alerts/{alert['data']['alert_id']}/ack", headers=supervisor
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "acknowledged"
        await move_to(pg_app, clock, NOW + 48 * H + 3 * D - SECOND)
        assert (
            await signals(
                nats_url, "salesrail.sla.escalation.ticket_48h", entity_id=ignored, timeout_s=1.0
            )
            == []
        )
        await move_to(pg_app, clock, NOW + 48 * H + 3 * D)
        [escalation] = await signals(
            nats_url, "salesrail.sla.escalation.ticket_48h", entity_id=ignored
        )
        assert escalation["data"]["notify"] == ["role:manager", "role:regional_ops_support"]
        assert (
            await signals(
                nats_url, "salesrail.sla.escalation.ticket_48h", entity_id=acked, timeout_s=1.0
            )
            == []
        )
        assert (
            await signals(
                nats_url, "salesrail.sla.alert.ticket_48h", entity_id=delivered, timeout_s=0.5
            )
            == []
        )


async def test_proposal_red_fires_at_5d_not_a_second_before_and_72h_later_asks_ops_to_follow_up(
    pg_app, clock, nats_url
):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    async with running(pg_app):
        await publish(
            nats_url,
            event(LeadRouted(lead_id=lead_id, owner_id="rep-r", rule="r"), at=NOW),
        )
        await settled(nats_url)
        facts = dict(proposal_completion=0.5, key_people_covered=1)
        await publish(nats_url, event(activity(lead_id, "rep-r", NOW, **facts), at=NOW))
        await settled(nats_url)
        await move_to(pg_app, clock, NOW + 5 * D - SECOND)
        for rule in ("proposal_red", "proposal_yellow"):
            assert (
                await signals(
                    nats_url, f"salesrail.sla.alert.{rule}", entity_id=lead_id, timeout_s=1.0
                )
                == []
            )
        await move_to(pg_app, clock, NOW + 5 * D)
        [red] = await signals(nats_url, "salesrail.sla.alert.proposal_red", entity_id=lead_id)
        [yellow] = await signals(nats_url, "salesrail.sla.alert.proposal_yellow", entity_id=lead_id)
        await move_to(pg_app, clock, NOW + 8 * D - SECOND)
        assert (
            await signals(
                nats_url, "salesrail.sla.followup_requested", entity_id=lead_id, timeout_s=1.0
            )
            == []
        )
        await move_to(pg_app, clock, NOW + 8 * D)
        [followup] = await signals(nats_url, "salesrail.sla.followup_requested", entity_id=lead_id)
    assert red["data"]["severity"] == "red"
    assert red["data"]["notify"] == ["role:sales_director", "rep:rep-r"]
    assert yellow["data"]["severity"] == "yellow"
    assert followup["data"]["group"] == "regional_ops_support"
    assert followup["data"]["breach_alert_id"] == red["data"]["alert_id"]


async def test_no_new_contact_for_3_days_alerts_the_rep(pg_app, clock, nats_url):  # type: ignore[no-untyped-def]
    rep_id = f"rep-{uuid.uuid4()}"
    async with running(pg_app):
        await publish(
            nats_url, event(LeadRouted(lead_id="lead-x", owner_id=rep_id, rule="r"), at=NOW)
        )
        await publish(
            nats_url,
            event(activity("lead-x", rep_id, NOW + D, first_contact=True), at=NOW + D),
        )
        await settled(nats_url)
        await move_to(pg_app, clock, NOW + 4 * D - timedelta(seconds=1))
        assert (
            await signals(
                nats_url, "salesrail.sla.alert.no_new_contact_3d", entity_id=rep_id, timeout_s=1.0
            )
            == []
        )
        await move_to(pg_app, clock, NOW + 4 * D)
        [alert] = await signals(nats_url, "salesrail.sla.alert.no_new_contact_3d", entity_id=rep_id)
    assert alert["data"]["owner_id"] == rep_id
    assert alert["data"]["entity_type"] == "rep"


async def test_an_activity_that_arrives_after_the_alert_but_happened_before_retracts_it(
    app, clock, nats_url
):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    async with running(app) as client:
        ops = await api_key(app, Role.OPS)
        await publish(
            nats_url,
            event(lead_received(lead_id, NOW), at=NOW),
            event(LeadRouted(lead_id=lead_id, owner_id="rep-l", rule="r"), at=NOW),
        )
        await settled(nats_url)
        await move_to(app, clock, NOW + 49 * H)
        [alert] = await signals(nats_url, "salesrail.sla.alert.first_touch_48h", entity_id=lead_id)
        # The visit happened at 47 h; the phone was offline, so it is logged at 49 h.
        await publish(nats_url, event(activity(lead_id, "rep-l", NOW + 47 * H), at=NOW + 49 * H))
        [retracted] = await signals(nats_url, "salesrail.sla.alert_retracted", entity_id=lead_id)
        listed = await eventually(
            lambda: client.get("/v1/alerts", params={"lead_id": lead_id}, headers=ops),
            until=lambda r: any(a["state"] == "retracted" for a in r.json()["alerts"]),
        )
    assert retracted["data"]["alert_id"] == alert["data"]["alert_id"]
    assert retracted["data"]["answered_at"] == iso(NOW + 47 * H)
    [first_touch] = [a for a in listed.json()["alerts"] if a["rule"] == "first_touch_48h"]
    assert first_touch["state"] == "retracted"


async def test_a_paused_clock_resumes_with_the_time_it_had_left(app, clock, nats_url):  # type: ignore[no-untyped-def]
    lead_id = f"lead-{uuid.uuid4()}"
    policies = """
policies:
  - name: reply_2h
    entity: lead
    start: [{event: lead.received}]
    pause:
      - event: lead.stage_changed
        when: [{field: reason, equals: waiting_on_customer}]
    resume: [{event: activity.logged}]
    duration: 2h
    breach: {severity: high, notify: [owner]}
"""
    async with running(app) as client:
        admin = await api_key(app, Role.ADMIN)
        put = await client.put("/v1/policies", json={"yaml": policies}, headers=admin)
        assert put.status_code == 200, put.text
        waiting = LeadStageChanged.model_validate(
            {"lead_id": lead_id, "to": "contact", "reason": "waiting_on_customer"}
        )
        await publish(
            nats_url,
            event(lead_received(lead_id, NOW), at=NOW),
            event(waiting, at=NOW + timedelta(minutes=30)),
        )
        await settled(nats_url)
        [paused] = await clocks_of(client, lead_id, admin)
        assert paused["state"] == "paused"
        assert paused["remaining_seconds"] == 90 * 60
        await publish(nats_url, event(activity(lead_id, "rep-p", NOW + 5 * H), at=NOW + 5 * H))
        await settled(nats_url)
        [resumed] = await clocks_of(client, lead_id, admin)
        assert resumed["state"] == "running"
        assert resumed["due_at"] == iso(NOW + 6.5 * H)
        await move_to(app, clock, NOW + 6.5 * H - timedelta(seconds=1))
        assert (
            await signals(
                nats_url, "salesrail.sla.alert.reply_2h", entity_id=lead_id, timeout_s=1.0
            )
            == []
        )
        await move_to(app, clock, NOW + 6.5 * H)
        [alert] = await signals(nats_url, "salesrail.sla.alert.reply_2h", entity_id=lead_id)
    assert alert["data"]["policy_version"] == 2
