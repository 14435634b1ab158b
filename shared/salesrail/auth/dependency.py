"""The one dependency every `/v1/` route uses: who is calling, or 401."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from salesrail.auth.api_keys import ApiKeyStore
from salesrail.auth.jwt_tokens import InvalidToken, JwtVerifier
from salesrail.auth.principal import Principal, Role

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
_bearer = HTTPBearer(auto_error=False, scheme_name="Bearer")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = request.app.state.auth
    store: ApiKeyStore = auth.api_keys
    verifier: JwtVerifier = auth.jwt
    if api_key:
        principal = await store.verify(api_key)
        if principal is None:
            raise _unauthorized("the API key is not valid")
    elif bearer is not None:
        try:
            principal = verifier.verify(bearer.credentials)
        except InvalidToken as exc:
            raise _unauthorized(f"the bearer token is not valid: {exc}") from exc
    else:
        raise _unauthorized("send an API key in X-API-Key or a JWT in Authorization: Bearer")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets the given roles (and admin) through, else 403."""
    allowed = frozenset(roles) | {Role.ADMIN}

    # async: FastAPI runs a plain `def` dependency in a worker thread, per request.
    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(403, detail=f"role {principal.role.value!r} may not do this")
        return principal

    return check
