"""activity settings (`SALESRAIL_ACTIVITY_*` overrides `SALESRAIL_*`)."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from salesrail.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "activity"
    default_port: ClassVar[int] = 8002

    # Attachments: content-addressed files under attachments_dir (default: <data_dir>/attachments).
    attachments_dir: Path | None = None
    attachment_max_bytes: int = 100 * 1024 * 1024
    # Media types accepted, as sniffed from the bytes; a prefix ending in "/" allows a family.
    attachment_types: list[str] = Field(
        default_factory=lambda: ["image/", "audio/", "application/pdf"]
    )
    # The sweeper, at start and every interval, removes uploads abandoned in tmp/ and stored
    # files no attachment names, each once untouched for longer than its grace (a younger one
    # may be an upload still arriving, or one whose row is about to commit).
    attachment_sweep_interval_s: float = Field(default=3600.0, gt=0)
    attachment_tmp_grace_s: float = Field(default=3600.0, ge=60)
    attachment_orphan_grace_s: float = Field(default=3600.0, ge=60)

    # Rule files (activity_requirements.yaml, stage_gates.yaml); default: the shipped ones.
    rules_dir: Path | None = None
    # A contract's party matches the lead's company at this similarity (0-100) or above.
    party_name_threshold: float = Field(default=85.0, ge=50.0, le=100.0)
    # Activities logged together share one transaction, at most this many (group commit).
    group_commit_size: int = Field(default=100, ge=1, le=1000)
    # Batches applied at once on PostgreSQL: the next is formed and applied while one waits
    # for its commit (measured at c=32: the service idled ~15 % of the time with one).
    group_commit_concurrency: int = Field(default=2, ge=1, le=8)
    timeline_page_size: int = Field(default=50, ge=1, le=500)

    @model_validator(mode="after")
    def _fill_attachments_dir(self) -> "Settings":
        if self.attachments_dir is None:
            self.attachments_dir = self.data_dir / "attachments"
        return self
