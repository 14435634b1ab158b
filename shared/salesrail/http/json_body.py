"""A busy route that reads its JSON body itself, still documented from its pydantic model.

FastAPI parses a body with `json.loads`, then solves the route's dependencies (re-inspecting
every parameter's annotation per request) and validates the dict: on the HTTP floor that was a
quarter of a short POST (~100 of ~420 µs CPU). `JsonBody.read` validates the raw bytes in one
pass of pydantic-core; a refusal is the framework's own `RequestValidationError` (locations
under `body`, so problem+json names the same fields). Headers the route takes are read from the
request and declared here, for the OpenAPI document only.

    body = JsonBody(LeadIn, headers=[DocumentedHeader("Idempotency-Key", "...")])

    @router.post("/leads", openapi_extra=body.openapi())
    @body.documents
    async def submit_lead(request: Request) -> Response:
        lead_in = await body.read(request)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_MODEL_ATTRIBUTE = "__salesrail_json_body__"
_SCHEMAS = "#/components/schemas/{model}"


@dataclass(frozen=True)
class DocumentedHeader:
    name: str
    description: str
    min_length: int = 0
    max_length: int = 200


@dataclass(frozen=True)
class JsonBody(Generic[Model]):
    model: type[Model]
    headers: Sequence[DocumentedHeader] = field(default_factory=tuple)

    async def read(self, request: Request) -> Model:
        media_type = request.headers.get("content-type", "application/json")
        if not _is_json(media_type):  # as FastAPI: only JSON is parsed as JSON
            raise RequestValidationError(
                [
                    {
                        "type": "json_type",
                        "loc": ("body",),
                        "msg": f"the body must be JSON (Content-Type: application/json), "
                        f"not {media_type.split(';')[0].strip()}",
                    }
                ]
            )
        raw = await request.body()
        try:
            return self.model.model_validate_json(raw)
        except ValidationError as exc:
            errors = [
                {**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)
            ]
            raise RequestValidationError(errors, body=raw) from None

    def header(self, request: Request, name: str) -> str | None:
        """A declared header's value, its length checked as FastAPI would check it."""
        declared = next(h for h in self.headers if h.name == name)
        value = request.headers.get(name)
        if value is None:
            return None
        if len(value) > declared.max_length:
            problem = ("string_too_long", f"at most {declared.max_length} characters")
        elif len(value) < declared.min_length:
            problem = ("string_too_short", f"at least {declared.min_length} character(s)")
        else:
            return value
        kind, limit = problem
        raise RequestValidationError(
            [{"type": kind, "loc": ("header", name), "msg": f"String should have {limit}"}]
        )

    def documents(self, endpoint: Endpoint) -> Endpoint:
        """Marks the route's endpoint, so `document_json_bodies` adds the model's schema."""
        setattr(endpoint, _MODEL_ATTRIBUTE, self.model)
        return endpoint

    def openapi(self) -> dict[str, Any]:
        """The operation's request body and headers, for the route's `openapi_extra`."""
        extra: dict[str, Any] = {
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": _SCHEMAS.format(model=self.model.__name__)}
                    }
                },
            }
        }
        if self.headers:
            extra["parameters"] = [
                {
                    "name": h.name,
                    "in": "header",
                    "required": False,
                    "description": h.description,
                    "schema": {
                        "type": "string",
                        "minLength": h.min_length,
                        "maxLength": h.max_length,
                    },
                }
                for h in self.headers
            ]
        return extra


def _is_json(media_type: str) -> bool:
    main = media_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or (
        main.startswith("application/") and main.endswith("+json")
    )


def document_json_bodies(schema: dict[str, Any], routers: Sequence[APIRouter]) -> None:
    """Adds the schemas of the models that `JsonBody` routes of `routers` read to the OpenAPI
    document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for router in routers:
        for route in router.routes:
            model = getattr(getattr(route, "endpoint", None), _MODEL_ATTRIBUTE, None)
            if isinstance(route, APIRoute) and model is not None:
                found = model.model_json_schema(ref_template=_SCHEMAS)
                components.update(found.pop("$defs", {}))
                components.setdefault(model.__name__, found)
