"""lead-router as a real process on its own NATS and PostgreSQL, for the intake benchmarks.

    with IntakeStack("intake") as stack:        # nats-server, 2 fresh databases, the service
        stack.setup_routing()                   # a team, 4 reps, a city rule (round robin)
        run_load(stack.url("/v1/leads"), varying_body=LEADS, headers=stack.submitter, ...)
        checks = stack.checks()                 # leads in the database, messages in the stream

Everything started here is ours alone and is stopped on leaving the block: the nats-server
(a free port, a temporary directory), the two uniquely named databases (dropped WITH FORCE)
and the lead-router process (SIGTERM, then SIGKILL); see ``bench.service_stack``.

Every lead the generators send is new: ``lead_body(slot, n)`` (Python) and ``make_body(slot,
n)`` (Lua, in ``LEADS.lua``) build the same JSON, with a phone number and a company name that
no other ``(slot, n)`` has. The company name's comparable core (what duplicate detection
compares) is 6 characters encoding ``(slot, n)`` plus the category, so two cores differ in at
least one character of 9-10: at most ~89 % similar, under the 92 % duplicate threshold.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bench.load import VaryingBody, _lua_string
from bench.service_stack import POSTGRES_DSN as POSTGRES_DSN
from bench.service_stack import KeySpec, ServiceStack, stream_counts

# --- the leads -------------------------------------------------------------------------------

#: Trade-name characters that begin no city, county or province name (so nothing is taken
#: for a place by the company-name normaliser); 40 of them, digits of base 40.
NAME_CHARS = "鑫盛聚晟星宇创力诚诺坤铭骏豪韵颂睿智慧勤朗晖琪骐禾煜烨焱燊淼森鹏鸿彬斌俊杰颖璐瑾"
#: Cities of the routing rule (round robin over 4 reps) ...
RULE_CITIES = ("杭州", "宁波", "温州", "绍兴")
#: ... and one without a rule: every 10th lead goes to the public pool.
POOL_CITY = "成都"
CATEGORIES = ("紧固件", "机床", "包装", "五金")
#: Mobile prefixes valid for every 8 following digits; slot i uses PREFIXES[i].
PREFIXES = tuple(
    str(p)
    for p in [*range(130, 140), *range(180, 190), 150, 151, 152, 153, 155, 156, 157, 158, 159]
)
#: The slot of the leads a benchmark sends itself (checks), apart from the generators' slots.
OWN_SLOT = len(PREFIXES) - 1
CODE_DIGITS = 5  # 40**5 = 102 M leads per slot


def lead_fields(slot: int, n: int) -> tuple[str, str, str, str]:
    """(city, category, phone, company name) of lead n of a slot."""
    if not 0 <= slot < len(PREFIXES) or not 0 < n < 10**8:
        raise ValueError(f"slot {slot} / n {n} out of range")
    city = POOL_CITY if n % 10 == 9 else RULE_CITIES[n % 4]
    category = CATEGORIES[(n // 4) % 4]
    code, m = [], n
    for _ in range(CODE_DIGITS):
        code.append(NAME_CHARS[m % 40])
        m //= 40
    code.append(NAME_CHARS[slot])
    return city, category, f"{PREFIXES[slot]}{n:08d}", f"{city}{''.join(code)}{category}有限公司"


def lead_body(slot: int, n: int) -> dict[str, Any]:
    city, category, phone, company = lead_fields(slot, n)
    return {
        "source": "web_form",
        "company_name": company,
        "contact_name": "王伟",
        "phone": phone,
        "city": city,
        "category": category,
        "budget": 50000.0,
        "tags": ["展会", "回访"],
    }


def lead_bytes(slot: int, n: int) -> bytes:
    return json.dumps(lead_body(slot, n), ensure_ascii=False, separators=(",", ":")).encode()


def _lua_list(values: Any) -> str:
    return "{" + ", ".join(_lua_string(v) for v in values) + "}"


LUA_MAKE_BODY = f"""
local FIRST_SLOT = @FIRST_SLOT@
local NAME_CHARS = {_lua_list(NAME_CHARS)}
local RULE_CITIES = {_lua_list(RULE_CITIES)}
local POOL_CITY = {_lua_string(POOL_CITY)}
local CATEGORIES = {_lua_list(CATEGORIES)}
local PREFIXES = {_lua_list(PREFIXES)}
local floor, concat, format = math.floor, table.concat, string.format
function make_body(slot, n)
  slot = slot + FIRST_SLOT
  local city
  if n % 10 == 9 then city = POOL_CITY else city = RULE_CITIES[(n % 4) + 1] end
  local category = CATEGORIES[(floor(n / 4) % 4) + 1]
  local code, m = {{}}, n
  for i = 1, {CODE_DIGITS} do
    code[i] = NAME_CHARS[(m % 40) + 1]
    m = floor(m / 40)
  end
  code[{CODE_DIGITS + 1}] = NAME_CHARS[slot + 1]
  local phone = PREFIXES[slot + 1] .. format("%08d", n)
  return {_lua_string('{"source":"web_form","company_name":"')} .. city .. concat(code) ..
    category .. {_lua_string('有限公司","contact_name":"王伟","phone":"')} .. phone ..
    {_lua_string('","city":"')} .. city .. {_lua_string('","category":"')} .. category ..
    {_lua_string('","budget":50000.0,"tags":["展会","回访"]}')}
end
"""


def new_leads(first_slot: int = 0) -> VaryingBody:
    """A new lead per request, for ``run_load(varying_body=...)``. The generator's slots are
    shifted by ``first_slot``: a second load on the same database needs a ``first_slot`` above
    every slot the first one used (wrk: 2 x threads, Python: processes), or it repeats leads."""
    if not 0 <= first_slot < OWN_SLOT:
        raise ValueError(f"first_slot must be in 0..{OWN_SLOT - 1}")
    return VaryingBody(
        lua=LUA_MAKE_BODY.replace("@FIRST_SLOT@", str(int(first_slot))),
        python=lambda slot, n: lead_bytes(first_slot + slot, n),
    )


#: A new lead per request, for one run_load(varying_body=LEADS) per database.
LEADS = new_leads()

# --- the routing set-up ----------------------------------------------------------------------

TEAM = "bench-east"
REPS = ("bench-rep-1", "bench-rep-2", "bench-rep-3", "bench-rep-4")
ROUTING_YAML = f"""
rules:
  - name: bench-zhejiang
    when: {{city: [{", ".join(RULE_CITIES)}]}}
    assign: {{reps: [{", ".join(REPS)}], strategy: round_robin}}
default: {{pool: public}}
"""

#: How long a worker may route by the rules it had before a PUT on another worker: it polls
#: them every 2 s (docs/rules.md); the rest is room for a busy machine.
RULES_LAG_S = 10.0

# --- the stack -------------------------------------------------------------------------------


@dataclass
class Checks:
    leads: int
    by_status: dict[str, int]
    distinct_phones: int
    distinct_company_keys: int
    outbox_unsent: int
    stream_messages: int
    stream_by_subject: dict[str, int]
    log_problems: int
    log_events: dict[str, int] = field(default_factory=dict)  # "level event" -> lines

    def summary(self) -> str:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        subjects = ", ".join(
            f"{k.removeprefix('salesrail.lead.')} {v}"
            for k, v in sorted(self.stream_by_subject.items())
        )
        text = (
            f"DB: {self.leads} leads ({statuses}; {self.distinct_phones} distinct phones, "
            f"{self.distinct_company_keys} distinct company keys, outbox unsent "
            f"{self.outbox_unsent}); SALESRAIL_LEAD: {self.stream_messages} msgs ({subjects})"
        )
        if self.log_problems:
            events = ", ".join(f"{k} x{v}" for k, v in sorted(self.log_events.items()))
            text += f"; service log: {self.log_problems} warning+ lines ({events})"
        return text


class IntakeStack(ServiceStack):
    """nats-server + two fresh PostgreSQL databases + lead-router (one uvicorn worker)."""

    service = "lead-router"
    module = "lead_router"
    env_prefix = "SALESRAIL_LEAD_ROUTER_"

    def api_keys(self) -> dict[str, KeySpec]:
        return {"submitter": KeySpec("integration", "bench-intake"), **super().api_keys()}

    @property
    def submitter(self) -> dict[str, str]:
        return self.keys.get("submitter", {})

    # --- set-up ----------------------------------------------------------------------------

    def setup_routing(self) -> None:
        """A team, four reps without a cap, the city rule (round robin) and the pool default."""
        with httpx.Client(base_url=self.url("/"), headers=self.ops, timeout=30) as client:
            answer = client.put(
                f"/v1/teams/{TEAM}", json={"name": "华东 (bench)", "supervisor_id": "sup-bench"}
            )
            _expect(answer, 200, 201)
            for rep in REPS:
                answer = client.put(
                    f"/v1/reps/{rep}",
                    json={"name": rep, "team_id": TEAM, "cities": list(RULE_CITIES)},
                )
                _expect(answer, 200, 201)
            _expect(client.put("/v1/rules/routing", json={"yaml": ROUTING_YAML}), 200)

    def probe(self) -> list[dict[str, Any]]:
        """Real leads first (routed ones): a 4xx under load would only show as errors. The
        probe leads, in the order sent.

        With one worker, the first must be routed. With several, only the worker that took the
        PUT of the rules routes by them at once; the others poll them within 2 s (docs/rules.md)
        and pool leads until then. So probes go on new connections (any worker may answer) until
        3 per worker in a row are routed (a worker still lagging would hardly go unseen), and
        are only let be pooled for RULES_LAG_S."""
        wanted = 1 if self.workers == 1 else 3 * self.workers
        deadline = time.monotonic() + RULES_LAG_S
        leads: list[dict[str, Any]] = []
        routed_in_a_row = 0
        for n in itertools.count(1):
            body = lead_body(OWN_SLOT, n)
            if body["city"] not in RULE_CITIES:
                continue  # a pool city: pooled whatever the rules
            answer = httpx.post(
                self.url("/v1/leads"), json=body, headers=self.submitter, timeout=30
            )
            _expect(answer, 201)
            lead = answer.json()
            leads.append(lead)
            if lead.get("status") == "routed":
                routed_in_a_row += 1
                if routed_in_a_row == wanted:
                    break
                continue
            lagging = lead.get("status") == "pooled" and self.workers > 1
            if not lagging or time.monotonic() > deadline:
                raise RuntimeError(f"the probe lead was not routed: {lead}")
            routed_in_a_row = 0
            time.sleep(0.1)
        return leads

    # --- checks ----------------------------------------------------------------------------

    def wait_drained(self, timeout: float = 30.0) -> int:
        """Wait until the relay caught up and no request cut off by the generator is still
        committing: nothing unsent and the lead count unchanged for a second. The unsent count."""
        deadline = time.monotonic() + timeout
        unsent, leads = -1, -1
        while time.monotonic() < deadline:
            before = leads
            leads = self.scalar("SELECT count(*) FROM leads")
            unsent = self.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            if unsent == 0 and leads == before:
                return 0
            time.sleep(1.0)
        return unsent

    def checks(self) -> Checks:
        unsent = self.wait_drained()

        async def database() -> tuple[int, dict[str, int], int, int]:
            conn = await asyncpg.connect(self.database_dsn)
            try:
                rows = await conn.fetch("SELECT status, count(*) AS n FROM leads GROUP BY status")
                phones = await conn.fetchval("SELECT count(DISTINCT phone) FROM leads")
                keys = await conn.fetchval("SELECT count(DISTINCT company_key) FROM leads")
            finally:
                await conn.close()
            by_status = {r["status"]: int(r["n"]) for r in rows}
            return sum(by_status.values()), by_status, int(phones), int(keys)

        leads, by_status, phones, keys = asyncio.run(database())
        total, subjects = asyncio.run(stream_counts(self.nats_url, "SALESRAIL_LEAD"))
        problems, events = self.log_problems()
        return Checks(leads, by_status, phones, keys, unsent, total, subjects, problems, events)

    def log_problems(self) -> tuple[int, dict[str, int]]:
        """Lines of the service log at warning level or above (and any line not JSON), counted
        by level and event."""
        events = self.log_events()
        return sum(events.values()), events


def _expect(answer: httpx.Response, *codes: int) -> None:
    if answer.status_code not in codes:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}: "
            f"{answer.text[:500]}"
        )
