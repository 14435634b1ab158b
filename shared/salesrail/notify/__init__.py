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

__all__ = [
    "DEFAULT_RATES",
    "ChannelRateLimiter",
    "Rate",
    "AddressPolicy",
    "AddressRefused",
    "ChannelConfig",
    "ChannelList",
    "DeliveryFailed",
    "Message",
    "RateLimited",
    "ResolutionFailed",
    "send",
    "verify_webhook_signature",
    "webhook_signature",
]
