"""Telling people things through their channels: one implementation for every service."""

from salesrail.notify.addresses import AddressPolicy, AddressRefused, ResolutionFailed
from salesrail.notify.channels import (
    ChannelConfig,
    ChannelList,
    DeliveryFailed,
    Message,
    RateLimited,
    send,
    verify_webhook_signature,
    webhook_signature,
)
from salesrail.notify.rate_limits import DEFAULT_RATES, ChannelRateLimiter, Rate
from salesrail.notify.sealing import CannotOpen, InvalidKey, Sealer
from salesrail.notify.stored import (
    ChannelKeyMissing,
    StoredChannel,
    open_channel,
    redacted_sealed,
    seal_channel,
)

__all__ = [
    "DEFAULT_RATES",
    "ChannelRateLimiter",
    "Rate",
    "AddressPolicy",
    "AddressRefused",
    "CannotOpen",
    "ChannelKeyMissing",
    "ChannelConfig",
    "ChannelList",
    "DeliveryFailed",
    "InvalidKey",
    "Message",
    "RateLimited",
    "ResolutionFailed",
    "Sealer",
    "StoredChannel",
    "open_channel",
    "redacted_sealed",
    "seal_channel",
    "send",
    "verify_webhook_signature",
    "webhook_signature",
]
