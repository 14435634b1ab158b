"""The one dependency every `/v1/` route uses: who is calling, or 401."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from salesrail.auth.api_keys import ApiKeyStore
from salesrail.auth.jwt_tokens import InvalidToken, JwtVerifier
from salesrail.auth.principal import Principal, Role

API_KEY_HEADER = "x-api-key"
# How the OpenAPI document describes the two ways in (see `security_schemes`).
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    """The caller, from `X-API-Key` or `Authorization: Bearer <JWT>`, or 401.

    The headers are read here rather than through FastAPI's `Security(APIKeyHeader(...))`
    sub-dependencies: resolving those cost a tenth of a request's time in the HTTP stack."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = request.app.state.auth
    store: ApiKeyStore = auth.api_keys
    verifier: JwtVerifier = auth.jwt
    headers = request.headers
    api_key = headers.get(API_KEY_HEADER)
    scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
    if api_key:
        principal = await store.verify(api_key)
        if principal is None:
            raise _unauthorized("the API key is not valid")
    elif scheme.lower() == "bearer" and credentials.strip():
        try:
            principal = verifier.verify(credentials.strip())
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

    # async: FastAPI runs a plain `def` dependency in a worker thread, per request. It takes
    # the request, not CurrentPrincipal: a nested dependency costs FastAPI a cache-key
    # computation and a solve per request, and `authenticate` answers from request.state.
    async def check(request: Request) -> Principal:
        principal = await authenticate(request)
        if principal.role not in allowed:
            raise HTTPException(403, detail=f"role {principal.role.value!r} may not do this")
        return principal

    return check
