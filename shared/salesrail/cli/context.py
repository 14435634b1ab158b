"""Where the CLI finds the cluster's data: `SALESRAIL_DATA_DIR` (default ./var)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from salesrail.settings import sqlite_url

CHANNEL_KEYS_FILE = "channel-keys"


def data_dir() -> Path:
    return Path(os.environ.get("SALESRAIL_DATA_DIR", "var")).resolve()


def auth_database_url() -> str:
    return os.environ.get("SALESRAIL_AUTH_DATABASE_URL") or sqlite_url(data_dir() / "auth.db")


def lead_router_database_url() -> str:
    """lead-router's database, found as lead-router finds it."""
    return (
        os.environ.get("SALESRAIL_LEAD_ROUTER_DATABASE_URL")
        or os.environ.get("SALESRAIL_DATABASE_URL")
        or sqlite_url(data_dir() / "lead_router.db")
    )


def state_file() -> Path:
    return data_dir() / "cluster.json"


def jwt_secret() -> str:
    """The embedded cluster's signing secret: from the environment, else made once in var/."""
    return _kept("SALESRAIL_JWT_SECRET", "jwt-secret", lambda: secrets.token_urlsafe(48))


def channel_keys() -> str:
    """The embedded cluster's keys sealing channel credentials (comma-separated, the first
    seals): from the environment, else one made once in var/channel-keys. To rotate, put a
    new key first in that file and keep the old one after it."""
    return _kept(
        "SALESRAIL_CHANNEL_KEYS", CHANNEL_KEYS_FILE, lambda: Fernet.generate_key().decode()
    )


def configured_channel_keys() -> str | None:
    """The channel keys lead-router reads (environment, else the embedded cluster's file);
    None when there are none: never made here."""
    for variable in ("SALESRAIL_LEAD_ROUTER_CHANNEL_KEYS", "SALESRAIL_CHANNEL_KEYS"):
        if os.environ.get(variable):
            return os.environ[variable]
    path = data_dir() / CHANNEL_KEYS_FILE
    return path.read_text().strip() if path.exists() else None


def _kept(variable: str, file_name: str, make: Callable[[], str]) -> str:
    """The variable's value, else the data dir's file, made (readable by us only) if missing."""
    if os.environ.get(variable):
        return os.environ[variable]
    path = data_dir() / file_name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600: the secret is never readable by others, not even for a moment.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(make())
    return path.read_text().strip()
