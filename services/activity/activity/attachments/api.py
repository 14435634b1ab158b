"""HTTP routes for attachments (upload, metadata, content)."""

from __future__ import annotations

from typing import Annotated, cast

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from activity import rules
from activity.attachments import service
from activity.attachments.schemas import AttachmentOut
from activity.attachments.storage import ContentStore
from activity.attachments.upload import FIELD, receive_file
from activity.config import Settings
from activity.models import Attachment
from salesrail.auth import Principal, Role, require_roles
from salesrail.http.app import runtime_of
from salesrail.http.problems import ProblemError

router = APIRouter(tags=["attachments"])
log = structlog.get_logger(__name__)

# Evidence is filed by whoever may log on the lead (its owner, their supervisor, admin).
Uploader = Annotated[Principal, Depends(require_roles(Role.REP, Role.SUPERVISOR))]
Reader = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.REP, Role.SUPERVISOR, Role.OPS, Role.PRESALES, Role.AFTER_SALES, Role.FINANCE
        )
    ),
]

_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def _settings(request: Request) -> Settings:
    return cast(Settings, runtime_of(request).settings)


def _store(request: Request) -> ContentStore:
    root = _settings(request).attachments_dir
    assert root is not None  # filled in by Settings
    return ContentStore(root)


@router.post(
    "/leads/{lead_id}/attachments",
    status_code=201,
    response_model=AttachmentOut,
    summary="Upload a file for a lead (multipart, part 'file'); its type is read from its bytes",
    openapi_extra=_MULTIPART_BODY,
)
async def upload(lead_id: str, request: Request, caller: Uploader) -> AttachmentOut:
    unit_of_work = runtime_of(request).unit_of_work
    # Before a byte of the body is read: a stranger's upload is not even received.
    lead = await service.find_lead(unit_of_work=unit_of_work, lead_id=lead_id)
    if lead is None or not rules.may_act(caller, lead.owner_id, lead.team_id):
        raise ProblemError(404, f"no lead {lead_id}")
    settings = _settings(request)
    store = _store(request)
    stored = await receive_file(
        request,
        store=store,
        max_bytes=settings.attachment_max_bytes,
        allowed=settings.attachment_types,
    )
    attachment = await service.record_upload(
        unit_of_work=unit_of_work,
        store=store,
        lead_id=lead_id,
        uploaded_by=caller.subject,
        stored=stored,
    )
    return AttachmentOut.model_validate(attachment, from_attributes=True)


async def _visible_attachment(
    request: Request, caller: Principal, attachment_id: str
) -> Attachment:
    found = await service.get_with_owner(
        unit_of_work=runtime_of(request).unit_of_work, attachment_id=attachment_id
    )
    if found is None or not rules.may_see(caller, found[1]):
        raise ProblemError(404, f"no attachment {attachment_id}")
    return found[0]


@router.get(
    "/attachments/{attachment_id}",
    response_model=AttachmentOut,
    summary="An attachment's metadata",
)
async def read_attachment(attachment_id: str, request: Request, caller: Reader) -> AttachmentOut:
    attachment = await _visible_attachment(request, caller, attachment_id)
    return AttachmentOut.model_validate(attachment, from_attributes=True)


@router.get(
    "/attachments/{attachment_id}/content",
    response_class=FileResponse,
    summary="An attachment's bytes, streamed, with the media type sniffed at upload",
)
async def read_content(attachment_id: str, request: Request, caller: Reader) -> FileResponse:
    attachment = await _visible_attachment(request, caller, attachment_id)
    path = _store(request).path_of(attachment.sha256)
    if not path.is_file():
        log.error("attachment.content_missing", attachment_id=attachment_id, path=str(path))
        raise ProblemError(404, f"the content of attachment {attachment_id} is not in the store")
    return FileResponse(
        path,
        media_type=attachment.media_type,
        filename=attachment.original_name,
        content_disposition_type="inline",
        # Browsers must take the type we sniffed, not guess their own from the bytes.
        headers={"X-Content-Type-Options": "nosniff"},
    )
