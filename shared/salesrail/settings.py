"""Settings every service shares, read from the environment.

`SALESRAIL_<FIELD>` applies to every service; `SALESRAIL_<SERVICE>_<FIELD>` (e.g.
`SALESRAIL_LEAD_ROUTER_DATABASE_URL`) overrides it for one service, so one environment can
describe a whole cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "SALESRAIL_"


def service_env_prefix(service_name: str) -> str:
    return f"{ENV_PREFIX}{service_name.upper().replace('-', '_')}_"


class ServiceSettings(BaseSettings):
    """Base settings of a Salesrail service; each service subclasses it with its name and port."""

    service_name: ClassVar[str] = "salesrail"
    default_port: ClassVar[int] = 8000

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 0
    # Worker processes serving the port; each is a full replica (its own consumers, relay and
    # group commit), coordinated through the database and NATS like replicas on other hosts.
    workers: int = Field(default=1, ge=1, le=64)
    data_dir: Path = Path("var")
    database_url: str = ""
    auth_database_url: str = ""
    # Connections kept open to the service's database. Concurrent work beyond it waits for one
    # (up to db_max_overflow more are opened and closed again, which is costly under load):
    # size PostgreSQL's max_connections for replicas x (db_pool_size + db_max_overflow + 2).
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_max_overflow: int = Field(default=5, ge=0, le=500)
    nats_url: str = "nats://127.0.0.1:4222"
    nats_connect_timeout_s: float = 2.0

    log_level: str = "INFO"
    log_json: bool = True
    # FastAPI's native OpenTelemetry (traces, metrics, logs to the providers configured in the
    # process). Off by default: /metrics serves Prometheus, and with telemetry on every request
    # looks the providers up (and reads the environment) even when none is configured.
    opentelemetry: bool = False

    # Events: the relay re-sends what it could not confirm; JetStream drops copies seen within
    # the duplicate window, which must outlast the relay's retry horizon.
    stream_duplicate_window_s: float = 2 * 3600
    outbox_batch_size: int = 500
    outbox_poll_interval_s: float = 1.0
    outbox_retention_s: float = 24 * 3600
    processed_events_retention_s: float = 7 * 24 * 3600

    consumer_batch_size: int = 100
    consumer_max_deliver: int = 8
    consumer_backoff_s: list[float] = Field(default_factory=lambda: [0.5, 2, 10, 30, 120, 600])
    consumer_ack_wait_s: float = 60.0
    # While the database is away, messages wait (retried every outage_retry_s) instead of
    # being dead-lettered; only one redelivered this often is given up (it keeps killing us).
    consumer_outage_retry_s: float = 30.0
    consumer_give_up_after: int = 1000

    # People authenticate with JWTs from the company's identity provider.
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256", "RS256", "ES256"])
    jwt_issuer: str = "salesrail"
    jwt_audience: str = "salesrail"
    api_key_cache_s: float = 30.0

    shutdown_grace_s: float = 20.0
    # Names of fault points to trigger (tests of crash safety only); see salesrail.faults.
    faults: list[str] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        per_service = EnvSettingsSource(
            settings_cls, env_prefix=service_env_prefix(cls.service_name)
        )
        return init_settings, per_service, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _fill_defaults(self) -> ServiceSettings:
        if not self.port:
            self.port = self.default_port
        if not self.database_url:
            self.database_url = sqlite_url(self.data_dir / f"{self.module_name}.db")
        if not self.auth_database_url:
            self.auth_database_url = sqlite_url(self.data_dir / "auth.db")
        return self

    @property
    def module_name(self) -> str:
        return self.service_name.replace("-", "_")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
