"""collab's pure decisions: where a ticket goes and who may see it."""

from __future__ import annotations

import pytest

from collab.rules import TicketKind, assignee_role_for, may_read
from salesrail.auth.principal import Principal, Role


@pytest.mark.parametrize(
    ("kind", "role"),
    [
        (TicketKind.TECHNICAL_SUPPORT, Role.PRESALES),
        (TicketKind.FINANCE_REVIEW, Role.FINANCE),
        (TicketKind.AFTER_SALES, Role.AFTER_SALES),
    ],
)
def test_each_kind_of_ticket_goes_to_the_role_that_can_answer_it(kind, role) -> None:  # type: ignore[no-untyped-def]
    assert assignee_role_for(kind) is role


def test_every_kind_of_ticket_has_an_assignee_role() -> None:
    assert {assignee_role_for(kind) for kind in TicketKind} == {
        Role.PRESALES,
        Role.FINANCE,
        Role.AFTER_SALES,
    }


def caller(role: Role, subject: str = "someone") -> Principal:
    return Principal(subject=subject, role=role, via="api_key")


def test_the_requester_reads_their_own_ticket_whatever_their_role() -> None:
    assert may_read(
        caller(Role.REP, "key:rep-zhang"), requested_by="key:rep-zhang", assignee_role="presales"
    )


def test_the_assignee_role_reads_tickets_of_its_queue_only() -> None:
    assert may_read(caller(Role.PRESALES), requested_by="key:rep-zhang", assignee_role="presales")
    assert not may_read(
        caller(Role.FINANCE), requested_by="key:rep-zhang", assignee_role="presales"
    )


def test_supervisors_and_admins_read_every_ticket() -> None:
    for role in (Role.SUPERVISOR, Role.ADMIN):
        assert may_read(caller(role), requested_by="key:rep-zhang", assignee_role="finance")


def test_another_rep_ops_and_integrations_do_not_read_a_ticket_that_is_not_theirs() -> None:
    for role in (Role.REP, Role.OPS, Role.INTEGRATION, Role.AFTER_SALES):
        assert not may_read(
            caller(role, "key:other"), requested_by="key:rep-zhang", assignee_role="presales"
        )
