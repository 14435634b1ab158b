"""Routes that read their JSON body themselves refuse like FastAPI and are documented alike."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict

from salesrail.http.json_body import DocumentedHeader, JsonBody, document_json_bodies
from salesrail.http.problems import install_problem_handlers


class Address(BaseModel):
    city: str


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int
    ship_to: Address


BODY = JsonBody(Order, headers=[DocumentedHeader("Idempotency-Key", "a key", min_length=1)])
router = APIRouter()


@router.post("/orders", openapi_extra=BODY.openapi())
@BODY.documents
async def place(request: Request) -> Response:
    order = await BODY.read(request)
    key = BODY.header(request, "Idempotency-Key")
    return Response(f"{order.quantity} to {order.ship_to.city} ({key})")


async def post(**kwargs: object) -> httpx.Response:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/orders", **kwargs)  # type: ignore[arg-type]


async def test_a_valid_body_and_header_reach_the_route() -> None:
    answer = await post(
        json={"quantity": 2, "ship_to": {"city": "杭州"}},
        headers={"Idempotency-Key": "k"},
    )
    assert answer.status_code == 200
    assert answer.text == "2 to 杭州 (k)"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            b'{"quantity": "two", "ship_to": {}, "owner": "x"}',
            {"quantity", "ship_to.city", "owner"},
        ),
        (b"{not json", {"body"}),
        (b"", {"body"}),
    ],
)
async def test_a_bad_body_is_a_problem_naming_each_field(body: bytes, fields: set[str]) -> None:
    answer = await post(content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in answer.json()["errors"]} == fields
    assert {e["in"] for e in answer.json()["errors"]} == {"body"}


def test_a_declared_header_is_checked_for_length() -> None:
    with pytest.raises(RequestValidationError) as refused:
        scope = {"type": "http", "headers": [(b"idempotency-key", b"")]}
        BODY.header(Request(scope), "Idempotency-Key")
    assert refused.value.errors()[0]["loc"] == ("header", "Idempotency-Key")
    assert refused.value.errors()[0]["type"] == "string_too_short"


def test_the_models_and_their_nested_models_go_into_the_openapi_components() -> None:
    schema: dict[str, object] = {}
    document_json_bodies(schema, [router])
    components = schema["components"]["schemas"]  # type: ignore[index]
    assert set(components) == {"Order", "Address"}
    assert components["Order"]["properties"]["ship_to"] == {"$ref": "#/components/schemas/Address"}
    assert BODY.openapi()["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"
    }


async def test_a_body_sent_as_another_media_type_is_refused_naming_the_body() -> None:
    answer = await post(content=b'{"quantity": 1}', headers={"content-type": "text/plain"})
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["body"]
    assert "application/json" in answer.json()["errors"][0]["message"]
    problem_json = await post(
        json={"quantity": 2, "ship_to": {"city": "宁波"}},
        headers={"content-type": "application/merge-patch+json; charset=utf-8"},
    )
    assert problem_json.status_code == 200, problem_json.text
