"""Errors as `application/problem+json` (RFC 9457); validation errors name each field."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from salesrail.db.errors import is_outage

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger(__name__)


class ProblemError(Exception):
    """Raised by a use case to answer with a specific problem (409 conflict, 422 rule...)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type
        self.title = title
        self.errors = errors
        self.extra = extra


VALIDATION = "urn:salesrail:problem:validation"


def invalid_field(
    field: str, message: str, *, location: str = "body", code: str = "invalid"
) -> ProblemError:
    """A 422 naming one bad field, shaped like the framework's own validation errors."""
    return invalid_fields([field], message, location=location, code=code)


def invalid_fields(
    fields: list[str], message: str, *, location: str = "body", code: str = "invalid"
) -> ProblemError:
    """A 422 naming several fields wrong for the same reason."""
    return ProblemError(
        422,
        f"the request is not valid: {', '.join(fields)}: {message}",
        type=VALIDATION,
        title="Invalid request",
        errors=[
            {"field": field, "in": location, "message": message, "code": code} for field in fields
        ],
    )


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    type: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type or "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'tags', 2) -> 'tags[2]'; ('query', 'limit') -> 'limit'."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        loc = error.get("loc", ())
        code = error.get("type", "invalid")
        errors.append(
            {
                "field": "body" if code == "json_invalid" else field_name(loc),
                "in": loc[0] if loc else "body",
                "message": error.get("msg", "invalid"),
                "code": code,
            }
        )
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            422,
            f"the request is not valid: {fields}",
            type=VALIDATION,
            title="Invalid request",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status, exc.detail, type=exc.type, title=exc.title, errors=exc.errors, **exc.extra
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_outage(exc):
            # Not the request's fault; retrying is safe (intake and claims are idempotent).
            log.warning("http.database_unavailable", path=request.url.path, error=repr(exc)[:300])
            return problem_response(
                503,
                "the database is not reachable right now; retry shortly",
                title="Service unavailable",
                headers={"Retry-After": "2"},
            )
        log.exception("http.unhandled_error", path=request.url.path)
        return problem_response(
            500,
            "an unexpected error occurred; quote the request id when reporting it",
            request_id=request.headers.get("x-request-id")
            or getattr(request.state, "request_id", None),
        )
