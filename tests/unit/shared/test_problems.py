import httpx
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from salesrail.http.problems import field_name, install_problem_handlers


def test_field_names_read_as_json_paths() -> None:
    assert field_name(("body", "phone")) == "phone"
    assert field_name(("body", "tags", 2)) == "tags[2]"
    assert field_name(("query", "from")) == "from"
    assert field_name(("body",)) == "body"
    assert field_name(("body", "contacts", 0, "phone")) == "contacts[0].phone"


def _app_raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


async def test_a_database_outage_is_a_503_problem_with_retry_after_not_a_500() -> None:
    outage = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    transport = httpx.ASGITransport(app=_app_raising(outage), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/boom")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "2"
    assert "SELECT" not in answer.text  # no statement (or its parameters) leaks out


async def test_a_bug_is_still_a_500_problem() -> None:
    transport = httpx.ASGITransport(app=_app_raising(KeyError("x")), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/boom")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
