"""Bulk import: every row of a CSV or .xlsx file goes through the one intake path; a report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from contextlib import aclosing, closing
from typing import IO, Any, Literal

import structlog
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.types import Message

from lead_router import service
from lead_router.schemas import LeadIn
from salesrail.auth import Principal
from salesrail.http.app import runtime_of
from salesrail.http.problems import ProblemError, field_name, invalid_field
from salesrail.leads_file import (
    MAX_BYTES,
    MAX_ROWS,
    LeadsFile,
    LeadsFileError,
    Row,
    TooManyRows,
    file_digest,
    for_each_row,
    open_leads_file,
    row_idempotency_key,
    rows_off_loop,
)

log = structlog.get_logger(__name__)

DEFAULT_SOURCE = "import"
# Rows failing one after another for no fault of their own mean the service is in trouble:
# stop, rather than mark the rest of the file refused. Re-importing resumes safely.
MAX_CONSECUTIVE_FAULTS = 20
# Rows in flight at once: intake batches database work across concurrent leads.
IMPORT_CONCURRENCY = 8
# Room for the multipart envelope around the file when checking Content-Length.
_MULTIPART_SLACK = 64 * 1024

Receive = Callable[[LeadIn, str | None], Awaitable[service.Intake]]
RowStatus = Literal["created", "duplicate", "replayed", "refused"]

UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV (UTF-8 or GBK) or .xlsx, header row first",
                        },
                        "source": {
                            "type": "string",
                            "default": DEFAULT_SOURCE,
                            "description": "source of rows that have none",
                        },
                    },
                }
            }
        },
    }
}


class RowError(BaseModel):
    field: str
    message: str


class RowResult(BaseModel):
    row: int
    status: RowStatus
    lead_id: str | None = None
    lead_status: str | None = None
    errors: list[RowError] = []


class ImportTotals(BaseModel):
    rows: int = 0
    created: int = 0
    duplicate: int = 0
    replayed: int = 0
    refused: int = 0


class ImportedFile(BaseModel):
    sha256: str
    format: Literal["csv", "xlsx"]
    encoding: str | None
    header_row: int
    columns: dict[str, str]  # header as written -> lead field
    ignored_columns: list[str]


class ImportReport(BaseModel):
    file: ImportedFile
    totals: ImportTotals
    rows: list[RowResult]


def receiver(request: Request, caller: Principal) -> Receive:
    """How a lead of this request enters intake: the very call `api.submit_lead` makes."""
    runtime = runtime_of(request)

    async def receive(lead_in: LeadIn, idempotency_key: str | None) -> service.Intake:
        return await service.receive_lead(
            unit_of_work=runtime.unit_of_work,
            context=runtime.context,
            lead_in=lead_in,
            caller=caller.subject,
            idempotency_key=idempotency_key,
        )

    return receive


async def import_upload(request: Request, caller: Principal) -> ImportReport:
    """Import the multipart upload: field `file`, optional `source` for rows without one."""
    declared = _refuse_declared_size(request)
    request = _body_limited(request, declared)
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise _invalid("file", "a file is required (multipart field 'file')", "missing")
        default_source = _default_source(form.get("source"))
        if upload.size is not None and upload.size > MAX_BYTES:
            raise _too_large(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it")
        return await import_file(
            upload.file, receive=receiver(request, caller), default_source=default_source
        )


async def import_file(binary: IO[bytes], *, receive: Receive, default_source: str) -> ImportReport:
    """Check the whole file first (readable, header, limits), then import it row by row."""
    # Hashing and counting read the whole file: off the event loop.
    digest, leads = await asyncio.to_thread(_open_checked, binary)
    # The row reader goes before the file does, however the import ends; rows are parsed in a
    # worker thread, a chunk at a time, so a slow file never blocks the event loop.
    with leads, closing(leads.rows()) as rows:
        async with aclosing(rows_off_loop(rows)) as parsed:
            results = await import_rows(
                parsed, receive=receive, digest=digest, default_source=default_source
            )
        return ImportReport(file=_file_info(leads, digest), totals=totals_of(results), rows=results)


async def import_rows(
    rows: Iterable[Row] | AsyncIterable[Row],
    *,
    receive: Receive,
    digest: str,
    default_source: str,
    concurrency: int = IMPORT_CONCURRENCY,
) -> list[RowResult]:
    """Each row through intake, several at a time; rows that may be one lead go in file order."""
    results: dict[int, RowResult] = {}
    faults = 0
    gave_up = False

    async def one(row: Row) -> None:
        nonlocal faults, gave_up
        try:
            results[row.number] = await _import_row(
                row, receive=receive, digest=digest, source=default_source
            )
            faults = 0
        except Exception:
            # One bad row never stops the file, even one that trips a bug.
            log.exception("import.row_failed", row=row.number, sha256=digest)
            faults += 1
            gave_up = gave_up or faults >= MAX_CONSECUTIVE_FAULTS
            results[row.number] = RowResult(
                row=row.number,
                status="refused",
                errors=[
                    RowError(
                        field="row",
                        message="the service failed on this row; import the file again to retry it",
                    )
                ],
            )

    await for_each_row(rows, one, concurrency=concurrency, stopped=lambda: gave_up)
    if gave_up:
        raise ProblemError(
            503,
            f"the service failed on {MAX_CONSECUTIVE_FAULTS} rows in a row; nothing is lost: "
            "import the same file again later to resume",
            type="urn:salesrail:problem:unavailable",
            title="Service unavailable",
        )
    return [results[n] for n in sorted(results)]


def lead_in_of(values: dict[str, Any], default_source: str) -> LeadIn:
    """A row as the one definition of a valid lead sees it (ValidationError when it is not)."""
    return LeadIn.model_validate({"source": default_source, **values})


def totals_of(results: Iterable[RowResult]) -> ImportTotals:
    totals = ImportTotals()
    for result in results:
        totals.rows += 1
        setattr(totals, result.status, getattr(totals, result.status) + 1)
    return totals


async def _import_row(row: Row, *, receive: Receive, digest: str, source: str) -> RowResult:
    try:
        lead_in = lead_in_of(row.values, source)
    except ValidationError as exc:
        errors = [RowError(field=field_name(e["loc"]), message=e["msg"]) for e in exc.errors()]
        return RowResult(row=row.number, status="refused", errors=errors)
    try:
        intake = await receive(lead_in, row_idempotency_key(digest, row.number))
    except ProblemError as exc:
        if exc.status >= 500:
            raise
        return RowResult(row=row.number, status="refused", errors=_problem_errors(exc))
    lead = intake.lead
    status: RowStatus = "created"
    if not intake.created:
        status = "replayed"
    elif lead.status == "duplicate":
        status = "duplicate"
    return RowResult(row=row.number, status=status, lead_id=lead.id, lead_status=lead.status)


def _problem_errors(exc: ProblemError) -> list[RowError]:
    if not exc.errors:
        return [RowError(field="row", message=exc.detail)]
    return [
        RowError(field=str(e.get("field", "row")), message=str(e.get("message", exc.detail)))
        for e in exc.errors
    ]


def _open_checked(binary: IO[bytes]) -> tuple[str, LeadsFile]:
    binary.seek(0, 2)
    if binary.tell() > MAX_BYTES:
        raise _too_large(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it")
    digest = file_digest(binary)
    try:
        leads = open_leads_file(binary)
    except LeadsFileError as exc:
        raise _unreadable(exc) from exc
    try:
        leads.count_rows(MAX_ROWS)
    except TooManyRows as exc:
        leads.close()
        raise _too_large(str(exc)) from exc
    except LeadsFileError as exc:
        leads.close()
        raise _unreadable(exc) from exc
    return digest, leads


def _file_info(leads: LeadsFile, digest: str) -> ImportedFile:
    return ImportedFile(
        sha256=digest,
        format=leads.format,  # type: ignore[arg-type]
        encoding=leads.encoding,
        header_row=leads.header.number,
        columns={c.header: c.field for c in leads.header.columns},
        ignored_columns=list(leads.header.ignored),
    )


def _default_source(value: object) -> str:
    if value is not None and not isinstance(value, str):
        raise _invalid("source", "source must be text", "string_type")
    source = (value or "").strip() or DEFAULT_SOURCE
    if len(source) > 64:
        raise _invalid("source", "source is longer than 64 characters", "string_too_long")
    return source


def _refuse_declared_size(request: Request) -> int:
    """Refuse an oversized upload from its Content-Length, before reading a byte of it; an
    upload without one (chunked) would be spooled whole before its size is known: 411."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise ProblemError(
            411,
            "send Content-Length: uploads of unknown length (chunked) are not taken",
            type="urn:salesrail:problem:length-required",
            title="Length required",
        )
    if int(declared) > MAX_BYTES + _MULTIPART_SLACK:
        raise _too_large(f"the upload is larger than {MAX_BYTES // (1024 * 1024)} MB; split it")
    return int(declared)


def _body_limited(request: Request, declared: int) -> Request:
    """The same request, whose body is refused (413) as soon as more of it comes than its
    Content-Length said: reading stops there, never past MAX_BYTES and the envelope."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > declared:
                raise _too_large("the upload is longer than its Content-Length said; not read")
        return message

    return Request(request.scope, receive)


def _unreadable(exc: LeadsFileError) -> ProblemError:
    errors = [
        {"field": f, "in": "file", "message": "no column for this field", "code": "missing_column"}
        for f in exc.missing
    ] or [{"field": "file", "in": "body", "message": str(exc), "code": "unreadable"}]
    return ProblemError(
        422,
        str(exc),
        type="urn:salesrail:problem:unreadable-file",
        title="Unreadable file",
        errors=errors,
    )


def _too_large(detail: str) -> ProblemError:
    return ProblemError(413, detail, type="urn:salesrail:problem:too-large", title="Too large")


def _invalid(field: str, message: str, code: str) -> ProblemError:
    return invalid_field(field, message, code=code)
