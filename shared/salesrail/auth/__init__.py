"""Authentication: JWTs for people, hashed scoped API keys for machines, one dependency."""

from salesrail.auth.dependency import CurrentPrincipal, authenticate, require_roles
from salesrail.auth.principal import Principal, Role

__all__ = ["CurrentPrincipal", "Principal", "Role", "authenticate", "require_roles"]
