"""The yardstick: a bare FastAPI app with one POST endpoint taking a lead-shaped pydantic body.

No database, no broker, no middleware, no docs routes: its throughput is what one uvicorn worker
on this machine can do for a FastAPI POST, against which services are compared as ratios.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel


class Lead(BaseModel):
    source: str
    company_name: str
    contact_name: str
    phone: str
    city: str
    category: str
    budget: float | None = None
    tags: list[str] = []


app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/leads")
async def create_lead(lead: Lead) -> dict[str, object]:
    return {"accepted": True, "company_name": lead.company_name, "city": lead.city}


#: The body the yardstick benchmark posts (also a fair sample for services' lead intake).
SAMPLE_LEAD: dict[str, object] = {
    "source": "web_form",
    "company_name": "杭州某某紧固件有限公司",
    "contact_name": "王伟",
    "phone": "13800138000",
    "city": "杭州",
    "category": "紧固件",
    "budget": 50000.0,
    "tags": ["展会", "回访"],
}
