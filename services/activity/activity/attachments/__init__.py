"""Attachments: streamed uploads, type sniffed from the bytes, content-addressed storage."""
