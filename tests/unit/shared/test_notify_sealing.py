"""Channel credentials sealed at rest: the key ring, and channels as stored."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from salesrail.notify.channels import ChannelConfig
from salesrail.notify.sealing import (
    SEALED_PREFIX,
    CannotOpen,
    InvalidKey,
    Sealer,
    is_sealed,
    open_value,
    parse_keys,
)
from salesrail.notify.stored import (
    ChannelKeyMissing,
    StoredChannel,
    is_current,
    open_channel,
    redacted_sealed,
    reseal_channel,
    seal_channel,
)

OLD, NEW, OTHER = (Fernet.generate_key().decode() for _ in range(3))
SECRET = "receiver-secret-0123456789abcdef"
ROBOT_KEY = "693a91f6-7b2c-4bc4-97a0-0ec2a1fa5aaa"
WEBHOOK = ChannelConfig(
    id="crm",
    type="webhook",
    url="https://hooks.example.com:8443/salesrail?token=url-token-1",
    secret=SECRET,  # type: ignore[arg-type]
)
WECOM = ChannelConfig(
    id="wx",
    type="wecom",
    url=f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT_KEY}",
)


# --- the key ring -------------------------------------------------------------------------


def test_a_sealed_value_is_marked_and_opens_to_what_was_sealed() -> None:
    sealer = Sealer([NEW])

    sealed = sealer.seal("robot-token")

    assert sealed.startswith(SEALED_PREFIX) and is_sealed(sealed)
    assert "robot-token" not in sealed
    assert sealer.open(sealed) == "robot-token"
    assert sealer.seal("robot-token") != sealed  # a fresh token each time: nothing to compare


def test_a_value_stored_in_clear_is_read_as_it_is_with_or_without_keys() -> None:
    assert not is_sealed("https://hooks.example.com/x") and not is_sealed(None)
    assert Sealer([NEW]).open("https://hooks.example.com/x") == "https://hooks.example.com/x"
    assert open_value("in clear", None) == "in clear"


def test_rotation_the_first_key_seals_and_an_old_key_after_it_still_opens() -> None:
    sealed_before = Sealer([OLD]).seal("secret")
    rotated = Sealer.from_text(f"{NEW}, {OLD}")

    assert rotated.open(sealed_before) == "secret"
    assert not rotated.is_current(sealed_before)
    resealed = rotated.reseal(sealed_before)
    assert rotated.is_current(resealed)
    assert Sealer([NEW]).open(resealed) == "secret"  # the old key can go now
    with pytest.raises(CannotOpen):
        Sealer([OLD]).open(resealed)


def test_a_value_no_configured_key_opens_or_that_was_altered_cannot_be_opened() -> None:
    sealed = Sealer([OTHER]).seal("secret")

    with pytest.raises(CannotOpen, match="key that is not configured"):
        Sealer([NEW, OLD]).open(sealed)
    with pytest.raises(CannotOpen, match="no key is configured"):
        open_value(sealed, None)
    altered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(CannotOpen):
        Sealer([OTHER]).open(altered)
    with pytest.raises(CannotOpen):
        Sealer([OTHER]).open(SEALED_PREFIX + "not a token at all ✓")


def test_keys_are_read_comma_separated_and_a_bad_one_is_named_by_position_not_shown() -> None:
    assert parse_keys(f" {NEW} ,{OLD},") == [NEW, OLD]
    with pytest.raises(InvalidKey) as caught:
        parse_keys(f"{NEW},not-a-fernet-key")
    assert "key 2 of 2" in str(caught.value)
    assert "not-a-fernet-key" not in str(caught.value)
    with pytest.raises(InvalidKey):
        parse_keys(" , ")
    assert NEW not in repr(Sealer([NEW]))


def test_a_fingerprint_is_stable_under_one_key_and_says_nothing_without_it() -> None:
    sealer = Sealer([NEW, OLD])

    assert sealer.fingerprint("https://x/?key=1") == Sealer([NEW]).fingerprint("https://x/?key=1")
    assert sealer.fingerprint("https://x/?key=1") != sealer.fingerprint("https://x/?key=2")
    assert Sealer([OLD]).fingerprint("https://x/?key=1") != sealer.fingerprint("https://x/?key=1")


# --- channels as stored -------------------------------------------------------------------


def test_a_stored_channel_has_no_credential_in_clear_and_opens_to_the_same_channel() -> None:
    sealer = Sealer([NEW])

    stored = seal_channel(WEBHOOK, sealer)

    text = json.dumps(stored)
    assert SECRET not in text and "url-token-1" not in text and "/salesrail" not in text
    assert stored["origin"] == "https://hooks.example.com:8443"
    assert (stored["id"], stored["type"], stored["enabled"]) == ("crm", "webhook", True)
    assert open_channel(stored, sealer) == WEBHOOK
    assert open_channel(seal_channel(WECOM, sealer), sealer) == WECOM


def test_without_a_key_a_channel_is_refused_naming_its_credentials() -> None:
    with pytest.raises(ChannelKeyMissing) as webhook_refused:
        seal_channel(WEBHOOK, None)
    with pytest.raises(ChannelKeyMissing) as robot_refused:
        seal_channel(WECOM, None)

    assert webhook_refused.value.fields == ("secret", "url")
    assert robot_refused.value.fields == ("url",)  # a robot URL carries its key
    assert "SALESRAIL_CHANNEL_KEYS" in str(robot_refused.value)


def test_a_channel_stored_in_clear_still_opens_with_or_without_keys() -> None:
    in_clear = WEBHOOK.in_clear()

    assert open_channel(in_clear, None) == WEBHOOK
    assert open_channel(in_clear, Sealer([NEW])) == WEBHOOK


def test_a_channel_sealed_with_an_unknown_key_cannot_be_opened() -> None:
    stored = seal_channel(WEBHOOK, Sealer([OTHER]))

    with pytest.raises(CannotOpen):
        open_channel(stored, Sealer([NEW, OLD]))
    with pytest.raises(CannotOpen):
        open_channel(stored, None)


def test_who_is_told_is_read_without_opening_and_one_endpoint_is_one_delivery() -> None:
    sealer = Sealer([NEW])
    team_robot = seal_channel(WECOM, sealer)
    same_robot = seal_channel(WECOM.model_copy(update={"id": "also"}), sealer)

    read = StoredChannel.read(team_robot)

    assert (read.id, read.type, read.enabled) == ("wx", "wecom", True)
    assert read.endpoint == StoredChannel.read(same_robot).endpoint
    assert read.endpoint != StoredChannel.read(seal_channel(WEBHOOK, sealer)).endpoint
    assert ROBOT_KEY not in read.endpoint
    assert StoredChannel.read(WECOM.in_clear()).id == "wx"  # stored in clear, as before
    with pytest.raises(ValidationError):
        StoredChannel.read({**team_robot, "type": "slack"})
    with pytest.raises(ValidationError):  # in clear and not valid today: checked as before
        StoredChannel.read({**WECOM.in_clear(), "url": "https://qyapi.weixin.qq.com/x"})


def test_a_sealed_channel_is_redacted_for_answers_without_opening() -> None:
    stored = seal_channel(WEBHOOK, Sealer([NEW]))

    assert (
        redacted_sealed(stored)
        == WEBHOOK.redacted()
        == {
            "id": "crm",
            "type": "webhook",
            "url": "https://hooks.example.com:8443/…",
            "secret": "set",
            "enabled": True,
        }
    )


def test_resealing_moves_old_and_clear_channels_to_the_first_key() -> None:
    rotated = Sealer([NEW, OLD])
    sealed_before = seal_channel(WEBHOOK, Sealer([OLD]))

    for stored in (sealed_before, WEBHOOK.in_clear()):
        assert not is_current(stored, rotated)
        resealed = reseal_channel(stored, rotated)
        assert is_current(resealed, rotated)
        assert open_channel(resealed, Sealer([NEW])) == WEBHOOK
        fresh = seal_channel(WEBHOOK, rotated)
        assert StoredChannel.read(resealed).endpoint == StoredChannel.read(fresh).endpoint
    assert is_current(seal_channel(WECOM, rotated), rotated)
