"""Sealing short secrets for storage: Fernet tokens under a key ring that can be rotated.

A sealed value reads `sealed:v1:<Fernet token>`; anything else is a value stored in clear (rows
written before sealing existed), passed through as it is. The first key seals, every key
opens: to rotate, put a new key first and keep the old one after it until every value has
been sealed again.

Make a key with:
    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED_PREFIX = "sealed:v1:"


class InvalidKey(Exception):
    """A configured key is not a Fernet key. Not a ValueError: pydantic would wrap that in a
    ValidationError that shows the input, the keys."""


class CannotOpen(Exception):
    """A sealed value that none of the configured keys opens (or that was altered)."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def parse_keys(text: str) -> list[str]:
    """`"k1, k2"` -> ["k1", "k2"], each checked to be a Fernet key; the first seals."""
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise InvalidKey("no key given")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise InvalidKey(
                f"key {position} of {len(keys)} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from exc
    return keys


class Sealer:
    """Seals with the first key; opens with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise InvalidKey("no key given")
        fernets = [Fernet(key) for key in keys]
        self._first = fernets[0]
        self._ring = MultiFernet(fernets)
        # A separate key for fingerprints, derived from the sealing key: a fingerprint then
        # tells nothing to whoever has the database but not the key.
        sealing_key = base64.urlsafe_b64decode(keys[0])
        self._fingerprint_key = hmac.new(
            sealing_key, b"salesrail fingerprint v1", "sha256"
        ).digest()

    @classmethod
    def from_text(cls, text: str) -> Sealer:
        return cls(parse_keys(text))

    def __repr__(self) -> str:  # never the keys
        return "Sealer(...)"

    def seal(self, clear: str) -> str:
        return SEALED_PREFIX + self._ring.encrypt(clear.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The clear value; one stored in clear is returned as it is."""
        if not is_sealed(stored):
            return stored
        token = stored[len(SEALED_PREFIX) :].encode("ascii", "replace")
        try:
            return self._ring.decrypt(token).decode()
        except InvalidToken as exc:
            raise CannotOpen("sealed with a key that is not configured, or altered") from exc

    def is_current(self, stored: object) -> bool:
        """Sealed with the first key: sealing it again would change nothing."""
        if not isinstance(stored, str) or not is_sealed(stored):
            return False
        try:
            self._first.decrypt(stored[len(SEALED_PREFIX) :].encode("ascii", "replace"))
        except InvalidToken:
            return False
        return True

    def reseal(self, stored: str) -> str:
        """Sealed again with the first key (also a value stored in clear)."""
        return self.seal(self.open(stored))

    def fingerprint(self, clear: str) -> str:
        """The same for the same value under the same first key; reveals nothing without it."""
        digest = hmac.new(self._fingerprint_key, clear.encode(), hashlib.sha256).hexdigest()
        return digest[:32]


def open_value(stored: str, sealer: Sealer | None) -> str:
    """`stored` opened; without keys, only a value stored in clear can be read."""
    if sealer is not None:
        return sealer.open(stored)
    if is_sealed(stored):
        raise CannotOpen("sealed, but no key is configured")
    return stored
