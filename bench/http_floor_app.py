"""The Salesrail HTTP stack around an empty handler: the ceiling any service route can reach.

The yardstick's endpoint and body, plus what every `/v1/` route of a service has: the request
middleware (request id, access log line, Prometheus metrics), problem+json handlers, JSON logs
at WARNING, and the authentication dependency (an HS256 bearer token; verified per request).
No database, no broker: what is left between this and a service is the service's own work.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, FastAPI

from bench.yardstick_app import Lead
from salesrail.auth.api_keys import ApiKeyStore
from salesrail.auth.dependency import CurrentPrincipal, authenticate
from salesrail.auth.jwt_tokens import JwtVerifier, issue_token
from salesrail.auth.principal import Role
from salesrail.clock import system_clock
from salesrail.db.database import Database
from salesrail.http.middleware import RequestContextMiddleware
from salesrail.http.problems import install_problem_handlers
from salesrail.logging import configure_logging
from salesrail.runtime import AuthContext

SECRET = "bench-http-floor-secret-0123456789abcdef"
ISSUER, AUDIENCE = "salesrail-bench", "salesrail"


def bearer_token() -> str:
    return issue_token(
        secret=SECRET,
        subject="rep-bench",
        role=Role.REP,
        issuer=ISSUER,
        audience=AUDIENCE,
        now=time.time(),
        rep_id="rep-bench",
    )


configure_logging(service="http-floor", level="WARNING")
app = FastAPI(docs_url=None, redoc_url=None)
verifier = JwtVerifier(
    secret=SECRET, public_key=None, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE
)
# Only bearer tokens come: the API-key store is never asked (its database is never opened).
keys = ApiKeyStore(Database("sqlite+aiosqlite:///:memory:"), clock=system_clock)
app.state.auth = AuthContext(api_keys=keys, jwt=verifier)
install_problem_handlers(app)
app.add_middleware(RequestContextMiddleware)
router = APIRouter()


@router.post("/leads", status_code=201)
async def create_lead(lead: Lead, caller: CurrentPrincipal) -> dict[str, object]:
    return {"accepted": True, "company_name": lead.company_name, "by": caller.subject}


app.include_router(router, prefix="/v1", dependencies=[Depends(authenticate)])
