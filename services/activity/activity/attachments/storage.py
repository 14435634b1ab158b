"""Content-addressed files on local disk: `<root>/<sha[:2]>/<sha[2:4]>/<sha>`, each content once.

A file is written under `<root>/tmp/` while it arrives, hashed as it grows, then renamed into
place (same file system, so the rename is atomic): readers never see a partial file. Blocking
calls: run them in a worker thread.

`tmp/` holds `upload-*` files still arriving and `sweep-*` files the sweeper set aside to
remove (see sweep_disk.py); the sweeper removes what is left there after a crash.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
TMP_DIR = "tmp"
UPLOAD_PREFIX = "upload-"
SET_ASIDE_PREFIX = "sweep-"
# A sweeper may remove an empty fan-out directory between our mkdir and rename: make it again.
_PLACE_ATTEMPTS = 3


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        if not SHA256_HEX.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def pending(self) -> PendingFile:
        """A new temporary file to write an arriving upload into."""
        tmp = self.root / TMP_DIR
        tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp, prefix=UPLOAD_PREFIX)
        return PendingFile(self, Path(name), os.fdopen(fd, "wb"))


class PendingFile:
    """A file being written: counted and hashed as it grows, then committed or discarded."""

    def __init__(self, store: ContentStore, path: Path, handle: BinaryIO) -> None:
        self._store = store
        self.path = path
        self._handle = handle
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._hash.update(data)
        self.size += len(data)

    def commit(self) -> str:
        """Move the complete file to its content address; its sha256. Content already stored
        is kept as it is and this copy dropped."""
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        sha256 = self._hash.hexdigest()
        target = self._store.path_of(sha256)
        if _refresh(target):
            self.path.unlink()
            return sha256
        place(self.path, target)
        return sha256

    def discard(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


def place(source: Path, target: Path) -> None:
    """Rename `source` to `target`, making the fan-out directories it needs."""
    for attempt in range(1, _PLACE_ATTEMPTS + 1):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            break
        except FileNotFoundError:
            if attempt == _PLACE_ATTEMPTS or not source.exists():
                raise
    _fsync_dir(target.parent)


def _refresh(target: Path) -> bool:
    """Whether `target` is stored already; if so, its mtime is made now.

    The sweeper removes a stored file no attachment row names once its mtime is older than a
    grace period. The row of this upload is not committed yet, so its content would look like
    such a file: a fresh mtime keeps it. The sweeper sets a file aside (renames it) before it
    reads the mtime a last time, so either it sees this touch and puts the file back, or this
    touch finds no file and the upload places its own copy. Touching, not asking whether it
    exists, leaves no moment in between.
    """
    try:
        os.utime(target)
    except FileNotFoundError:
        return False
    return True


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
