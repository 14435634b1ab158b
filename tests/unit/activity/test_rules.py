"""activity's pure rules: the stage vocabulary and who may see a lead."""

from __future__ import annotations

import pytest

from activity import rules
from salesrail.auth import Principal, Role


def caller(role: Role, rep_id: str | None = None) -> Principal:
    return Principal(subject="test", role=role, via="api_key", rep_id=rep_id)


def test_the_funnel_runs_from_contact_to_won_or_lost_in_the_contracts_words() -> None:
    assert rules.STAGES == ("contact", "needs_confirmed", "demo", "negotiation", "won", "lost")


def test_every_lead_starts_at_contact() -> None:
    assert rules.INITIAL_STAGE == rules.STAGES[0] == "contact"


def test_a_rep_sees_a_lead_they_own() -> None:
    assert rules.may_see(caller(Role.REP, "rep-zhang"), "rep-zhang")


@pytest.mark.parametrize("owner_id", ["rep-li", None])
def test_a_rep_does_not_see_a_lead_of_another_rep_or_of_the_pool(owner_id: str | None) -> None:
    assert not rules.may_see(caller(Role.REP, "rep-zhang"), owner_id)


def test_a_rep_key_without_a_rep_id_sees_no_pooled_lead() -> None:
    assert not rules.may_see(caller(Role.REP, None), None)


@pytest.mark.parametrize(
    "role",
    [Role.SUPERVISOR, Role.OPS, Role.ADMIN, Role.PRESALES, Role.AFTER_SALES, Role.FINANCE],
)
def test_the_other_reading_roles_see_every_lead(role: Role) -> None:
    assert rules.may_see(caller(role), "rep-li")
    assert rules.may_see(caller(role), None)
