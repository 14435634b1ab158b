"""Content-addressed files on local disk: `<root>/<sha[:2]>/<sha[2:4]>/<sha>`, each content once.

A file is written under `<root>/tmp/` while it arrives, hashed as it grows, then renamed into
place (same file system, so the rename is atomic): readers never see a partial file. Blocking
calls: run them in a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def pending(self) -> PendingFile:
        """A new temporary file to write an arriving upload into."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp, prefix="upload-")
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
        if target.exists():
            self.path.unlink()
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)
        _fsync_dir(target.parent)
        return sha256

    def discard(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
