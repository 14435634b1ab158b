"""Use cases of attachments: record a stored file for a lead, find attachments and their lead,
tell the sweeper which stored files attachments still name."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activity.attachments.photo_metadata import PhotoMetadata, read_photo_metadata
from activity.attachments.storage import ContentStore
from activity.attachments.upload import StoredFile
from activity.models import Attachment, Lead
from salesrail.unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


async def find_lead(*, unit_of_work: UnitOfWorkFactory, lead_id: str) -> Lead | None:
    async with unit_of_work() as uow:
        return await uow.session.get(Lead, lead_id)


async def record_upload(
    *,
    unit_of_work: UnitOfWorkFactory,
    store: ContentStore,
    lead_id: str,
    uploaded_by: str,
    stored: StoredFile,
) -> Attachment:
    """One row per upload (the content itself is stored once), with the photo's EXIF."""
    metadata = PhotoMetadata()
    if stored.kind == "image":
        metadata = await anyio.to_thread.run_sync(read_photo_metadata, store.path_of(stored.sha256))
    async with unit_of_work() as uow:
        attachment = Attachment(
            attachment_id=str(uuid.uuid4()),
            lead_id=lead_id,
            sha256=stored.sha256,
            kind=stored.kind,
            media_type=stored.media_type,
            size=stored.size,
            original_name=stored.original_name,
            uploaded_by=uploaded_by,
            uploaded_at=uow.now(),
            taken_at=metadata.taken_at,
            gps_lat=metadata.gps_lat,
            gps_lon=metadata.gps_lon,
        )
        uow.session.add(attachment)
    return attachment


async def get_with_owner(
    *, unit_of_work: UnitOfWorkFactory, attachment_id: str
) -> tuple[Attachment, str | None] | None:
    """An attachment and the owner of its lead (who may see it follows from the lead)."""
    async with unit_of_work() as uow:
        row = (
            await uow.session.execute(
                select(Attachment, Lead.owner_id)
                .join(Lead, Lead.lead_id == Attachment.lead_id)
                .where(Attachment.attachment_id == attachment_id)
            )
        ).first()
    return None if row is None else (row[0], row[1])


async def load_attachments(
    session: AsyncSession, lead_id: str, ids: list[str]
) -> dict[str, Attachment]:
    """The attachments among `ids` that belong to `lead_id`, by id (others are left out)."""
    if not ids:
        return {}
    rows = await session.scalars(
        select(Attachment).where(
            Attachment.lead_id == lead_id, Attachment.attachment_id.in_(set(ids))
        )
    )
    return {attachment.attachment_id: attachment for attachment in rows}


async def referenced_hashes(
    *, unit_of_work: UnitOfWorkFactory, sha256s: Collection[str]
) -> set[str]:
    """Those of `sha256s` some attachment names: one statement, so pass a bounded chunk."""
    if not sha256s:
        return set()
    async with unit_of_work() as uow:
        rows = await uow.session.scalars(
            select(Attachment.sha256).where(Attachment.sha256.in_(sha256s)).distinct()
        )
        return set(rows)
