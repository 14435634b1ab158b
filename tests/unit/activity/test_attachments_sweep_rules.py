"""What the attachment sweeper may remove, from names, ages and references alone."""

from __future__ import annotations

import hashlib

import pytest

from activity.attachments.sweep_rules import (
    chunked,
    emptied,
    is_content_name,
    is_fan_out_name,
    is_leftover_name,
    is_stale,
    stale,
    unreferenced,
)

HOUR = 3600.0
NOW = 1_800_000_000.0
SHA = hashlib.sha256(b"a photo").hexdigest()


@pytest.mark.parametrize(
    ("age_s", "expected"),
    [(0.0, False), (HOUR - 1, False), (HOUR, False), (HOUR + 1, True), (30 * 24 * HOUR, True)],
)
def test_a_file_is_stale_only_once_untouched_for_longer_than_the_grace(
    age_s: float, expected: bool
) -> None:
    assert is_stale(NOW - age_s, now=NOW, grace_s=HOUR) is expected


def test_a_file_from_the_future_is_not_stale() -> None:
    # A clock stepped back (or a touch from a host ahead of us) must not make a file look old.
    assert not is_stale(NOW + HOUR, now=NOW, grace_s=HOUR)


def test_stale_names_are_those_older_than_the_grace_in_order() -> None:
    mtimes = {"c": NOW - 2 * HOUR, "a": NOW - 3 * HOUR, "b": NOW - 60}
    assert stale(mtimes, now=NOW, grace_s=HOUR) == ["a", "c"]


def test_a_content_name_is_its_sha256_under_its_own_first_characters() -> None:
    assert is_content_name(SHA, first=SHA[:2], second=SHA[2:4])
    assert not is_content_name(SHA, first=SHA[2:4], second=SHA[:2])  # in another directory
    assert not is_content_name(SHA.upper(), first=SHA[:2].upper(), second=SHA[2:4].upper())
    assert not is_content_name(SHA[:-1], first=SHA[:2], second=SHA[2:4])
    assert not is_content_name(SHA + ".jpg", first=SHA[:2], second=SHA[2:4])
    assert not is_content_name("..", first="..", second="..")


@pytest.mark.parametrize(
    ("name", "expected"), [("ab", True), ("0f", True), ("AB", False), ("abc", False), ("g0", False)]
)
def test_fan_out_directories_are_two_lowercase_hex_digits(name: str, expected: bool) -> None:
    assert is_fan_out_name(name) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("upload-k2j3h4", True),
        (f"sweep-{SHA}-0a1b2c3d", True),
        ("notes.txt", False),
        (".upload-x", False),
    ],
)
def test_only_uploads_and_files_set_aside_are_leftovers_of_tmp(name: str, expected: bool) -> None:
    assert is_leftover_name(name) is expected


def test_unreferenced_keeps_the_candidates_no_attachment_names() -> None:
    assert unreferenced(["a", "b", "c"], {"b", "z"}) == ["a", "c"]
    assert unreferenced([], {"b"}) == []


def test_chunks_cover_every_item_once_none_larger_than_asked() -> None:
    items = [str(n) for n in range(7)]
    chunks = list(chunked(items, 3))
    assert chunks == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert list(chunked([], 3)) == []
    with pytest.raises(ValueError):
        list(chunked(items, 0))


def test_a_leaf_directory_is_emptied_when_every_entry_in_it_was_removed() -> None:
    one, two = "ab" + "cd" + "0" * 60, "ab" + "cd" + "1" * 60
    other = "ab" + "ef" + "2" * 60
    leaves = {"cd": 2, "ef": 2, "00": 0}
    # "00" was empty already; "ef" keeps an entry (another file, or one not in the scheme).
    assert emptied(leaves, [one, two, other]) == ["00", "cd"]
    assert emptied(leaves, [one]) == ["00"]
