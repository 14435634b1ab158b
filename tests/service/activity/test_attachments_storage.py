"""The content store on a real disk: files appear whole under their hash, once, or not at all."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from activity.attachments import storage
from activity.attachments.storage import ContentStore


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_committed_file_lies_under_its_hash_and_nothing_is_left_in_tmp(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    pending = store.pending()
    for chunk in (b"%PDF-1.7\n", b"x" * 100_000, b"%%EOF\n"):
        pending.write(chunk)

    sha256 = pending.commit()

    content = b"%PDF-1.7\n" + b"x" * 100_000 + b"%%EOF\n"
    assert sha256 == hashlib.sha256(content).hexdigest()
    assert pending.size == len(content)
    assert files_under(tmp_path) == [tmp_path / sha256[:2] / sha256[2:4] / sha256]
    assert store.path_of(sha256).read_bytes() == content


def test_the_same_content_committed_twice_is_one_file(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    shas = []
    for _ in range(2):
        pending = store.pending()
        pending.write(b"same bytes")
        shas.append(pending.commit())
    assert shas[0] == shas[1]
    assert files_under(tmp_path) == [store.path_of(shas[0])]


def test_a_discarded_upload_leaves_no_file(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    pending = store.pending()
    pending.write(b"half an upl")
    pending.discard()
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("sha256", ["../../etc/passwd", "ABC", "g" * 64, "a" * 63])
def test_only_a_sha256_names_a_stored_file(tmp_path: Path, sha256: str) -> None:
    with pytest.raises(ValueError):
        ContentStore(tmp_path).path_of(sha256)


def test_committing_content_already_stored_makes_its_file_fresh(tmp_path: Path) -> None:
    """The sweeper takes an old file no attachment names for a leftover: the row of this
    upload is not committed yet, so the stored file must look new."""
    store = ContentStore(tmp_path)
    first = store.pending()
    first.write(b"same bytes")
    path = store.path_of(first.commit())
    long_ago = time.time() - 30 * 24 * 3600
    os.utime(path, (long_ago, long_ago))

    again = store.pending()
    again.write(b"same bytes")
    again.commit()

    assert time.time() - path.stat().st_mtime < 60
    assert files_under(tmp_path) == [path]


def test_a_commit_makes_again_the_directory_a_sweeper_removed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContentStore(tmp_path)
    pending = store.pending()
    pending.write(b"new bytes")
    replace = os.replace
    removed: list[Path] = []

    def swept_first(source: Path, target: Path) -> None:
        if not removed:  # the sweeper prunes the empty directory between mkdir and rename
            removed.append(Path(target).parent)
            os.rmdir(Path(target).parent)
        replace(source, target)

    monkeypatch.setattr(storage.os, "replace", swept_first)
    sha256 = pending.commit()

    assert removed == [store.path_of(sha256).parent]
    assert store.path_of(sha256).read_bytes() == b"new bytes"
