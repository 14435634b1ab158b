"""What a file really is, from its first bytes (never its name or the client's Content-Type)."""

from __future__ import annotations

from collections.abc import Sequence

import filetype

# filetype reads at most this many leading bytes; an upload is judged on no more.
HEAD_BYTES = 8192


def sniff(head: bytes) -> str | None:
    """The media type of content starting with `head`; None when no signature is known
    (plain text, scripts, unknown binaries)."""
    guess = filetype.guess(head) if head else None
    return guess.mime if guess is not None else None


def is_allowed(media_type: str, allowed: Sequence[str]) -> bool:
    """An allow-list entry ending in "/" allows a whole family ("image/")."""
    return any(
        media_type.startswith(entry) if entry.endswith("/") else media_type == entry
        for entry in allowed
    )


def kind_of(media_type: str) -> str:
    """The family an activity asks for: image, audio or pdf (else the media type's family)."""
    if media_type == "application/pdf":
        return "pdf"
    return media_type.split("/", 1)[0]
