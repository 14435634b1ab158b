"""daily_clearance: a rep with open leads logs an update every working day by 18:00 Shanghai
time, or is told at the cut-off and their supervisor an hour later (PostgreSQL, real NATS)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from salesrail.clock import FrozenClock
from salesrail.events.catalog import LeadPooled, LeadRouted
from sla_monitor.models import SlaAlert, SlaClock
from tests.service.sla_monitor.conftest import event, move_to, signals, sla_app
from tests.service.sla_monitor.test_policies_fire import activity, iso, settled, stage
from tests.support.apps import running, runtime
from tests.support.bus import envelope_of, wait_for_messages
from tests.support.publishing import publish

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECOND = timedelta(seconds=1)
ALERT = "salesrail.sla.alert.daily_clearance"
ESCALATION = "salesrail.sla.escalation.daily_clearance"

# 2026 around National Day: 1-7 October off, Saturday 10 October a make-up working day.
NATIONAL_DAY = date(2026, 10, 1)
THURSDAY = date(2026, 10, 8)
FRIDAY = date(2026, 10, 9)
MAKE_UP_SATURDAY = date(2026, 10, 10)
MONDAY = date(2026, 10, 12)


def local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    wall = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI)
    return wall.astimezone(UTC)


def routed(lead_id: str, rep_id: str, at: datetime):  # type: ignore[no-untyped-def]
    return event(LeadRouted(lead_id=lead_id, owner_id=rep_id, rule="r"), at=at)


async def none_on(nats_url: str, subject: str, rep_id: str) -> bool:
    return await signals(nats_url, subject, entity_id=rep_id, timeout_s=1.0) == []


async def test_it_fires_at_the_cut_off_not_a_second_before_then_escalates_to_the_supervisor(
    pg_app, clock: FrozenClock, nats_url
):  # type: ignore[no-untyped-def]
    rep_id = f"rep-{uuid.uuid4()}"
    clock.set(local(FRIDAY, 9))
    async with running(pg_app):
        await publish(nats_url, routed(f"lead-{uuid.uuid4()}", rep_id, local(FRIDAY, 9)))
        await settled(nats_url)
        await move_to(pg_app, clock, local(FRIDAY, 18) - SECOND)
        assert await none_on(nats_url, ALERT, rep_id)
        await move_to(pg_app, clock, local(FRIDAY, 18))
        [alert] = await signals(nats_url, ALERT, entity_id=rep_id)
        await move_to(pg_app, clock, local(FRIDAY, 19) - SECOND)
        assert await none_on(nats_url, ESCALATION, rep_id)
        await move_to(pg_app, clock, local(FRIDAY, 19))
        [escalation] = await signals(nats_url, ESCALATION, entity_id=rep_id, settle_s=0.5)
        [still_one] = await signals(nats_url, ALERT, entity_id=rep_id, settle_s=0.5)
    data = alert["data"]
    assert data["notify"] == [f"rep:{rep_id}"]
    assert (data["entity_type"], data["owner_id"], data["lead_id"]) == ("rep", rep_id, None)
    assert data["cycle"] == 20261009
    assert data["due_at"] == iso(local(FRIDAY, 18))
    assert escalation["data"]["notify"] == [f"supervisor_of:{rep_id}"]
    assert escalation["data"]["breach_alert_id"] == data["alert_id"]
    assert still_one["data"]["alert_id"] == data["alert_id"]


async def test_an_update_at_1759_answers_the_day_the_make_up_saturday_has_a_clock_sunday_none(
    pg_app, clock: FrozenClock, nats_url
):  # type: ignore[no-untyped-def]
    rep_id = f"rep-{uuid.uuid4()}"
    lead_id = f"lead-{uuid.uuid4()}"
    clock.set(local(FRIDAY, 9))
    async with running(pg_app):
        await publish(nats_url, routed(lead_id, rep_id, local(FRIDAY, 9)))
        await settled(nats_url)
        update = local(FRIDAY, 17, 59)
        await publish(nats_url, event(activity(lead_id, rep_id, update), at=update))
        await settled(nats_url)
        await move_to(pg_app, clock, local(FRIDAY, 23))
        assert await none_on(nats_url, ALERT, rep_id)
        await move_to(pg_app, clock, local(MAKE_UP_SATURDAY, 18) - SECOND)
        assert await none_on(nats_url, ALERT, rep_id)
        await move_to(pg_app, clock, local(MAKE_UP_SATURDAY, 18))
        [saturday] = await signals(nats_url, ALERT, entity_id=rep_id)
        # Sunday is off: nothing until Monday's cut-off.
        await move_to(pg_app, clock, local(MONDAY, 18) - SECOND)
        [only_saturday] = await signals(nats_url, ALERT, entity_id=rep_id, settle_s=0.5)
        await move_to(pg_app, clock, local(MONDAY, 18))
        alerts = await signals(nats_url, ALERT, entity_id=rep_id, count=2, settle_s=0.5)
    assert saturday["data"]["cycle"] == 20261010
    assert only_saturday["data"]["cycle"] == 20261010
    assert [a["data"]["cycle"] for a in alerts] == [20261010, 20261012]


async def test_an_update_before_the_cut_off_that_arrives_after_the_escalation_retracts_both(
    pg_app, clock: FrozenClock, nats_url
):  # type: ignore[no-untyped-def]
    rep_id = f"rep-{uuid.uuid4()}"
    lead_id = f"lead-{uuid.uuid4()}"
    clock.set(local(FRIDAY, 9))
    async with running(pg_app):
        await publish(nats_url, routed(lead_id, rep_id, local(FRIDAY, 9)))
        await settled(nats_url)
        await move_to(pg_app, clock, local(FRIDAY, 19))
        [alert] = await signals(nats_url, ALERT, entity_id=rep_id)
        [escalation] = await signals(nats_url, ESCALATION, entity_id=rep_id)
        # The call happened at 17:59; the phone was offline until 20:00.
        update = local(FRIDAY, 17, 59)
        await publish(nats_url, event(activity(lead_id, rep_id, update), at=local(FRIDAY, 20)))
        retracted = await signals(
            nats_url, "salesrail.sla.alert_retracted", entity_id=rep_id, count=2, settle_s=0.5
        )
        # Saturday's clock (begun when Friday's had fired everything) still runs.
        await move_to(pg_app, clock, local(MAKE_UP_SATURDAY, 18))
        alerts = await signals(nats_url, ALERT, entity_id=rep_id, count=2)
    assert {r["data"]["alert_id"] for r in retracted} == {
        alert["data"]["alert_id"],
        escalation["data"]["alert_id"],
    }
    assert {r["data"]["answered_at"] for r in retracted} == {iso(update)}
    assert [a["data"]["cycle"] for a in alerts] == [20261009, 20261010]


async def test_the_holiday_week_has_no_clock_and_a_stage_change_by_the_rep_is_an_update(
    pg_app, clock: FrozenClock, nats_url
):  # type: ignore[no-untyped-def]
    rep_id = f"rep-{uuid.uuid4()}"
    lead_id = f"lead-{uuid.uuid4()}"
    clock.set(local(NATIONAL_DAY, 10))
    async with running(pg_app):
        await publish(nats_url, routed(lead_id, rep_id, local(NATIONAL_DAY, 10)))
        await settled(nats_url)
        # 1-7 October: holidays and a weekend; the first cut-off is Thursday 8 October's.
        await move_to(pg_app, clock, local(THURSDAY, 18) - SECOND)
        assert await none_on(nats_url, ALERT, rep_id)
        changed = local(THURSDAY, 11)
        moved = stage(lead_id, "contact", "demo", changed).model_copy(update={"by": rep_id})
        await publish(nats_url, event(moved, at=changed))
        await settled(nats_url)
        await move_to(pg_app, clock, local(FRIDAY, 18) - SECOND)
        assert await none_on(nats_url, ALERT, rep_id)
        await move_to(pg_app, clock, local(FRIDAY, 18))
        [alert] = await signals(nats_url, ALERT, entity_id=rep_id)
    assert alert["data"]["cycle"] == 20261009


async def test_a_rep_who_owns_no_open_lead_has_no_clock(pg_app, clock: FrozenClock, nats_url):  # type: ignore[no-untyped-def]
    pooled, won = f"rep-{uuid.uuid4()}", f"rep-{uuid.uuid4()}"
    pooled_lead, won_lead = f"lead-{uuid.uuid4()}", f"lead-{uuid.uuid4()}"
    clock.set(local(FRIDAY, 9))
    async with running(pg_app):
        await publish(
            nats_url,
            routed(pooled_lead, pooled, local(FRIDAY, 9)),
            routed(won_lead, won, local(FRIDAY, 9)),
        )
        await settled(nats_url)
        released = LeadPooled(lead_id=pooled_lead, reason="released", previous_owner_id=pooled)
        closed = stage(won_lead, "negotiation", "won", local(FRIDAY, 10)).model_copy(
            update={"by": "supervisor-1"}  # not the rep's own update
        )
        await publish(
            nats_url,
            event(released, at=local(FRIDAY, 10)),
            event(closed, at=local(FRIDAY, 10)),
        )
        await settled(nats_url)
        # An activity with no open lead starts nothing either.
        later = local(FRIDAY, 11)
        await publish(nats_url, event(activity(pooled_lead, pooled, later), at=later))
        await settled(nats_url)
        await move_to(pg_app, clock, local(MONDAY, 20))
        assert await none_on(nats_url, ALERT, pooled)
        assert await none_on(nats_url, ALERT, won)
        async with runtime(pg_app).unit_of_work() as uow:
            rows = (
                await uow.session.scalars(
                    select(SlaClock).where(
                        SlaClock.policy == "daily_clearance", SlaClock.entity_id.in_([pooled, won])
                    )
                )
            ).all()
    # Friday's clocks (started at routing) stopped unfired at the cut-off; none since.
    assert sorted((c.entity_id == won, c.cycle, c.state) for c in rows) == [
        (False, 20261009, "stopped"),
        (True, 20261009, "stopped"),
    ]


async def test_each_day_fires_once_across_a_restart_and_two_replicas(
    clock: FrozenClock, postgres_url, auth_database_url, nats_url, tmp_path: Path
):  # type: ignore[no-untyped-def]
    batch = uuid.uuid4().hex[:8]
    reps = [f"rep-{batch}-{i}" for i in range(50)]

    def replica(name: str):  # type: ignore[no-untyped-def]
        return sla_app(
            clock,
            database_url=postgres_url,
            auth_database_url=auth_database_url,
            nats_url=nats_url,
            data_dir=tmp_path / name,
        )

    clock.set(local(FRIDAY, 9))
    first = replica("first")
    async with running(first):
        await publish(nats_url, *(routed(f"lead-{r}", r, local(FRIDAY, 9)) for r in reps))
        await settled(nats_url)
        await move_to(first, clock, local(FRIDAY, 18))
        await wait_for_messages(
            nats_url,
            ALERT,
            count=len(reps),
            where=lambda e: e["data"]["entity_id"].startswith(f"rep-{batch}-"),
            timeout_s=30,
        )
    replicas = [replica("a"), replica("b")]
    async with running(replicas[0]), running(replicas[1]):
        for app in replicas:  # Friday's escalations, then Saturday's alerts
            await move_to(app, clock, local(MAKE_UP_SATURDAY, 18))
        found = await wait_for_messages(
            nats_url,
            ALERT,
            count=2 * len(reps),
            where=lambda e: e["data"]["entity_id"].startswith(f"rep-{batch}-"),
            timeout_s=30,
            settle_s=1.0,
        )
        async with runtime(replicas[0]).unit_of_work() as uow:
            stored = (
                await uow.session.scalars(
                    select(SlaAlert).where(SlaAlert.policy == "daily_clearance")
                )
            ).all()
    per_day = Counter(
        (envelope_of(m)["data"]["entity_id"], envelope_of(m)["data"]["cycle"]) for m in found
    )
    assert len(per_day) == 2 * len(reps) and max(per_day.values()) == 1
    kinds = Counter((a.cycle, a.kind) for a in stored)
    assert kinds == {
        (20261009, "alert"): len(reps),
        (20261009, "escalation_1"): len(reps),
        (20261010, "alert"): len(reps),
    }
