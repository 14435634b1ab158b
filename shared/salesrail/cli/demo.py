"""`salesrail demo`: sample teams, reps and routing rules, ~20 leads, and what became of each."""

from __future__ import annotations

import time
from typing import Annotated, Any, NoReturn

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)
MISSING = "not available in this lead-router"

TEAMS: dict[str, dict[str, Any]] = {
    "east-china": {"name": "华东大区", "supervisor_id": "sup-zhou", "channels": []},
    "south-china": {"name": "华南大区", "supervisor_id": "sup-huang", "channels": []},
}

REPS: dict[str, dict[str, Any]] = {
    "rep-zhang": {
        "name": "张伟",
        "team_id": "east-china",
        "cities": ["杭州", "宁波"],
        "categories": ["紧固件", "机床"],
        "cap": 50,
        "status": "active",
        "channels": [],
    },
    "rep-li": {
        "name": "李娜",
        "team_id": "east-china",
        "cities": ["杭州", "宁波"],
        "categories": ["紧固件", "机床"],
        "cap": 50,
        "status": "active",
        "channels": [],
    },
    "rep-chen": {
        "name": "陈杰",
        "team_id": "south-china",
        "cities": ["深圳", "东莞"],
        "categories": ["电子元件"],
        "cap": 50,
        "status": "active",
        "channels": [],
    },
    # Away: the Guangdong rule sends its leads to the team, and routing skips her.
    "rep-wang": {
        "name": "王芳",
        "team_id": "south-china",
        "cities": ["广州", "佛山"],
        "categories": ["电子元件"],
        "cap": 30,
        "status": "away",
        "channels": [],
    },
}

ROUTING_RULES = """\
# salesrail demo: the first rule that matches decides; no match goes to the public pool.
rules:
  - name: hangzhou-ningbo-fasteners
    when: {city: [杭州, 宁波], category: [紧固件, fasteners]}
    assign: {reps: [rep-zhang, rep-li], strategy: round_robin}
  - name: hangzhou-ningbo-machine-tools
    when: {city: [杭州, 宁波], category: [机床]}
    assign: {team: east-china, strategy: least_loaded}
  - name: shenzhen-dongguan-electronics
    when: {city: [深圳, 东莞], category: [电子元件]}
    assign: {reps: [rep-chen], strategy: round_robin}
  - name: guangdong-electronics
    when: {province: [广东], category: [电子元件]}
    assign: {team: south-china, strategy: least_loaded}
  - name: zhejiang-high-grade
    when: {province: [浙江], grade: [A]}
    assign: {team: east-china, strategy: least_loaded}
default: {pool: public}
"""


def _lead(
    source: str, company: str, contact: str, phone: str, city: str, category: str, **extra: Any
) -> dict[str, Any]:
    return {
        "source": source,
        "company_name": company,
        "contact_name": contact,
        "phone": phone,
        "city": city,
        "category": category,
        **extra,
    }


# In order: later duplicates refer to earlier leads; round-robin shows in the fastener leads.
LEADS: list[dict[str, Any]] = [
    _lead(
        "website",
        "杭州恒通紧固件有限公司",
        "王建国",
        "13857112345",
        "杭州",
        "紧固件",
        budget=200000,
        purchase_timeframe="1个月内",
        tags=["官网询价"],
    ),
    _lead(
        "douyin",
        "宁波华锐精密机械有限公司",
        "李明",
        "13905741234",
        "宁波",
        "机床",
        budget=800000,
        purchase_timeframe="3个月内",
    ),
    _lead(
        "expo",
        "深圳市创芯电子科技有限公司",
        "陈晓东",
        "13824567890",
        "深圳",
        "电子元件",
        budget=150000,
        tags=["展会", "高意向"],
    ),
    _lead("website", "东莞市宏达电子有限公司", "刘洋", "13922881234", "东莞", "电子元件"),
    _lead(
        "referral",
        "广州市粤海电子元器件有限公司",
        "黄志强",
        "13711223344",
        "广州",
        "电子元件",
        budget=300000,
        purchase_timeframe="本季度",
    ),
    _lead(
        "website",
        "杭州西子五金制品有限公司",
        "周敏",
        "0571-86123456",
        "杭州市",
        "紧固件",
        purchase_timeframe="半年内",
    ),
    _lead(
        "expo",
        "杭州东方数控机床有限公司",
        "赵磊",
        "15868123456",
        "Hangzhou",
        "机床",
        budget=1200000,
        purchase_timeframe="1个月内",
    ),
    _lead(
        "website",
        "宁波甬兴标准件有限公司",
        "孙丽",
        "13566123456",
        "宁波",
        "fasteners",
        budget=50000,
    ),
    _lead(
        "douyin",
        "温州瓯江阀门有限公司",
        "郑海",
        "13757712345",
        "温州",
        "机床",
        notes="想了解五轴加工中心",
    ),
    _lead("douyin", "成都蜀航化工有限公司", "杨帆", "13880123456", "成都", "化工原料"),
    _lead(
        "website",
        "北京中科精测仪器有限公司",
        "吴静",
        "13910123456",
        "北京",
        "实验仪器",
        budget=80000,
    ),
    _lead("referral", "西安秦川包装材料有限公司", "马超", "13991123456", "西安", "包装材料"),
    _lead("expo", "佛山市南海电子元件厂", "何伟", "13690123456", "佛山", "电子元件", budget=60000),
    _lead(
        "website",
        "深圳市华强电子元件有限公司",
        "林峰",
        "13530123456",
        "深圳",
        "电子元件",
        budget=500000,
        purchase_timeframe="1个月内",
    ),
    _lead("website", "苏州工业园区精工紧固件有限公司", "钱进", "13962123456", "苏州", "紧固件"),
    _lead(
        "website", "杭州钱塘紧固件有限公司", "冯涛", "13758123456", "杭州", "紧固件", budget=120000
    ),
    # Duplicates: the same phone as the first lead, under a name variant.
    _lead("douyin", "杭州恒通紧固件股份有限公司", "王建国", "13857112345", "杭州", "紧固件"),
    # The same company as the third lead without city prefix and suffix, another phone.
    _lead("website", "创芯电子科技", "陈晓东", "13824560000", "深圳", "电子元件"),
    # The same phone as the fourth lead.
    _lead("referral", "宏达电子", "刘洋", "13922881234", "东莞", "电子元件"),
    _lead(
        "expo",
        "宁波北仑紧固件制造有限公司",
        "蒋勇",
        "15906741234",
        "宁波",
        "紧固件",
        budget=90000,
        purchase_timeframe="2个月内",
    ),
]


def demo(
    url: Annotated[str, typer.Option(help="lead-router's base URL.")] = "http://127.0.0.1:8001",
    api_key: Annotated[
        str | None, typer.Option(envvar="SALESRAIL_API_KEY", help="An admin API key.")
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            help="Go ahead on an instance that has reps or routing rules: the demo replaces "
            "the routing rules and the sample reps' channels.",
        ),
    ] = False,
) -> None:
    """Set up sample teams, reps and rules, post sample leads, show where each one went."""
    if not api_key:
        _fail(
            "an admin API key is needed: --api-key KEY or SALESRAIL_API_KEY "
            "(`salesrail up` shows one on first start; `salesrail keys create --role admin`)"
        )
    with httpx.Client(base_url=url.rstrip("/"), headers={"X-API-Key": api_key}, timeout=30) as c:
        _check_reachable(c, url)
        if not yes:
            _refuse_unless_fresh(c, url)
        _print_setup(_set_up(c))
        answers = [_post_lead(c, number, lead) for number, lead in enumerate(LEADS, start=1)]
        answers = _settle(c, answers)
    _print_leads(answers)


def _check_reachable(client: httpx.Client, url: str) -> None:
    try:
        client.get("/healthz")
    except httpx.HTTPError as exc:
        _fail(
            f"cannot reach lead-router at {url} ({type(exc).__name__}): is `salesrail up` running?"
        )


def _refuse_unless_fresh(client: httpx.Client, url: str) -> None:
    """Exit 2 unless the instance has no reps and only the default routing rules (version 1,
    or no rules): the demo would replace its live rule set and its reps' channels."""
    found: list[str] = []
    reps = _get(client, "/v1/reps")
    if reps is not None and (not isinstance(reps, list) or reps):
        found.append(f"{len(reps) if isinstance(reps, list) else 'some'} reps")
    rules = _get(client, "/v1/rules/routing")
    if rules is not None and not _default_rules(rules):
        version = rules.get("version") if isinstance(rules, dict) else None
        found.append(f"routing rules version {version}")
    if found:
        err.print(
            f"[red]lead-router at {url} is in use ({' and '.join(found)}): `salesrail demo` "
            "would replace its routing rules and reset its reps' channels. Run it on a new "
            "instance, or pass --yes to go ahead anyway.[/red]"
        )
        raise typer.Exit(2)


def _get(client: httpx.Client, path: str) -> Any:
    """The JSON answer; None when this build has no such route (nothing there to overwrite)."""
    response = client.get(path)
    code = response.status_code
    if code in (401, 403):
        _fail(f"the service refused the API key on GET {path} ({code}); the demo needs admin")
    if code in (404, 405):
        return None
    try:
        if code == 200:
            return response.json()
    except ValueError:
        pass
    err.print(
        f"[red]cannot tell whether lead-router at {_url_of(client)} is in use: GET {path} "
        f"answered {code}. Pass --yes to run the demo anyway.[/red]"
    )
    raise typer.Exit(2)


def _url_of(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def _default_rules(rules: Any) -> bool:
    if not isinstance(rules, dict):
        return False
    if rules.get("version") == 1:
        return True
    try:
        document = yaml.safe_load(rules.get("yaml") or "")
    except yaml.YAMLError:
        return False
    return isinstance(document, dict) and not document.get("rules")


def _set_up(client: httpx.Client) -> list[tuple[str, str]]:
    """Teams, then reps, then the rule set; each line says what the service answered."""
    done: list[tuple[str, str]] = []
    for team_id, team in TEAMS.items():
        done.append((f"team {team_id}", _put(client, f"/v1/teams/{team_id}", team)))
    for rep_id, rep in REPS.items():
        done.append((f"rep {rep_id} ({rep['status']})", _put(client, f"/v1/reps/{rep_id}", rep)))
    done.append(("routing rules", _put(client, "/v1/rules/routing", {"yaml": ROUTING_RULES})))
    return done


def _put(client: httpx.Client, path: str, body: dict[str, Any]) -> str:
    response = client.put(path, json=body)
    code = response.status_code
    if code in (401, 403):
        _fail(f"the service refused the API key on PUT {path} ({code}); the demo needs admin")
    if code == 201:
        return "[green]created[/green]"
    if code == 200:
        return "[green]set[/green]"
    if code in (404, 405):
        # The reps/teams/rules API may not exist in this build yet: carry on with the leads.
        return f"[yellow]{MISSING} ({code})[/yellow]"
    return f"[red]refused ({code}): {_problem_text(response)}[/red]"


def _post_lead(client: httpx.Client, number: int, lead: dict[str, Any]) -> dict[str, Any]:
    external_id = f"demo-{number:03d}"
    body = {**lead, "external_id": external_id}
    # Stable keys (and external ids): a second run replays instead of creating new leads.
    response = client.post("/v1/leads", json=body, headers={"Idempotency-Key": f"demo:{number}"})
    if response.status_code in (401, 403):
        _fail(f"the service refused the API key on POST /v1/leads ({response.status_code})")
    answer: dict[str, Any] = {"number": number, "lead": lead}
    if response.status_code in (200, 201):
        answer.update(
            result="new" if response.status_code == 201 else "replay", out=response.json()
        )
    else:
        answer.update(result="refused", out={"route": _problem_text(response)})
    return answer


def _settle(client: httpx.Client, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leads still `pending` (enrichment late) are read again once, after a moment."""
    pending = [a for a in answers if a["out"].get("status") == "pending"]
    if pending:
        time.sleep(1.0)
    for answer in pending:
        response = client.get(f"/v1/leads/{answer['out']['id']}")
        if response.status_code == 200:
            answer["out"] = response.json()
    return answers


def _print_setup(done: list[tuple[str, str]]) -> None:
    table = Table(title="Demo setup")
    table.add_column("what")
    table.add_column("answer")
    for what, answer in done:
        table.add_row(what, answer)
    out.print(table)
    if any(MISSING in answer for _, answer in done):
        out.print(
            f"[yellow]Some setup routes are {MISSING}: the leads are posted anyway and "
            "take whatever routing it has (or wait in the pool).[/yellow]"
        )


def _print_leads(answers: list[dict[str, Any]]) -> None:
    table = Table(title="Demo leads: what happened to each")
    for column in ("#", "company", "city", "category", "answer", "status", "owner", "grade"):
        table.add_column(column, no_wrap=column in ("#", "answer", "status", "grade"))
    table.add_column("route", overflow="fold")
    colours = {"routed": "green", "pooled": "yellow", "duplicate": "magenta", "pending": "blue"}
    for a in answers:
        lead, got = a["lead"], a["out"]
        status = got.get("status", "-")
        table.add_row(
            str(a["number"]),
            lead["company_name"],
            lead["city"],
            lead["category"],
            a["result"],
            f"[{colours.get(status, 'red')}]{status}[/]",
            got.get("owner_id") or "-",
            got.get("grade") or "-",
            got.get("route") or "",
        )
    out.print(table)
    counts: dict[str, int] = {}
    for a in answers:
        status = a["out"].get("status", "refused")
        counts[status] = counts.get(status, 0) + 1
    out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def _problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    errors = problem.get("errors") or []
    named = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
    return named or str(problem.get("detail") or response.reason_phrase)


def _fail(message: str) -> NoReturn:
    err.print(f"[red]{message}[/red]")
    raise typer.Exit(1)
