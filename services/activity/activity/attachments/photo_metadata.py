"""When and where a photo was taken (EXIF), and whether that is far from an activity's time."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import exifread
import structlog

log = structlog.get_logger(__name__)

# EXIF times carry no zone unless OffsetTimeOriginal is there; our reps' phones are on China time.
DEFAULT_PHOTO_ZONE = ZoneInfo("Asia/Shanghai")
# A photo taken further than this from an activity's occurred_at is flagged on the activity.
PHOTO_TIME_TOLERANCE = timedelta(hours=2)

# Hours up to 19: any offset it matches is a valid zone (real ones lie within ±14 h).
_OFFSET = re.compile(r"([+-])([01]\d):?([0-5]\d)")


@dataclass(frozen=True)
class PhotoMetadata:
    taken_at: datetime | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None


def read_photo_metadata(path: Path) -> PhotoMetadata:
    """The EXIF time and position of a stored image (blocking: run it in a thread); empty
    when the file has none. Only the header is read, never the image data."""
    try:
        with path.open("rb") as fh:
            tags = exifread.process_file(fh, details=False, extract_thumbnail=False)
    except Exception as exc:  # a photo with broken EXIF is still a photo
        log.warning("photo.exif_unreadable", path=str(path), error=repr(exc))
        return PhotoMetadata()
    return metadata_from_tags({name: getattr(tag, "values", tag) for name, tag in tags.items()})


def metadata_from_tags(values: Mapping[str, Any]) -> PhotoMetadata:
    """PhotoMetadata from exifread's tag values by name ("EXIF DateTimeOriginal", ...)."""
    return PhotoMetadata(
        taken_at=taken_at_from(
            values.get("EXIF DateTimeOriginal"), values.get("EXIF OffsetTimeOriginal")
        ),
        gps_lat=degrees_from(values.get("GPS GPSLatitude"), values.get("GPS GPSLatitudeRef"), 90),
        gps_lon=degrees_from(
            values.get("GPS GPSLongitude"), values.get("GPS GPSLongitudeRef"), 180
        ),
    )


def taken_at_from(original: Any, offset: Any) -> datetime | None:
    """'2026:11:20 14:30:05' (+ '+08:00' when the camera wrote one) as an instant in UTC."""
    if not isinstance(original, str):
        return None
    try:
        local = datetime.strptime(original.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:  # blank ("    :  :  ") or garbled
        return None
    found = _OFFSET.fullmatch(offset.strip()) if isinstance(offset, str) else None
    if found is None:
        zone: tzinfo = DEFAULT_PHOTO_ZONE
    else:
        sign = -1 if found[1] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(found[2]), minutes=int(found[3])))
    return local.replace(tzinfo=zone).astimezone(UTC)


def degrees_from(dms: Any, ref: Any, limit: float) -> float | None:
    """Degrees, minutes, seconds (rationals) and N/S/E/W as signed decimal degrees."""
    if isinstance(dms, str) or not isinstance(dms, Sequence) or len(dms) != 3:
        return None
    if not isinstance(ref, str):
        return None
    try:
        degrees = float(dms[0]) + float(dms[1]) / 60 + float(dms[2]) / 3600
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if ref.strip().upper() in ("S", "W"):
        degrees = -degrees
    return round(degrees, 7) if abs(degrees) <= limit else None


def photo_time_gap(taken_at: datetime | None, occurred_at: datetime) -> timedelta | None:
    """How long after the activity the photo was taken (negative: before); None without a time."""
    return None if taken_at is None else taken_at - occurred_at


def is_far_from(
    taken_at: datetime | None,
    occurred_at: datetime,
    tolerance: timedelta = PHOTO_TIME_TOLERANCE,
) -> bool:
    """True when the photo was taken more than `tolerance` before or after the activity.
    A photo without a time is not far: there is nothing to compare."""
    gap = photo_time_gap(taken_at, occurred_at)
    return gap is not None and abs(gap) > tolerance
