"""JWT bearer tokens for people: algorithm allow-list, issuer, audience and expiry checked."""

from __future__ import annotations

import time
from typing import Any

import jwt

from salesrail.auth.principal import Principal, Role

_SYMMETRIC = {"HS256", "HS384", "HS512"}
# Tokens verified already, until they expire: a client sends the same token with each request,
# and verifying it again cost more than the rest of the HTTP stack together.
_REMEMBERED = 4096


class InvalidToken(Exception):
    pass


class JwtVerifier:
    def __init__(
        self,
        *,
        secret: str | None,
        public_key: str | None,
        algorithms: list[str],
        issuer: str,
        audience: str,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        # A key of one kind only verifies algorithms of its kind: no HS256-with-public-key trick.
        self._keys: list[tuple[str | bytes, list[str]]] = []
        if secret:
            self._keys.append((secret, [a for a in algorithms if a in _SYMMETRIC]))
        if public_key:
            self._keys.append((public_key, [a for a in algorithms if a not in _SYMMETRIC]))
        self._keys = [(key, algs) for key, algs in self._keys if algs]
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def verify(self, token: str) -> Principal:
        """The caller the token names, or InvalidToken. A token that passed is remembered until
        its `exp`: the same string verifies the same way until then (its signature, issuer and
        audience cannot change, and a `nbf` it passed stays passed)."""
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires_at = remembered
            if time.time() < expires_at:
                return principal
            del self._verified[token]
        return self._verify(token)

    def _verify(self, token: str) -> Principal:
        if not self._keys:
            raise InvalidToken("bearer tokens are not configured on this service")
        try:
            header_alg = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        for key, algorithms in self._keys:
            if header_alg in algorithms:
                return self._decode(token, key, algorithms)
        raise InvalidToken(f"algorithm {header_alg!r} is not allowed")

    def _decode(self, token: str, key: str | bytes, algorithms: list[str]) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        try:
            role = Role(claims.get("role", ""))
        except ValueError as exc:
            raise InvalidToken(f"unknown role {claims.get('role')!r}") from exc
        principal = Principal(
            subject=str(claims["sub"]),
            role=role,
            via="jwt",
            rep_id=claims.get("rep_id") or (str(claims["sub"]) if role is Role.REP else None),
            team_id=claims.get("team_id"),
            scopes=frozenset(claims.get("scopes", [])),
        )
        if len(self._verified) >= _REMEMBERED:
            self._verified.pop(next(iter(self._verified)))  # the oldest
        self._verified[token] = (principal, float(claims["exp"]))
        return principal


def issue_token(
    *,
    secret: str,
    subject: str,
    role: Role,
    issuer: str,
    audience: str,
    expires_in_s: int = 3600,
    now: float,
    **claims: Any,
) -> str:
    """Mint an HS256 token (for the embedded run's demo users and for tests)."""
    payload = {
        "sub": subject,
        "role": role.value,
        "iss": issuer,
        "aud": audience,
        "iat": int(now),
        "exp": int(now + expires_in_s),
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")
