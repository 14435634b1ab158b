"""HTTP routes for attachments (upload, metadata, content)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["attachments"])
