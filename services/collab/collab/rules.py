"""Pure decisions of collab (no I/O): who a ticket goes to, and who may see it."""

from __future__ import annotations

from enum import StrEnum

from salesrail.auth.principal import Principal, Role


class TicketKind(StrEnum):
    TECHNICAL_SUPPORT = "technical_support"
    FINANCE_REVIEW = "finance_review"
    AFTER_SALES = "after_sales"


class TicketStatus(StrEnum):
    OPEN = "open"


_ASSIGNEE_ROLE = {
    TicketKind.TECHNICAL_SUPPORT: Role.PRESALES,
    TicketKind.FINANCE_REVIEW: Role.FINANCE,
    TicketKind.AFTER_SALES: Role.AFTER_SALES,
}

# Who oversees every ticket, whoever it is for.
_SEES_ALL = frozenset({Role.SUPERVISOR, Role.ADMIN})


def assignee_role_for(kind: TicketKind) -> Role:
    """The role whose queue a new ticket of this kind lands in."""
    return _ASSIGNEE_ROLE[kind]


def may_read(caller: Principal, *, requested_by: str, assignee_role: str) -> bool:
    """Each role sees only what concerns it: the requester, the assignee role, overseers."""
    return (
        caller.role in _SEES_ALL
        or caller.role.value == assignee_role
        or caller.subject == requested_by
    )
