"""The sweeper's settings: an hour each by default, set per service from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from activity.attachments.sweeper import AttachmentSweeper
from activity.config import Settings


def test_the_sweeper_sweeps_hourly_what_is_an_hour_old_by_default(tmp_path: Path) -> None:
    sweeper = AttachmentSweeper.from_settings(
        Settings(data_dir=tmp_path), unit_of_work=lambda: pytest.fail("not asked")
    )
    assert (sweeper.interval_s, sweeper.tmp_grace_s, sweeper.orphan_grace_s) == (3600,) * 3
    assert sweeper.store.root == tmp_path / "attachments"


def test_activity_reads_its_sweeper_settings_from_its_own_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESRAIL_ACTIVITY_ATTACHMENT_SWEEP_INTERVAL_S", "600")
    monkeypatch.setenv("SALESRAIL_ACTIVITY_ATTACHMENT_ORPHAN_GRACE_S", "86400")
    settings = Settings()
    assert settings.attachment_sweep_interval_s == 600
    assert settings.attachment_orphan_grace_s == 86400
    assert settings.attachment_tmp_grace_s == 3600


@pytest.mark.parametrize("field", ["attachment_tmp_grace_s", "attachment_orphan_grace_s"])
def test_a_grace_too_short_to_protect_an_upload_is_refused(field: str) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: 5})
