import pytest
from pydantic import ValidationError

from salesrail.events.catalog import LeadStageChanged, SlaAlert, data_model_for
from salesrail.events.envelope import Envelope
from salesrail.events.streams import STREAMS, stream_for_subject


def test_every_contract_subject_has_a_payload_model_and_a_stream() -> None:
    for event_type in (
        "lead.received",
        "lead.routed",
        "lead.pooled",
        "lead.claimed",
        "lead.reassigned",
        "lead.stage_changed",
        "activity.logged",
        "collab.ticket.opened",
        "collab.ticket.accepted",
        "collab.ticket.delivered",
        "collab.ticket.closed",
        "sla.alert.first_touch_48h",
        "sla.warning.ticket_48h",
    ):
        assert data_model_for(event_type) is not None, event_type
        assert stream_for_subject(f"salesrail.{event_type}") in STREAMS
    assert data_model_for("sla.alert.untouched_72h") is SlaAlert


def test_stage_changes_use_the_contract_field_names_from_and_to() -> None:
    event = LeadStageChanged.model_validate({"lead_id": "l1", "from": "contact", "to": "demo"})
    assert event.model_dump(by_alias=True)["from"] == "contact"
    assert event.to_stage == "demo"


def test_an_envelope_ignores_unknown_fields_and_needs_a_timezone() -> None:
    ok = Envelope.model_validate(
        {
            "id": "e1",
            "type": "lead.received",
            "occurred_at": "2026-11-23T08:00:00+08:00",
            "source": "x",
            "version": 1,
            "data": {},
            "future_field": 1,
        }
    )
    assert ok.subject == "salesrail.lead.received"
    with pytest.raises(ValidationError):
        Envelope.model_validate(
            {"id": "e1", "type": "t", "occurred_at": "2026-11-23T08:00:00", "source": "x"}
        )
