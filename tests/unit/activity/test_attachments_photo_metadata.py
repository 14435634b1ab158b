"""A photo's EXIF time and position, and whether it was taken far from an activity's time.

`exif_jpeg()` builds a real (1x1 grey, baseline) JPEG with an EXIF APP1 segment by hand, so
no imaging library is needed; the service tests upload it too.
"""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime, timedelta, timezone

import exifread
import filetype
import pytest

from activity.attachments.photo_metadata import (
    DEFAULT_PHOTO_ZONE,
    PHOTO_TIME_TOLERANCE,
    PhotoMetadata,
    degrees_from,
    is_far_from,
    metadata_from_tags,
    photo_time_gap,
    read_photo_metadata,
    taken_at_from,
)

Rational = tuple[int, int]


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


# DQT, SOF0 (1x1, one component), DC and AC Huffman tables of one code each, SOS, one
# entropy-coded byte (DC difference 0, then end of block), EOI: a valid baseline JPEG body.
_GREY_PIXEL = (
    _segment(0xDB, b"\x00" + b"\x01" * 64)
    + _segment(0xC0, bytes([8, 0, 1, 0, 1, 1, 1, 0x11, 0]))
    + _segment(0xC4, bytes([0x00, 1] + [0] * 15 + [0]))
    + _segment(0xC4, bytes([0x10, 1] + [0] * 15 + [0]))
    + _segment(0xDA, bytes([1, 1, 0, 0, 63, 0]))
    + b"\x3f"
    + b"\xff\xd9"
)


def _ifd(entries: list[tuple[int, int, int, bytes]], at: int) -> bytes:
    """A little-endian TIFF IFD placed at offset `at`; values over 4 bytes follow it."""
    data_at = at + 2 + 12 * len(entries) + 4
    table, data = b"", b""
    for tag, kind, count, payload in entries:
        if len(payload) <= 4:
            table += struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, kind, count, data_at + len(data))
            data += payload + b"\0" * (len(payload) % 2)
    return struct.pack("<H", len(entries)) + table + struct.pack("<I", 0) + data


def _ascii(tag: int, text: str) -> tuple[int, int, int, bytes]:
    raw = text.encode() + b"\0"
    return tag, 2, len(raw), raw


def _rationals(
    tag: int, values: tuple[Rational, Rational, Rational]
) -> tuple[int, int, int, bytes]:
    return tag, 5, 3, b"".join(struct.pack("<II", n, d) for n, d in values)


def exif_jpeg(
    taken: str = "2026:11:20 14:30:05",
    offset: str | None = "+08:00",
    lat: tuple[Rational, Rational, Rational] = ((30, 1), (15, 1), (3600, 100)),
    lon: tuple[Rational, Rational, Rational] = ((120, 1), (9, 1), (0, 1)),
    lat_ref: str = "N",
    lon_ref: str = "E",
) -> bytes:
    """A JPEG whose EXIF says when (DateTimeOriginal, OffsetTimeOriginal) and where (GPS)."""
    exif_entries = [_ascii(0x9003, taken)] + ([_ascii(0x9011, offset)] if offset else [])
    gps_entries = [_ascii(1, lat_ref), _rationals(2, lat), _ascii(3, lon_ref), _rationals(4, lon)]
    exif_at = 8 + 2 + 12 * 2 + 4  # after the TIFF header and IFD0's two pointers
    exif = _ifd(exif_entries, exif_at)
    gps_at = exif_at + len(exif)
    pointers = [
        (0x8769, 4, 1, struct.pack("<I", exif_at)),
        (0x8825, 4, 1, struct.pack("<I", gps_at)),
    ]
    tiff = b"II*\0" + struct.pack("<I", 8) + _ifd(pointers, 8) + exif + _ifd(gps_entries, gps_at)
    app1 = b"Exif\0\0" + tiff
    return b"\xff\xd8" + _segment(0xE1, app1) + _GREY_PIXEL


def _tags(data: bytes) -> dict[str, object]:
    tags = exifread.process_file(io.BytesIO(data), details=False, extract_thumbnail=False)
    return {name: tag.values for name, tag in tags.items()}


def test_the_hand_built_photo_is_a_jpeg_to_the_sniffer() -> None:
    assert filetype.guess(exif_jpeg()).mime == "image/jpeg"


def test_time_with_its_offset_and_position_are_read_from_a_jpeg(tmp_path) -> None:
    path = tmp_path / "visit.jpg"
    path.write_bytes(exif_jpeg())

    metadata = read_photo_metadata(path)

    assert metadata.taken_at == datetime(2026, 11, 20, 6, 30, 5, tzinfo=UTC)
    assert metadata.gps_lat == pytest.approx(30.26)
    assert metadata.gps_lon == pytest.approx(120.15)


def test_a_time_without_offset_is_taken_as_china_time() -> None:
    metadata = metadata_from_tags(_tags(exif_jpeg(offset=None)))
    assert metadata.taken_at == datetime(2026, 11, 20, 14, 30, 5, tzinfo=DEFAULT_PHOTO_ZONE)
    assert metadata.taken_at == datetime(2026, 11, 20, 6, 30, 5, tzinfo=UTC)


def test_a_camera_abroad_keeps_its_own_offset() -> None:
    taken = taken_at_from("2026:11:20 09:00:00", "-05:00")
    assert taken == datetime(2026, 11, 20, 9, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize("offset", ["+99:00", "8", "UTC+8", ""])
def test_an_unreadable_offset_falls_back_to_china_time(offset: str) -> None:
    taken = taken_at_from("2026:11:20 14:30:00", offset)
    assert taken == datetime(2026, 11, 20, 6, 30, tzinfo=UTC)


def test_south_and_west_give_negative_degrees() -> None:
    tags = _tags(exif_jpeg(lat_ref="S", lon_ref="W"))
    metadata = metadata_from_tags(tags)
    assert metadata.gps_lat == pytest.approx(-30.26)
    assert metadata.gps_lon == pytest.approx(-120.15)


@pytest.mark.parametrize("value", ["    :  :     :  :  ", "2026-11-20T14:30:05", "", None, 42])
def test_a_blank_or_garbled_time_is_no_time(value: object) -> None:
    assert taken_at_from(value, "+08:00") is None


@pytest.mark.parametrize(
    ("dms", "ref"),
    [
        ([1, 2], "N"),  # not degrees, minutes, seconds
        ([91, 0, 0], "N"),  # beyond the pole
        ("123", "N"),
        ([30, 15, 36], None),  # no hemisphere
    ],
)
def test_an_impossible_position_is_no_position(dms: object, ref: object) -> None:
    assert degrees_from(dms, ref, 90) is None


def test_a_file_without_exif_has_no_metadata(tmp_path) -> None:
    path = tmp_path / "pixel.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    assert read_photo_metadata(path) == PhotoMetadata()


def test_the_gap_is_signed_and_none_without_a_photo_time() -> None:
    occurred = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert photo_time_gap(occurred + timedelta(minutes=30), occurred) == timedelta(minutes=30)
    assert photo_time_gap(occurred - timedelta(hours=3), occurred) == -timedelta(hours=3)
    assert photo_time_gap(None, occurred) is None


def test_a_photo_is_far_only_beyond_the_tolerance_either_way() -> None:
    occurred = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert PHOTO_TIME_TOLERANCE == timedelta(hours=2)
    assert not is_far_from(occurred + PHOTO_TIME_TOLERANCE, occurred)
    assert is_far_from(occurred + PHOTO_TIME_TOLERANCE + timedelta(seconds=1), occurred)
    assert is_far_from(occurred - timedelta(hours=5), occurred)
    assert not is_far_from(None, occurred)
    assert is_far_from(occurred + timedelta(minutes=20), occurred, timedelta(minutes=10))


def test_a_china_time_photo_is_compared_as_an_instant() -> None:
    # 14:30 in Shanghai is 06:30 UTC: half an hour after an activity at 06:00 UTC.
    taken = taken_at_from("2026:11:20 14:30:00", None)
    assert not is_far_from(taken, datetime(2026, 11, 20, 6, 0, tzinfo=UTC))
