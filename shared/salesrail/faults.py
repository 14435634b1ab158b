"""Named crash points for testing crash safety.

A test starts a service with `SALESRAIL_FAULTS='["relay.after_commit"]'`; when the code reaches
that point the process kills itself with SIGKILL, exactly as a power cut would. In normal
operation the set is empty and `crash_point` is a set lookup.
"""

from __future__ import annotations

import os
import signal

_armed: frozenset[str] = frozenset()


def arm(names: list[str]) -> None:
    global _armed
    _armed = frozenset(names)


def crash_point(name: str) -> None:
    if name in _armed:
        os.kill(os.getpid(), signal.SIGKILL)
