"""How often a channel may be sent to: group robots refuse bursts (WeCom and DingTalk allow
20 messages a minute per robot, Feishu 100), so a burst waits its turn instead of failing."""

from __future__ import annotations

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

    `reserve` either books a send now (0.0) or answers how long to wait. Failed sends count
    too: the platform counted them.
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
        return 0.0
