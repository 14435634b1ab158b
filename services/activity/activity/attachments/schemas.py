"""The HTTP shapes of attachments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AttachmentOut(BaseModel):
    attachment_id: str
    lead_id: str
    sha256: str
    kind: str = Field(description="image, audio or pdf, from the sniffed media type")
    media_type: str = Field(description="sniffed from the bytes, not taken from the client")
    size: int
    original_name: str | None
    uploaded_by: str
    uploaded_at: datetime
    taken_at: datetime | None = Field(description="EXIF DateTimeOriginal of a photo")
    gps_lat: float | None
    gps_lon: float | None
