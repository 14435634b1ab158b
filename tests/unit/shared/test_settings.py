from typing import ClassVar

import pytest

from salesrail.settings import ServiceSettings


class LeadRouterLike(ServiceSettings):
    service_name: ClassVar[str] = "lead-router"
    default_port: ClassVar[int] = 8001


def test_defaults_are_embedded_sqlite_files_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SALESRAIL_DATABASE_URL", "SALESRAIL_DATA_DIR", "SALESRAIL_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = LeadRouterLike()
    assert settings.port == 8001
    assert settings.database_url == "sqlite+aiosqlite:///var/lead_router.db"
    assert settings.auth_database_url == "sqlite+aiosqlite:///var/auth.db"


def test_a_per_service_variable_overrides_the_cluster_wide_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESRAIL_NATS_URL", "nats://everyone:4222")
    monkeypatch.setenv("SALESRAIL_DATABASE_URL", "postgresql+asyncpg://db/shared")
    monkeypatch.setenv("SALESRAIL_LEAD_ROUTER_DATABASE_URL", "postgresql+asyncpg://db/lead_router")
    monkeypatch.setenv("SALESRAIL_LEAD_ROUTER_PORT", "9001")
    settings = LeadRouterLike()
    assert settings.nats_url == "nats://everyone:4222"
    assert settings.database_url == "postgresql+asyncpg://db/lead_router"
    assert settings.port == 9001
