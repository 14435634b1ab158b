"""A small circuit breaker for one event loop: closed -> open -> half-open -> closed.

After `failure_threshold` consecutive failures the breaker opens and every call fails fast with
`CircuitOpen`, without touching the remote side. After `reset_s` it lets exactly one trial call
through (half-open): success closes it, failure opens it for another `reset_s`.
Not thread-safe: every caller runs on the same asyncio loop, so no call interleaves a check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from lead_router.enrichment.facts import EnrichmentError


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(EnrichmentError):
    """Refused without calling: the remote side failed too often recently."""


class CircuitBreaker:
    """Counts consecutive failures; `guard()` wraps one call to the remote side."""

    def __init__(
        self,
        *,
        failure_threshold: int,
        reset_s: float,
        name: str = "breaker",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_s < 0:
            raise ValueError("failure_threshold must be >= 1 and reset_s >= 0")
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self.name = name
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def before_call(self) -> None:
        """Raise `CircuitOpen` unless a call may go out now; in half-open, admit one trial."""
        state = self.state
        trial_busy = state is BreakerState.HALF_OPEN and self._trial_in_flight
        if state is BreakerState.OPEN or trial_busy:
            raise CircuitOpen(f"circuit {self.name} is open")
        if state is BreakerState.HALF_OPEN:
            self._trial_in_flight = True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        # A failed trial reopens at once; otherwise the threshold decides.
        if self._trial_in_flight or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
        self._trial_in_flight = False

    def release(self) -> None:
        """A call that ended without a verdict (cancelled): free the trial slot, keep the state."""
        self._trial_in_flight = False

    @contextmanager
    def guard(self, is_failure: Callable[[Exception], bool] = lambda _: True) -> Iterator[None]:
        """Admit one call; exceptions for which `is_failure` is false count as an answer."""
        self.before_call()
        try:
            yield
        except Exception as exc:
            if is_failure(exc):
                self.record_failure()
            else:
                self.record_success()
            raise
        except BaseException:
            self.release()
            raise
        else:
            self.record_success()
