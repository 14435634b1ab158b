"""Channel rate limits: a burst to a group robot waits its turn instead of being refused."""

from __future__ import annotations

import json

import pytest

from salesrail.notify import ChannelConfig, DeliveryFailed, Rate, RateLimited
from salesrail.notify.channels import _check_answer
from salesrail.notify.rate_limits import ChannelRateLimiter


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_robot_takes_its_quota_then_says_how_long_to_wait() -> None:
    ticks = Ticks()
    limiter = ChannelRateLimiter({"wecom": Rate(3, 60.0)}, clock=ticks)
    assert [limiter.reserve("wecom", "robot-a") for _ in range(3)] == [0.0, 0.0, 0.0]
    ticks.now += 10
    assert limiter.reserve("wecom", "robot-a") == pytest.approx(50.0)
    assert limiter.reserve("wecom", "robot-b") == 0.0  # another robot has its own quota
    ticks.now += 50  # the three sends left the window
    assert [limiter.reserve("wecom", "robot-a") for _ in range(3)] == [0.0, 0.0, 0.0]
    ticks.now += 1
    assert limiter.reserve("wecom", "robot-a") == pytest.approx(59.0)


def test_the_window_counts_from_when_a_slow_send_ended() -> None:
    ticks = Ticks()
    limiter = ChannelRateLimiter({"wecom": Rate(2, 2.0)}, clock=ticks)
    assert limiter.reserve("wecom", "r") == 0.0
    assert limiter.reserve("wecom", "r") == 0.0
    ticks.now += 0.3  # the first connection took 0.3 s: the robot counted them about now
    limiter.finished("wecom", "r")
    limiter.finished("wecom", "r")
    ticks.now += 1.8  # 2.1 s after booking, 1.8 s after the robot saw them
    assert limiter.reserve("wecom", "r") == pytest.approx(0.2)
    ticks.now += 0.2
    assert limiter.reserve("wecom", "r") == 0.0
    limiter.finished("unknown", "r")  # nothing booked for it: nothing happens


def test_a_refused_reservation_is_not_counted_and_unlimited_types_always_pass() -> None:
    ticks = Ticks()
    limiter = ChannelRateLimiter({"dingtalk": Rate(1, 5.0)}, clock=ticks)
    assert limiter.reserve("dingtalk", "d") == 0.0
    for _ in range(10):
        assert limiter.reserve("dingtalk", "d") > 0
    ticks.now += 5
    assert limiter.reserve("dingtalk", "d") == 0.0
    assert all(limiter.reserve("webhook", "w") == 0.0 for _ in range(1000))


WECOM = ChannelConfig.model_validate(
    {"id": "wx", "type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}
)


@pytest.mark.parametrize(
    ("status", "answer"),
    [(200, {"errcode": 45009, "errmsg": "api freq out of limit"}), (429, {"error": "slow down"})],
)
def test_the_platforms_too_many_answer_is_a_rate_limit_not_a_failure(
    status: int, answer: dict[str, object]
) -> None:
    with pytest.raises(RateLimited):
        _check_answer(WECOM, status, json.dumps(answer).encode())


def test_other_error_codes_stay_failures() -> None:
    with pytest.raises(DeliveryFailed) as raised:
        _check_answer(WECOM, 200, b'{"errcode": 93000, "errmsg": "invalid webhook url"}')
    assert not isinstance(raised.value, RateLimited)
