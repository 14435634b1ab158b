"""Signatures receivers can check: our webhook's HMAC, DingTalk's and Feishu's own schemes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from salesrail.notify.channels import (
    ChannelConfig,
    ChannelList,
    Message,
    build_request,
    dingtalk_sign,
    verify_webhook_signature,
)

NOW = 1_767_225_600.25  # 2026-01-01T00:00:00.25Z
SECRET = "s3cr3t-for-the-receiver-0123456789"
MESSAGE = Message(
    title="新线索：杭州某某紧固件",
    text="城市 杭州，品类 紧固件",
    severity="warning",
    link="https://salesrail.example/leads/42",
    lead_id="lead-42",
)


def webhook(**overrides: object) -> ChannelConfig:
    values: dict[str, object] = {
        "id": "crm",
        "type": "webhook",
        "url": "https://hooks.example/salesrail",
        "secret": SECRET,
    }
    values.update(overrides)
    return ChannelConfig.model_validate(values)


def receiver_accepts(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """What a receiver written from the documentation alone does (no Salesrail code)."""
    timestamp = headers["X-Salesrail-Timestamp"]
    if abs(now - int(timestamp)) > 300:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers["X-Salesrail-Signature"])


def test_a_webhook_request_is_signed_so_a_receiver_can_verify_it() -> None:
    request = build_request(webhook(), MESSAGE, delivery_id="delivery-1", now=NOW)

    assert request.headers["X-Salesrail-Timestamp"] == str(int(NOW))
    assert request.headers["X-Salesrail-Delivery"] == "delivery-1"
    assert receiver_accepts(SECRET, request.headers, request.body, now=NOW + 10)
    assert verify_webhook_signature(
        SECRET,
        timestamp=request.headers["X-Salesrail-Timestamp"],
        body=request.body,
        signature=request.headers["X-Salesrail-Signature"],
        now=NOW + 10,
    )
    payload = json.loads(request.body)
    assert payload["delivery_id"] == "delivery-1"
    assert payload["title"] == MESSAGE.title
    assert payload["lead_id"] == "lead-42"


def test_a_tampered_stale_or_foreign_webhook_request_fails_verification() -> None:
    request = build_request(webhook(), MESSAGE, delivery_id="delivery-1", now=NOW)
    timestamp = request.headers["X-Salesrail-Timestamp"]
    signature = request.headers["X-Salesrail-Signature"]

    def verify(
        secret: str = SECRET, body: bytes = request.body, ts: str = timestamp, now: float = NOW
    ) -> bool:
        return verify_webhook_signature(
            secret, timestamp=ts, body=body, signature=signature, now=now
        )

    assert verify()
    assert not verify(body=request.body.replace(b"warning", b"info"))
    assert not verify(secret="another-secret-0123456789")
    assert not verify(ts=str(int(NOW) + 1))  # the timestamp is part of what is signed
    assert not verify(now=NOW + 301)  # outside the replay window
    assert not verify(now=NOW - 301)
    assert not verify(ts="yesterday")


def documented_dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk's sample (open.dingtalk.com, 自定义机器人安全设置, 加签), as published."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    hmac_code = hmac.new(
        secret.encode("utf-8"), string_to_sign.encode("utf-8"), digestmod=hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(hmac_code))


def test_a_dingtalk_request_carries_the_documented_timestamp_and_sign() -> None:
    secret = "SEC" + "0f" * 32
    channel = ChannelConfig(
        id="ding",
        type="dingtalk",
        secret=SecretStr(secret),
        url="https://oapi.dingtalk.com/robot/send?access_token=abc123",
    )

    request = build_request(channel, MESSAGE, delivery_id=None, now=NOW)

    timestamp_ms = int(NOW * 1000)
    raw_query = dict(part.split("=", 1) for part in request.url.query.decode().split("&"))
    assert raw_query["access_token"] == "abc123"
    assert raw_query["timestamp"] == str(timestamp_ms)
    assert raw_query["sign"] == documented_dingtalk_sign(timestamp_ms, secret)
    body = json.loads(request.body)
    assert body["msgtype"] == "markdown"
    assert MESSAGE.link in body["markdown"]["text"]


def test_our_dingtalk_sign_is_the_documented_algorithm() -> None:
    # DingTalk's robot docs: Base64(HMAC-SHA256(key=secret, msg="<timestamp ms>\n<secret>")),
    # sent URL-encoded as `sign` beside `timestamp`. Computed here independently.
    secret = "SEC" + "a1" * 32
    timestamp = round(NOW * 1000)
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()

    assert dingtalk_sign(secret, timestamp) == expected


def test_a_feishu_request_is_signed_as_feishu_documents() -> None:
    secret = "feishu-secret-xyz"
    channel = ChannelConfig(
        id="fs",
        type="feishu",
        secret=SecretStr(secret),
        url="https://open.feishu.cn/open-apis/bot/v2/hook/0b2c3d4e-aaaa",
    )

    body = json.loads(build_request(channel, MESSAGE, delivery_id=None, now=NOW).body)

    # open.feishu.cn, 自定义机器人 签名校验: the string to sign is the HMAC key, the message empty.
    string_to_sign = f"{int(NOW)}\n{secret}"
    expected = base64.b64encode(
        hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    ).decode("utf-8")
    assert body["timestamp"] == str(int(NOW))
    assert body["sign"] == expected
    assert body["msg_type"] == "post"


def test_a_wecom_message_fits_the_robots_limit_and_keeps_its_link() -> None:
    channel = ChannelConfig(
        id="wx", type="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1"
    )
    long_message = MESSAGE.model_copy(update={"text": "长" * 5000})

    content = json.loads(build_request(channel, long_message, delivery_id=None, now=NOW).body)[
        "markdown"
    ]["content"]

    assert len(content.encode()) <= 4096
    assert content.endswith(f"({MESSAGE.link})")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"type": "webhook", "url": "https://hooks.example/x"}, "secret"),
        ({"type": "webhook", "url": "https://hooks.example/x", "secret": "short"}, "secret"),
        ({"type": "webhook", "url": "ftp://hooks.example/x", "secret": SECRET}, "url"),
        ({"type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}, "url"),
        ({"type": "wecom", "url": "https://qyapi.weixin.qq.com/x?key=k", "secret": "x"}, "secret"),
        ({"type": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send"}, "url"),
        ({"type": "slack", "url": "https://hooks.example/x"}, "type"),
        ({"type": "webhook", "url": "https://h.example/", "secret": SECRET, "secert": 1}, "secert"),
        ({"id": "has space", "type": "feishu", "url": "https://open.feishu.cn/x"}, "id"),
    ],
)
def test_a_bad_channel_is_refused_naming_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChannelConfig.model_validate({"id": "c1", **values})

    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_a_channel_keeps_its_secret_for_sealing_but_out_of_reprs() -> None:
    channel = webhook(url="https://hooks.example/salesrail?token=do-not-log")

    assert channel.in_clear()["secret"] == SECRET
    assert ChannelConfig.model_validate(channel.in_clear()) == channel
    assert SECRET not in repr(channel)
    assert "do-not-log" not in repr(channel)
    assert "do-not-log" not in channel.describe()


def test_an_owners_channel_list_names_the_bad_entry_and_refuses_duplicate_ids() -> None:
    class RepIn(BaseModel):
        channels: ChannelList = []

    good = webhook().in_clear()
    with pytest.raises(ValidationError) as caught:
        RepIn.model_validate({"channels": [good, {**good, "id": "b", "url": "gopher://x"}]})
    assert [error["loc"] for error in caught.value.errors()] == [("channels", 1, "url")]
    with pytest.raises(ValidationError, match="unique within an owner: crm"):
        RepIn.model_validate({"channels": [good, good]})
    assert webhook().redacted() == {
        "id": "crm",
        "type": "webhook",
        "url": "https://hooks.example/…",
        "secret": "set",
        "enabled": True,
    }
