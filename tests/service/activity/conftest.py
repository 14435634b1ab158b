"""Fixtures of activity's service tests: the app on the test's database and its own NATS."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.service.activity.helpers import make_app


@pytest.fixture
def nats_url(fresh_nats_url: str) -> str:
    """A server of each test alone: its streams hold only this test's events."""
    return fresh_nats_url


@pytest.fixture
def app(database_url: str, auth_database_url: str, nats_url: str, tmp_path: Path) -> FastAPI:
    return make_app(database_url, auth_database_url, nats_url, tmp_path)
