"""What the attachment sweeper may remove, decided from names, ages and references alone.

No I/O here: sweep_disk.py reads the directories and removes files, sweeper.py asks the
database and runs the rounds.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

from activity.attachments.storage import SET_ASIDE_PREFIX, SHA256_HEX, UPLOAD_PREFIX

T = TypeVar("T")

_FAN_OUT = re.compile(r"[0-9a-f]{2}")


def is_stale(mtime: float, *, now: float, grace_s: float) -> bool:
    """Untouched for longer than the grace. An upload still arriving is written to all the
    time, and a stored file whose row is about to commit was written or touched just now: both
    stay younger than any sensible grace."""
    return now - mtime > grace_s


def is_fan_out_name(name: str) -> bool:
    """A directory level of `<root>/<sha[:2]>/<sha[2:4]>/`."""
    return _FAN_OUT.fullmatch(name) is not None


def is_content_name(name: str, *, first: str, second: str) -> bool:
    """A stored file's name: its sha256, in the directories its own first characters name."""
    return SHA256_HEX.fullmatch(name) is not None and (name[:2], name[2:4]) == (first, second)


def is_leftover_name(name: str) -> bool:
    """A file of `tmp/`: an upload (arriving or abandoned) or a file the sweeper set aside."""
    return name.startswith((UPLOAD_PREFIX, SET_ASIDE_PREFIX))


def stale(mtimes: Mapping[str, float], *, now: float, grace_s: float) -> list[str]:
    """The names, among `mtimes` (name -> mtime), untouched for longer than the grace."""
    return sorted(
        name for name, mtime in mtimes.items() if is_stale(mtime, now=now, grace_s=grace_s)
    )


def unreferenced(candidates: Iterable[str], referenced: Container[str]) -> list[str]:
    """The candidate sha256s no attachment names."""
    return [sha256 for sha256 in candidates if sha256 not in referenced]


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size`: one database statement each."""
    if size < 1:
        raise ValueError(f"a chunk holds at least one item, not {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def emptied(entries: Mapping[str, int], removed: Iterable[str]) -> list[str]:
    """The leaf directories (name -> entries listed in it) that the removal of the stored
    files `removed` (sha256s) left empty."""
    left = dict(entries)
    for sha256 in removed:
        if sha256[2:4] in left:
            left[sha256[2:4]] -= 1
    return sorted(leaf for leaf, count in left.items() if count <= 0)
