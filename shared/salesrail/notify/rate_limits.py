"""How often a channel may be sent to: group robots refuse bursts (WeCom and DingTalk allow
20 messages a minute per robot, Feishu 100), so a burst waits its turn instead of failing."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    messages: int
    per_s: float


# The platforms' published limits per robot; plain webhooks are the receiver's business.
DEFAULT_RATES: Mapping[str, Rate] = {
    "wecom": Rate(20, 60.0),
    "dingtalk": Rate(20, 60.0),
    "feishu": Rate(100, 60.0),
}


class ChannelRateLimiter:
    """A sliding window of recent sends per channel endpoint (in this process).

    `reserve` either books a send now (0.0) or answers how long to wait; `finished` moves the
    booking to when the send ended, which is no earlier than when the platform counted it (a
    first send that took 0.2 s to connect would otherwise let the next window open 0.2 s
    early, as the platform sees it). Failed sends count too: the platform counted them.
    """

    def __init__(
        self,
        rates: Mapping[str, Rate] = DEFAULT_RATES,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rates = dict(rates)
        self.clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._sending: dict[str, deque[float]] = {}  # bookings of sends not finished yet

    def reserve(self, channel_type: str, endpoint: str) -> float:
        rate = self.rates.get(channel_type)
        if rate is None:
            return 0.0
        now = self.clock()
        sent = self._sent.setdefault(endpoint, deque())
        while sent and sent[0] <= now - rate.per_s:
            sent.popleft()
        if len(sent) >= rate.messages:
            return sent[0] + rate.per_s - now
        sent.append(now)
        self._sending.setdefault(endpoint, deque()).append(now)
        return 0.0

    def finished(self, channel_type: str, endpoint: str) -> None:
        """A send booked by `reserve` has ended (sent or failed)."""
        sending = self._sending.get(endpoint)
        if channel_type not in self.rates or not sending:
            return
        booked = sending.popleft()
        sent = self._sent[endpoint]
        with contextlib.suppress(ValueError):  # already out of the window
            sent.remove(booked)
        sent.append(self.clock())  # the latest instant yet: the window stays in order
