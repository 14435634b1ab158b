"""Channels as the database keeps them: the credentials sealed, the rest readable.

A channel is stored as
    {"id", "type", "enabled", "url": "sealed:v1:...", "secret": "sealed:v1:..." | null,
     "origin": "https://host[:port]", "endpoint": "<fingerprint of type and URL>"}
so that deciding who is told (id, type, enabled, one delivery per endpoint) and answering
the API (host only) never open anything: only sending does (`open_channel`). A channel
stored before sealing existed has its URL and secret in clear, and still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from salesrail.notify.channels import ChannelConfig, ChannelType
from salesrail.notify.sealing import Sealer, is_sealed, open_value

KEYS_SETTING = "SALESRAIL_CHANNEL_KEYS"
# Kept in clear beside the sealed values; not fields of ChannelConfig.
_CLEAR_EXTRAS = ("origin", "endpoint")


class ChannelKeyMissing(Exception):
    """No key is configured, so the channel's credentials (`fields`) cannot be stored."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        super().__init__(f"no channel key is configured ({KEYS_SETTING})")
        self.fields = fields


def credential_fields(channel: ChannelConfig) -> tuple[str, ...]:
    """Every channel has one: robot URLs carry their token, webhooks a signing secret."""
    return ("secret", "url") if channel.secret else ("url",)


def seal_channel(channel: ChannelConfig, sealer: Sealer | None) -> dict[str, Any]:
    """The stored form; refused (never stored in clear) without a key."""
    if sealer is None:
        raise ChannelKeyMissing(credential_fields(channel))
    secret = channel.secret.get_secret_value() if channel.secret else None
    return {
        "id": channel.id,
        "type": channel.type,
        "enabled": channel.enabled,
        "url": sealer.seal(channel.url),
        "secret": sealer.seal(secret) if secret else None,
        "origin": _origin(channel.url),
        "endpoint": endpoint_fingerprint(sealer, channel.type, channel.url),
    }


def open_channel(raw: Any, sealer: Sealer | None) -> ChannelConfig:
    """The channel ready to send to. CannotOpen: a key is missing; ValidationError: the
    stored channel does not pass today's checks."""
    data = dict(raw) if isinstance(raw, dict) else {}
    if is_sealed(data.get("url")):
        for extra in _CLEAR_EXTRAS:
            data.pop(extra, None)
    for name in ("url", "secret"):
        if isinstance(data.get(name), str):
            data[name] = open_value(data[name], sealer)
    return ChannelConfig.model_validate(data if data else raw)


def reseal_channel(raw: dict[str, Any], sealer: Sealer) -> dict[str, Any]:
    """`raw` with its credentials sealed again under the first key (in clear ones too), and
    its fingerprint renewed; nothing else is checked or changed. CannotOpen passes through."""
    url = raw.get("url")
    if not isinstance(url, str):
        return raw
    clear_url = sealer.open(url)
    resealed = {**raw, "url": sealer.seal(clear_url)}
    if isinstance(raw.get("secret"), str) and raw["secret"]:
        resealed["secret"] = sealer.reseal(raw["secret"])
    resealed["origin"] = _origin(clear_url)
    resealed["endpoint"] = endpoint_fingerprint(sealer, str(raw.get("type")), clear_url)
    return resealed


def is_current(raw: Any, sealer: Sealer) -> bool:
    """Sealed with the first key, fingerprint included: resealing would change nothing."""
    if not isinstance(raw, dict) or not sealer.is_current(raw.get("url")):
        return False
    secret = raw.get("secret")
    return not secret or sealer.is_current(secret)


def endpoint_fingerprint(sealer: Sealer, channel_type: str, url: str) -> str:
    return sealer.fingerprint(f"{channel_type} {url}")


# --- reading without opening -------------------------------------------------------------


class _SealedShape(BaseModel):
    """A sealed stored channel, checked without opening it (it was checked when stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    type: ChannelType
    enabled: bool = True
    url: str = Field(pattern=r"^sealed:")
    secret: str | None = None
    origin: str
    endpoint: str = Field(min_length=1)


@dataclass(frozen=True)
class StoredChannel:
    """What deciding who is told needs: which channel, and which endpoint it posts to."""

    id: str
    type: str
    enabled: bool
    # Equal for two channels posting to the same URL (fingerprints of sealed ones).
    endpoint: str

    @classmethod
    def read(cls, raw: Any) -> StoredChannel:
        """Without opening a sealed channel; one in clear is checked in full, as before.
        ValidationError when it does not pass."""
        if isinstance(raw, dict) and is_sealed(raw.get("url")):
            shape = _SealedShape.model_validate(raw)
            return cls(shape.id, shape.type, shape.enabled, f"sealed {shape.endpoint}")
        channel = ChannelConfig.model_validate(raw)
        return cls(channel.id, channel.type, channel.enabled, f"clear {channel.type} {channel.url}")


def redacted_sealed(raw: dict[str, Any]) -> dict[str, Any]:
    """A sealed channel for an API answer, like ChannelConfig.redacted(); ValidationError when
    it is not a well-formed sealed channel."""
    shape = _SealedShape.model_validate(raw)
    return {
        "id": shape.id,
        "type": shape.type,
        "url": f"{shape.origin}/…",
        "secret": "set" if shape.secret else None,
        "enabled": shape.enabled,
    }


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
