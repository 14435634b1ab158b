"""Pure decisions of lead-router (no I/O)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers

# A sender's clock may run a little ahead of ours; more than this is a mistake.
RECEIVED_AT_TOLERANCE = timedelta(minutes=5)


class FutureReceivedAt(ValueError):
    pass


def effective_received_at(sent: datetime | None, *, now: datetime) -> datetime:
    """When the lead really arrived: the sender's time for imports, now otherwise."""
    if sent is None:
        return now
    if sent - now > RECEIVED_AT_TOLERANCE:
        raise FutureReceivedAt("received_at is in the future")
    return sent


def idempotency_scope(caller: str, key: str) -> str:
    """Keys are the caller's own: two systems may both send key '1' without colliding."""
    return f"{caller}:{key}"


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str) -> str:
    """A Chinese mobile or landline (or any valid international number) as E.164."""
    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """+8613812345678 -> 138****5678: enough to recognise, not to call."""
    digits = e164.removeprefix("+86") if e164.startswith("+86") else e164.lstrip("+")
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"


def company_facts(enrichment: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """The registry facts scoring looks at, from a lead's stored enrichment."""
    founded = enrichment.get("founded_on")
    years = None
    if founded:
        founded_on = date.fromisoformat(founded)
        today = now.date()
        years = (
            today.year
            - founded_on.year
            - ((today.month, today.day) < (founded_on.month, founded_on.day))
        )
    return {
        "registered_capital_cny": enrichment.get("registered_capital_cny"),
        "years_since_founding": years,
        "insured_headcount": enrichment.get("insured_headcount"),
        "industry": enrichment.get("industry"),
    }
