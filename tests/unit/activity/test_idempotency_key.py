"""What an Idempotency-Key is kept with: the caller it belongs to and the request's hash, which
tells the same request sent again (answered) from another one under the key (refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from activity.capture import prepare, request_hash
from activity.requirements import CompiledRequirements
from activity.rulebook import DEFAULT_DIR, load_rulebook
from activity.schemas import ActivityIn
from salesrail.auth.principal import Principal, Role
from salesrail.rules_engine import rule_engine

CHINA = timezone(timedelta(hours=8))
WHEN = datetime(2026, 11, 23, 9, 30, tzinfo=CHINA)
QUOTE: dict[str, Any] = {
    "lead_id": "lead-1",
    "rep_id": "rep-zhang",
    "type": "quote",
    "occurred_at": WHEN.isoformat(),
    "checklist": {"freight_included": True, "instalments_allowed": False},
    "summary": "报价 12 万",
}
REP = Principal("rep-zhang", Role.REP, via="jwt", rep_id="rep-zhang", team_id="east")


@pytest.fixture(scope="module")
def requirements() -> CompiledRequirements:
    return load_rulebook(DEFAULT_DIR, engine=rule_engine()).requirements


def hash_of(**changes: Any) -> str:
    return request_hash(ActivityIn.model_validate(QUOTE | changes))


def test_the_same_request_however_typed_hashes_the_same() -> None:
    reordered = dict(reversed(list(QUOTE.items())))
    reordered["checklist"] = dict(reversed(list(QUOTE["checklist"].items())))
    assert request_hash(ActivityIn.model_validate(reordered)) == hash_of()
    # The same instant in another offset.
    assert hash_of(occurred_at=WHEN.astimezone(UTC).isoformat()) == hash_of()
    # Defaults spelled out, blanks that mean "none", identifiers with stray spaces.
    assert hash_of(tech_env_change=False, attachments=[], contacts=[], minutes="  ") == hash_of()
    assert hash_of(rep_id=" rep-zhang ") == hash_of()


@pytest.mark.parametrize(
    "changes",
    [
        {"summary": "报价 13 万"},
        {"checklist": {"freight_included": False, "instalments_allowed": False}},
        {"occurred_at": (WHEN + timedelta(seconds=1)).isoformat()},
        {"type": "note"},
        {"lead_id": "lead-2"},
        {"tech_env_change": True},
        {"contacts": ["王总"]},
    ],
)
def test_another_request_hashes_differently(changes: dict[str, Any]) -> None:
    assert hash_of(**changes) != hash_of()


def test_the_key_is_the_callers_own_and_kept_with_the_requests_hash(
    requirements: CompiledRequirements,
) -> None:
    body = ActivityIn.model_validate(QUOTE)
    now = WHEN + timedelta(hours=1)
    keyed = prepare(body, REP, requirements=requirements, now=now, idempotency_key="q-1")
    assert keyed.scoped_key == ("rep-zhang", "q-1")
    assert keyed.request_hash == request_hash(body)
    assert len(keyed.request_hash) == 64

    sup = Principal("sup-east", Role.SUPERVISOR, via="jwt", team_id="east")
    by_sup = prepare(body, sup, requirements=requirements, now=now, idempotency_key="q-1")
    assert by_sup.scoped_key == ("sup-east", "q-1")

    plain = prepare(body, REP, requirements=requirements, now=now)
    assert plain.scoped_key is None
    assert plain.request_hash is None
