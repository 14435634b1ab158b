"""The embedded cluster's channel key, and `salesrail channels reseal` without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from salesrail.cli.context import channel_keys, configured_channel_keys
from salesrail.cli.main import app
from salesrail.notify import Sealer


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("SALESRAIL_CHANNEL_KEYS", "SALESRAIL_LEAD_ROUTER_CHANNEL_KEYS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SALESRAIL_DATA_DIR", str(tmp_path))
    return tmp_path


def test_the_embedded_cluster_makes_a_key_once_readable_by_its_owner_only(data_dir: Path) -> None:
    assert configured_channel_keys() is None  # looking never makes one

    key = channel_keys()

    assert channel_keys() == key == configured_channel_keys()
    Fernet(key)  # a valid key
    assert (data_dir / "channel-keys").stat().st_mode & 0o777 == 0o600


def test_a_configured_key_wins_over_the_data_dir(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    monkeypatch.setenv("SALESRAIL_CHANNEL_KEYS", configured)

    assert channel_keys() == configured == configured_channel_keys()
    assert not (data_dir / "channel-keys").exists()
    assert Sealer.from_text(configured).open(Sealer.from_text(configured).seal("x")) == "x"


def test_reseal_without_a_key_says_so_and_changes_nothing(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["channels", "reseal"])

    assert result.exit_code == 2
    assert "SALESRAIL_CHANNEL_KEYS" in result.output
    assert not (data_dir / "lead_router.db").exists()


def test_reseal_with_a_wrong_key_names_its_position_not_the_key(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESRAIL_CHANNEL_KEYS", f"{Fernet.generate_key().decode()},oops-key")

    result = CliRunner().invoke(app, ["channels", "reseal"])

    assert result.exit_code == 2
    assert "key 2 of 2" in result.output and "oops-key" not in result.output
