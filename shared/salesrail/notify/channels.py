"""Sending one message to one channel: WeCom and DingTalk robots, Feishu bots, signed webhooks.

Each platform gets its documented JSON, sent with httpx rather than apprise: apprise 2.x's
`wecombot://`, `dingtalk://` and `feishu://` plugins post with blocking `requests`, report
only True/False (no reason for the dead letter), take an HTTP 200 as success although these
platforms answer errors as 200 with an error code in the body, hard-code the platforms' hosts
(so a request cannot be pinned to the address the policy checked), and its Feishu plugin has
no signing.

Generic webhook, for receivers
------------------------------
A JSON POST (UTF-8) of `{"delivery_id", "title", "text", "severity", "link", "lead_id",
"sent_at"}` with the headers:

- `X-Salesrail-Delivery`: the delivery's id; the same on every retry of that delivery.
- `X-Salesrail-Timestamp`: Unix time in seconds when this attempt was signed.
- `X-Salesrail-Signature`: `sha256=` + hex HMAC-SHA256, keyed with the channel's secret, of
  the bytes `"<timestamp>." + <raw request body>`.

A receiver recomputes the HMAC over the raw body as received (before any JSON parsing),
compares in constant time (`hmac.compare_digest`), refuses a timestamp more than 5 minutes
away from its own clock (`WEBHOOK_TOLERANCE_S`: a captured request cannot be replayed later),
and drops a `X-Salesrail-Delivery` it has already accepted: delivery is at least once, and a
retry is signed afresh. `verify_webhook_signature` below does all but the last step. Answer
2xx to accept; anything else (or no answer within the timeout) is retried with back-off.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from salesrail.notify.addresses import AddressPolicy, CheckedTarget, ascii_host, check_url_shape

ChannelType = Literal["wecom", "dingtalk", "feishu", "webhook"]

WEBHOOK_TOLERANCE_S = 300
SIGNATURE_PREFIX = "sha256="
_MAX_RESPONSE_BYTES = 16 * 1024
# Platform limits on a message's content (bytes of UTF-8), with room for the markup around it.
_CONTENT_LIMIT = {"wecom": 4000, "dingtalk": 19000, "feishu": 19000, "webhook": 60000}
# Query parameters without which a robot URL cannot work: a pasted wrong URL fails at setup.
_REQUIRED_QUERY = {"wecom": "key", "dingtalk": "access_token"}


class DeliveryFailed(Exception):
    """The channel did not accept the message this time (network, HTTP status, error code)."""


class RateLimited(DeliveryFailed):
    """The channel said "too many messages": try again after `retry_after_s`."""

    def __init__(self, reason: str, *, retry_after_s: float = 60.0) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


# Result codes meaning "sent too often": WeCom 45009, DingTalk 130101 and 410100,
# Feishu 9499 and 11232.
_RATE_LIMIT_CODES = frozenset({45009, 130101, 410100, 9499, 11232})


class ChannelConfig(BaseModel):
    """One place a message can go, in clear; stored sealed (salesrail.notify.stored) in a
    rep's or team's `channels` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    type: ChannelType
    # Robot URLs carry their access token: kept out of reprs and logs.
    url: str = Field(min_length=1, max_length=2048, repr=False)
    secret: SecretStr | None = Field(default=None, validate_default=True)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        try:
            parsed = check_url_shape(value)
        except Exception as exc:
            raise ValueError(str(exc)) from exc
        required = _REQUIRED_QUERY.get(info.data.get("type", ""))
        if required and not parsed.params.get(required):
            raise ValueError(f"a {info.data['type']} robot URL needs its ?{required}=...")
        return value

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        kind = info.data.get("type")
        secret = value.get_secret_value() if value is not None else ""
        if kind == "webhook" and len(secret) < 16:
            raise ValueError("a webhook needs a signing secret of at least 16 characters")
        if kind == "wecom" and secret:
            raise ValueError("WeCom group robots have no signing; leave it empty")
        return value if secret else None

    def in_clear(self) -> dict[str, Any]:
        """Every field, the secret in clear (model_dump masks it): the input to sealing, never
        to be stored as it is (see salesrail.notify.stored)."""
        data = self.model_dump(mode="json")
        data["secret"] = self.secret.get_secret_value() if self.secret else None
        return data

    def redacted(self) -> dict[str, Any]:
        """For API answers: the endpoint's host only, and whether a secret is set."""
        url = httpx.URL(self.url)
        return {
            "id": self.id,
            "type": self.type,
            "url": f"{url.scheme}://{url.netloc.decode()}/…",
            "secret": "set" if self.secret else None,
            "enabled": self.enabled,
        }

    def describe(self) -> str:
        """For logs and dead-letter reasons: no token, no path, no query."""
        url = httpx.URL(self.url)
        port = f":{url.port}" if url.port else ""
        return f"{self.type} channel {self.id!r} at {url.host}{port}"


def _unique_ids(channels: list[ChannelConfig]) -> list[ChannelConfig]:
    ids = [channel.id for channel in channels]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"channel ids must be unique within an owner: {', '.join(duplicates)}")
    return channels


# A rep's or team's channels as an API accepts them (errors name e.g. `channels.1.url`).
ChannelList = Annotated[list[ChannelConfig], Field(max_length=20), AfterValidator(_unique_ids)]


class Message(BaseModel):
    """What people are told; each platform renders it in its own format."""

    model_config = ConfigDict(extra="ignore")

    title: str
    text: str
    severity: str = "info"
    link: str | None = None
    lead_id: str | None = None

    @field_validator("link")
    @classmethod
    def _check_link(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError("only http and https links are sent")
        return value


@dataclass(frozen=True)
class OutgoingRequest:
    url: httpx.URL
    body: bytes
    headers: dict[str, str]


# --- signing -----------------------------------------------------------------------------


def webhook_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def verify_webhook_signature(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance_s: float = WEBHOOK_TOLERANCE_S,
) -> bool:
    """A receiver's check: the signature matches and the timestamp is within the window."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - signed_at) > tolerance_s:
        return False
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64(HMAC-SHA256(key=secret, "<timestamp ms>\\n<secret>"))."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's 签名校验: base64(HMAC-SHA256(key="<timestamp s>\\n<secret>", empty message))."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


# --- rendering ---------------------------------------------------------------------------


def build_request(
    channel: ChannelConfig, message: Message, *, delivery_id: str | None, now: float
) -> OutgoingRequest:
    """The exact request for this channel, signed at `now` (Unix seconds)."""
    secret = channel.secret.get_secret_value() if channel.secret else None
    url = httpx.URL(channel.url)
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "salesrail-notify"}
    limit = _CONTENT_LIMIT[channel.type]
    heading = _heading(message)
    if channel.type == "wecom":
        body_md = f"**{_md_escape(heading)}**\n{_md_escape(message.text)}"
        content = _fit(body_md, _link_md(message), limit)
        payload: dict[str, Any] = {"msgtype": "markdown", "markdown": {"content": content}}
    elif channel.type == "dingtalk":
        body_md = f"#### {_md_escape(heading)}\n\n{_md_escape(message.text)}"
        text = _fit(body_md, _link_md(message), limit)
        payload = {"msgtype": "markdown", "markdown": {"title": heading[:100], "text": text}}
        if secret:
            timestamp_ms = int(now * 1000)
            url = url.copy_merge_params(
                {"timestamp": str(timestamp_ms), "sign": dingtalk_sign(secret, timestamp_ms)}
            )
    elif channel.type == "feishu":
        lines: list[list[dict[str, str]]] = [
            [{"tag": "text", "text": _truncate(message.text, limit)}]
        ]
        if message.link:
            lines.append([{"tag": "a", "text": message.link, "href": message.link}])
        post = {"zh_cn": {"title": heading, "content": lines}}
        payload = {"msg_type": "post", "content": {"post": post}}
        if secret:
            payload = {"timestamp": str(int(now)), "sign": feishu_sign(secret, int(now)), **payload}
    else:
        payload = {
            "delivery_id": delivery_id,
            "title": message.title,
            "text": _truncate(message.text, limit),
            "severity": message.severity,
            "link": message.link,
            "lead_id": message.lead_id,
            "sent_at": datetime.fromtimestamp(now, UTC).isoformat(),
        }
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    if channel.type == "webhook":
        assert secret is not None  # ChannelConfig refuses a webhook without one
        timestamp = str(int(now))
        headers["X-Salesrail-Timestamp"] = timestamp
        headers["X-Salesrail-Signature"] = webhook_signature(secret, timestamp, body)
        if delivery_id:
            headers["X-Salesrail-Delivery"] = delivery_id
    return OutgoingRequest(url=url, body=body, headers=headers)


def _heading(message: Message) -> str:
    tag = "" if message.severity.lower() == "info" else f"[{message.severity.upper()}] "
    # One line: a line break in a title would end the bold/heading markup around it.
    return _truncate(" ".join(f"{tag}{message.title}".split()), 200)


# Titles and texts carry company and contact names typed into public web forms: in a robot's
# markdown, `[..](url)` would be a disguised link, `![](url)` a tracking image and `<@id>` a
# mention. Escaped, they show as typed; Message.link stays the message's only link.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]()<>!#|])")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _link_md(message: Message) -> str:
    if not message.link:
        return ""
    # Our own link; `(`, `)`, `<`, `>` and spaces percent-encoded so it cannot end early.
    target = message.link
    for char, code in (("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E"), (" ", "%20")):
        target = target.replace(char, code)
    return f"\n\n[{_md_escape(message.link)}]({target})"


def _fit(text: str, tail: str, limit: int) -> str:
    """`text` shortened so that text + tail fits `limit` bytes; the link is never cut."""
    return _truncate(text, limit - len(tail.encode())) + tail


def _truncate(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: max(limit - 3, 0)].decode(errors="ignore") + "…"


# --- sending -----------------------------------------------------------------------------


async def send(
    channel: ChannelConfig,
    message: Message,
    *,
    allow: AddressPolicy,
    timeout_s: float,
    delivery_id: str | None = None,
) -> None:
    """Send once. AddressRefused: never allowed; DeliveryFailed or ResolutionFailed: retry."""
    request = build_request(channel, message, delivery_id=delivery_id, now=time.time())
    try:
        async with asyncio.timeout(timeout_s):  # one deadline for DNS, connect, answer
            target = await allow.check(request.url)
            status, content = await _post(target, request)
    except TimeoutError as exc:
        raise DeliveryFailed(f"{channel.describe()}: no answer within {timeout_s}s") from exc
    _check_answer(channel, status, content)


async def _post(target: CheckedTarget, request: OutgoingRequest) -> tuple[int, bytes]:
    """POST to the checked addresses in turn (the next one only if connecting failed)."""
    host = ascii_host(target.url)
    headers = {**request.headers, "Host": target.url.netloc.decode("ascii")}
    # TLS must still verify the certificate for the name, not for the address we connect to.
    extensions = {} if _is_ip(host) else {"sni_hostname": host}
    failures: list[str] = []
    # trust_env=False: a proxy from the environment would resolve the name again itself.
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=None) as client:
        for address in target.addresses:
            pinned = target.url.copy_with(host=address)
            try:
                async with client.stream(
                    "POST", pinned, content=request.body, headers=headers, extensions=extensions
                ) as response:
                    return response.status_code, await _read_capped(response)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failures.append(f"{address}: {exc or type(exc).__name__}")
            except httpx.HTTPError as exc:
                raise DeliveryFailed(f"{host}: {type(exc).__name__}: {exc}") from exc
    raise DeliveryFailed(f"cannot connect to {host} ({'; '.join(failures)})")


async def _read_capped(response: httpx.Response) -> bytes:
    """The start of the answer: enough for an error code, never a flood into memory."""
    content = b""
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) >= _MAX_RESPONSE_BYTES:
            break
    return content[:_MAX_RESPONSE_BYTES]


def _check_answer(channel: ChannelConfig, status: int, content: bytes) -> None:
    where = channel.describe()
    snippet = content[:300].decode(errors="replace")
    if status == 429:
        raise RateLimited(f"{where} answered HTTP 429 (too many requests): {snippet}")
    if not 200 <= status < 300:
        extra = " (redirects are not followed)" if 300 <= status < 400 else ""
        raise DeliveryFailed(f"{where} answered HTTP {status}{extra}: {snippet}")
    if channel.type == "webhook":
        return
    try:
        answer = json.loads(content)
    except ValueError as exc:
        raise DeliveryFailed(f"{where} answered HTTP {status} without JSON: {snippet}") from exc
    if not isinstance(answer, dict):
        raise DeliveryFailed(f"{where} answered an unexpected body: {snippet}")
    if channel.type == "feishu":
        # Current bots answer {"code": 0, "msg": "success"}; older ones {"StatusCode": 0, ...}.
        code = answer.get("code", answer.get("StatusCode"))
        detail = answer.get("msg") or answer.get("StatusMessage")
    else:  # WeCom and DingTalk: {"errcode": 0, "errmsg": "ok"}
        code, detail = answer.get("errcode"), answer.get("errmsg")
    if code is None:
        raise DeliveryFailed(f"{where} answered without a result code: {snippet}")
    if code in _RATE_LIMIT_CODES:
        raise RateLimited(f"{where} is rate-limited: error {code}: {detail}")
    if code != 0:
        raise DeliveryFailed(f"{where} refused the message: error {code}: {detail}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
