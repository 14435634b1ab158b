import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from salesrail.auth.jwt_tokens import InvalidToken, JwtVerifier, issue_token
from salesrail.auth.principal import Role

SECRET = "s" * 48


def verifier(**overrides):  # type: ignore[no-untyped-def]
    args = dict(
        secret=SECRET,
        public_key=None,
        algorithms=["HS256", "ES256"],
        issuer="salesrail",
        audience="salesrail",
    )
    args.update(overrides)
    return JwtVerifier(**args)


def token(**overrides):  # type: ignore[no-untyped-def]
    args = dict(
        secret=SECRET,
        subject="zhang",
        role=Role.REP,
        issuer="salesrail",
        audience="salesrail",
        now=time.time(),
    )
    args.update(overrides)
    return issue_token(**args)


def test_a_valid_token_names_the_person_and_role() -> None:
    principal = verifier().verify(token(team_id="east"))
    assert principal.subject == "zhang"
    assert principal.role is Role.REP
    assert principal.rep_id == "zhang"
    assert principal.team_id == "east"


@pytest.mark.parametrize(
    "bad",
    [
        {"now": time.time() - 7200},  # expired
        {"issuer": "someone-else"},
        {"audience": "another-app"},
        {"secret": "t" * 48},  # forged
    ],
)
def test_expired_foreign_or_forged_tokens_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidToken):
        verifier().verify(token(**bad))


def test_algorithms_outside_the_allow_list_are_refused() -> None:
    unsigned = jwt.encode(
        {
            "sub": "x",
            "role": "admin",
            "iss": "salesrail",
            "aud": "salesrail",
            "exp": int(time.time()) + 60,
        },
        key=None,
        algorithm="none",
    )
    with pytest.raises(InvalidToken):
        verifier().verify(unsigned)
    with pytest.raises(InvalidToken):
        verifier(algorithms=["ES256"]).verify(token())


def _hs256_signed_with(key: bytes, claims: dict) -> str:  # type: ignore[type-arg]
    """Sign by hand: PyJWT itself refuses to HMAC with a PEM key, an attacker would not."""

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + b"."
        + b64(json.dumps(claims).encode())
    )
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


def test_a_public_key_is_never_used_as_an_hmac_secret() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {
        "sub": "ops1",
        "role": "admin",
        "iss": "salesrail",
        "aud": "salesrail",
        "exp": int(time.time()) + 60,
    }
    v = verifier(secret=None, public_key=public_pem.decode(), algorithms=["HS256", "ES256"])

    assert v.verify(jwt.encode(claims, private, algorithm="ES256")).role is Role.ADMIN
    with pytest.raises(InvalidToken):
        v.verify(_hs256_signed_with(public_pem, claims))


def test_an_unknown_role_is_refused() -> None:
    bad = jwt.encode(
        {
            "sub": "x",
            "role": "king",
            "iss": "salesrail",
            "aud": "salesrail",
            "exp": int(time.time()) + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        verifier().verify(bad)


def test_a_remembered_token_still_expires_on_time() -> None:
    v = verifier()
    now = time.time()
    short = token(now=now, expires_in_s=1)
    first = v.verify(short)
    assert v.verify(short) == first  # remembered: the same caller
    expires_at = jwt.decode(short, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    with pytest.raises(InvalidToken, match="expired"):
        v.verify(short)


def test_a_refused_token_is_refused_every_time() -> None:
    v = verifier()
    forged = token(secret="x" * 48)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            v.verify(forged)
