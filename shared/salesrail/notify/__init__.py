"""Telling people things through their channels: one implementation for every service."""

from salesrail.notify.addresses import AddressPolicy, AddressRefused, ResolutionFailed
from salesrail.notify.channels import (
    ChannelConfig,
    ChannelList,
    DeliveryFailed,
    Message,
    send,
    verify_webhook_signature,
    webhook_signature,
)

__all__ = [
    "AddressPolicy",
    "AddressRefused",
    "ChannelConfig",
    "ChannelList",
    "DeliveryFailed",
    "Message",
    "ResolutionFailed",
    "send",
    "verify_webhook_signature",
    "webhook_signature",
]
