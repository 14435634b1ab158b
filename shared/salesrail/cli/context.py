"""Where the CLI finds the cluster's data: `SALESRAIL_DATA_DIR` (default ./var)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from salesrail.settings import sqlite_url


def data_dir() -> Path:
    return Path(os.environ.get("SALESRAIL_DATA_DIR", "var")).resolve()


def auth_database_url() -> str:
    return os.environ.get("SALESRAIL_AUTH_DATABASE_URL") or sqlite_url(data_dir() / "auth.db")


def state_file() -> Path:
    return data_dir() / "cluster.json"


def jwt_secret() -> str:
    """The embedded cluster's signing secret: from the environment, else made once in var/."""
    if os.environ.get("SALESRAIL_JWT_SECRET"):
        return os.environ["SALESRAIL_JWT_SECRET"]
    path = data_dir() / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
