"""Who is calling, and in which role."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    REP = "rep"
    SUPERVISOR = "supervisor"
    PRESALES = "presales"
    FINANCE = "finance"
    AFTER_SALES = "after_sales"
    OPS = "ops"
    ADMIN = "admin"
    INTEGRATION = "integration"


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    via: str  # "jwt" or "api_key"
    rep_id: str | None = None
    team_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
