"""The attachment sweeper's file-system work. Blocking: run it in a worker thread.

Every path touched is the store's root joined with names sweep_rules accepts (hex digests,
fan-out directories, `tmp/` leftovers), so nothing outside the root is ever reached. No symlink
in the store is followed: a link, like any name outside the scheme, is reported and left alone.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from activity.attachments.storage import SET_ASIDE_PREFIX, TMP_DIR, place
from activity.attachments.sweep_rules import is_content_name, is_fan_out_name, is_leftover_name

# Given a file's mtime at the last look: whether it may still be removed.
StillStale = Callable[[float], bool]


@dataclass
class Listing:
    """One part of the store: its files in the scheme by name with their mtimes, and the
    entries outside the scheme (relative to the root)."""

    mtimes: dict[str, float] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)


@dataclass
class FanOutListing(Listing):
    """`<root>/<first>/`: also how many entries each leaf directory held."""

    leaves: dict[str, int] = field(default_factory=dict)


@dataclass
class Removal:
    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    # Found touched (or gone) at the last look, just before removal.
    kept: int = 0
    failed: list[str] = field(default_factory=list)


def list_root(root: Path) -> tuple[list[str], list[str]]:
    """The fan-out directories under the root, and the entries outside the scheme."""
    fan_outs: list[str] = []
    unexpected: list[str] = []
    # The root itself may be a link (to a larger disk, say): the operator chose it.
    for entry in _entries(root, follow=True):
        in_scheme = entry.name == TMP_DIR or is_fan_out_name(entry.name)
        if not (in_scheme and entry.is_dir(follow_symlinks=False)):
            unexpected.append(entry.name)
        elif entry.name != TMP_DIR:
            fan_outs.append(entry.name)
    return sorted(fan_outs), unexpected


def list_tmp(root: Path) -> Listing:
    listing = Listing()
    for entry in _entries(root / TMP_DIR):
        if is_leftover_name(entry.name) and entry.is_file(follow_symlinks=False):
            _note_mtime(listing, entry)
        else:
            listing.unexpected.append(f"{TMP_DIR}/{entry.name}")
    return listing


def list_fan_out(root: Path, first: str) -> FanOutListing:
    """The stored files under `<root>/<first>/`, by sha256."""
    listing = FanOutListing()
    for leaf in _entries(root / first):
        if not (is_fan_out_name(leaf.name) and leaf.is_dir(follow_symlinks=False)):
            listing.unexpected.append(f"{first}/{leaf.name}")
            continue
        entries = _entries(Path(leaf.path))
        listing.leaves[leaf.name] = len(entries)
        for entry in entries:
            named = is_content_name(entry.name, first=first, second=leaf.name)
            if named and entry.is_file(follow_symlinks=False):
                _note_mtime(listing, entry)
            else:
                listing.unexpected.append(f"{first}/{leaf.name}/{entry.name}")
    return listing


def remove_leftovers(root: Path, names: Sequence[str], *, still_stale: StillStale) -> Removal:
    """Remove the files `names` of `tmp/` that are still stale at the last look."""
    removal = Removal()
    for name in names:
        path = root / TMP_DIR / name
        try:
            info = path.lstat()
            if not (stat.S_ISREG(info.st_mode) and still_stale(info.st_mtime)):
                removal.kept += 1
                continue
            path.unlink()
        except FileNotFoundError:  # committed, discarded or swept by another worker meanwhile
            removal.kept += 1
            continue
        except OSError as exc:
            removal.failed.append(f"{TMP_DIR}/{name}: {exc!r}")
            continue
        removal.removed.append(name)
        removal.freed_bytes += info.st_size
    return removal


def remove_orphans(root: Path, sha256s: Sequence[str], *, still_stale: StillStale) -> Removal:
    """Remove the stored files `sha256s` (no attachment names them) that are still stale at
    the last look, which is taken once each is set aside."""
    removal = Removal()
    aside_dir = root / TMP_DIR
    aside_dir.mkdir(exist_ok=True)
    if aside_dir.is_symlink():  # files set aside would leave the store
        removal.failed.append(f"{TMP_DIR}: a symlink; no stored file is removed through it")
        return removal
    for sha256 in sha256s:
        path = root / sha256[:2] / sha256[2:4] / sha256
        aside = root / TMP_DIR / f"{SET_ASIDE_PREFIX}{sha256}-{secrets.token_hex(4)}"
        try:
            freed = _remove_orphan(path, aside, still_stale)
        except OSError as exc:
            removal.failed.append(f"{sha256[:2]}/{sha256[2:4]}/{sha256}: {exc!r}")
            continue
        if freed is None:
            removal.kept += 1
        else:
            removal.removed.append(sha256)
            removal.freed_bytes += freed
    return removal


def _remove_orphan(path: Path, aside: Path, still_stale: StillStale) -> int | None:
    """The bytes freed, or None when the file stays."""
    try:
        info = path.lstat()
        if not (stat.S_ISREG(info.st_mode) and still_stale(info.st_mtime)):
            return None
        os.rename(path, aside)
    except FileNotFoundError:  # removed by another worker's sweep meanwhile
        return None
    # An upload of the same content touches the stored file (PendingFile.commit) before it
    # records its row. Once the file is set aside that touch finds nothing and the upload
    # places its own copy; a touch that came before shows in the mtime read now, and the
    # file goes back. Reading the mtime and then unlinking in place would leave a moment in
    # between where a touch is missed and the new row would name a file about to vanish.
    info = aside.lstat()
    if still_stale(info.st_mtime):
        aside.unlink()
        return info.st_size
    place(aside, path)  # the same bytes as any copy placed there meanwhile
    return None


def prune(root: Path, first: str, leaves: Sequence[str], *, then_first: bool) -> int:
    """Remove the empty leaf directories `leaves` of `<root>/<first>/`, then (`then_first`)
    `<root>/<first>/` itself if that leaves it empty; how many were removed. A directory
    something arrived in meanwhile stays: rmdir removes only empty ones. An upload placing a
    file there makes the directory again (storage.place)."""
    removed = 0
    for leaf in leaves:
        try:
            os.rmdir(root / first / leaf)
            removed += 1
        except OSError:
            then_first = False
    if then_first:
        try:
            os.rmdir(root / first)
            removed += 1
        except OSError:
            pass
    return removed


def _entries(directory: Path, *, follow: bool = False) -> list[os.DirEntry[str]]:
    """The entries of `directory`; none if it is missing, or a symlink and not `follow`."""
    try:
        if not stat.S_ISDIR((directory.stat() if follow else directory.lstat()).st_mode):
            return []
        with os.scandir(directory) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _note_mtime(listing: Listing, entry: os.DirEntry[str]) -> None:
    try:
        listing.mtimes[entry.name] = entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:  # committed or removed since the directory was read
        pass
