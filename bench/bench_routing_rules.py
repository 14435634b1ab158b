"""Rules only, in process, no I/O: routing decisions and scoring cards per second.

Routing: 1,000 territory rules (250 real prefecture-level cities x 4 categories, each naming a
rep), compiled with ``compile_routing`` on the process-wide durable-rules engine, then
``CompiledRouting.match`` over ~50,000 varied leads: cities with rules (matching and
non-matching categories), cities without a rule, and leads without a known city. A second
figure is the worst case for the city buckets: 1,000 rules that name no city (province x
category), all in the one bucket every lead is compared with.

Scoring: the shipped ``rules/scoring.yaml`` (parsed with ``rulebook.parse``), compiled with
``compile_scoring``, then ``CompiledScoring.score`` over varied facts.

Options: ``--set routing_rules.leads=50000``, ``routing_rules.max_seconds=20`` (a timed loop
stops early at this bound).
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench import REPO_ROOT, Context, Figure

NAME = "routing_rules"
REQUIRES: tuple[str, ...] = ()

CATEGORIES = ("紧固件", "机床", "包装", "五金")
OTHER_CATEGORIES = ("化工", "纺织")
SCORING_YAML = REPO_ROOT / "services/lead-router/lead_router/rules/scoring.yaml"


def _cities() -> list[tuple[str, str]]:
    """(canonical name, province) of every prefecture-level city, sorted."""
    from salesrail.text.regions import city_names, resolve_city

    found: dict[str, str] = {}
    for form in city_names():
        city = resolve_city(form)
        if city is not None:
            found[city.name] = city.province
    return sorted(found.items())


def _timed(fn: Any, items: list[Any], max_seconds: float) -> tuple[int, float, list[Any]]:
    """Call fn on items in order until done or max_seconds; (calls, seconds, results)."""
    out = []
    start = time.perf_counter()
    stop_at = start + max_seconds
    for i, item in enumerate(items):
        out.append(fn(item))
        if (i & 255) == 255 and time.perf_counter() > stop_at:
            break
    return len(out), time.perf_counter() - start, out


def _routing_leads(
    cities: list[tuple[str, str]], ruled: int, count: int, rng: random.Random
) -> list[Any]:
    from lead_router.routing_rules import LeadFacts

    with_rule, without_rule = cities[:ruled], cities[ruled:]
    leads = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.80:  # a city with rules; 1 in 10 with a category no rule names
            city, province = rng.choice(with_rule)
            category = (
                rng.choice(CATEGORIES) if rng.random() < 0.9 else rng.choice(OTHER_CATEGORIES)
            )
        elif roll < 0.95 and without_rule:  # a city without rules
            city, province = rng.choice(without_rule)
            category = rng.choice(CATEGORIES)
        else:  # no city known
            city, province = None, rng.choice(cities)[1]
            category = rng.choice(CATEGORIES)
        leads.append(
            LeadFacts(
                city=city,
                province=province,
                category=category,
                grade=rng.choice("ABC"),
                source=rng.choice(["web_form", "展会", "referral"]),
                score=rng.randrange(0, 101),
                tags=tuple(rng.sample(["展会", "回访", "vip"], rng.randrange(0, 3))),
            )
        )
    return leads


def _routing(document: Any, leads: list[Any], version: int, max_seconds: float) -> dict[str, Any]:
    from lead_router.routing_rules import compile_routing
    from salesrail.rules_engine import rule_engine

    t0 = time.perf_counter()
    compiled = compile_routing(document, version=version, engine=rule_engine())
    compile_s = time.perf_counter() - t0
    for lead in leads[:2000]:  # warm-up: first posts to each ruleset
        compiled.match(lead)
    calls, seconds, results = _timed(compiled.match, leads, max_seconds)
    matched = sum(1 for r in results if r.rule is not None)
    return {"compile_s": compile_s, "calls": calls, "seconds": seconds, "matched": matched}


def run(ctx: Context) -> list[Figure]:
    from lead_router.routing_rules import RoutingDocument

    count = int(ctx.options.get("routing_rules.leads", 50_000))
    max_seconds = float(ctx.options.get("routing_rules.max_seconds", 20))
    rng = random.Random(4)
    cities = _cities()
    ruled = 250
    if len(cities) < ruled + 20:
        raise RuntimeError(f"only {len(cities)} cities in the region data")

    # --- 1,000 territory rules: 250 cities x 4 categories --------------------------------
    rules = [
        {
            "name": f"t{i:04d}",
            "when": {"city": [city], "category": [category]},
            "assign": {"rep": f"rep-{i % 50}"},
        }
        for i, (city, category) in enumerate(
            (city, category) for city, _ in cities[:ruled] for category in CATEGORIES
        )
    ]
    document = RoutingDocument.model_validate({"rules": rules, "default": {"pool": "public"}})
    leads = _routing_leads(cities, ruled, count, rng)
    by_city = _routing(document, leads, version=1, max_seconds=max_seconds)

    # --- worst case: 1,000 rules without a city (province x category) ----------------------
    provinces = sorted({p for _, p in cities})
    categories = [f"品类{i:02d}" for i in range(-(-1000 // len(provinces)))]
    flat_rules = [
        {
            "name": f"p{i:04d}",
            "when": {"province": [province], "category": [category]},
            "assign": {"rep": f"rep-{i % 50}"},
        }
        for i, (province, category) in enumerate((p, c) for c in categories for p in provinces)
    ][:1000]
    flat_doc = RoutingDocument.model_validate({"rules": flat_rules, "default": {"pool": "public"}})
    from lead_router.routing_rules import LeadFacts

    flat_leads = [
        LeadFacts(
            city=None,
            province=rng.choice(provinces),
            category=rng.choice(categories) if rng.random() < 0.9 else "化工",
        )
        for _ in range(min(count, 20_000))
    ]
    flat = _routing(flat_doc, flat_leads, version=2, max_seconds=max_seconds)

    # --- scoring ---------------------------------------------------------------------------
    from lead_router.rulebook import parse
    from lead_router.scoring_rules import compile_scoring
    from salesrail.rules_engine import rule_engine

    t0 = time.perf_counter()
    scoring = compile_scoring(
        parse("scoring", SCORING_YAML.read_text(encoding="utf-8")), version=1, engine=rule_engine()
    )
    scoring_compile_s = time.perf_counter() - t0
    facts = [_scoring_facts(rng, cities) for _ in range(count)]
    for f in facts[:2000]:
        scoring.score(f)
    s_calls, s_seconds, cards = _timed(scoring.score, facts, max_seconds)
    grades = {g: sum(1 for c in cards if c.grade == g) for g in "ABC"}

    routing_rate = by_city["calls"] / by_city["seconds"]
    return [
        Figure(
            "routing_decisions_per_s",
            routing_rate,
            "decisions/s",
            f"1,000 rules ({ruled} cities x {len(CATEGORIES)} categories), "
            f"{by_city['calls']:,} leads in {by_city['seconds']:.2f}s, "
            f"{by_city['matched']:,} matched a rule; target >= 20,000 (issue 4)",
        ),
        Figure(
            "routing_compile_ms",
            by_city["compile_s"] * 1000,
            "ms",
            f"compile_routing of those 1,000 rules ({ruled + 1} city buckets)",
        ),
        Figure(
            "routing_decisions_per_s_no_city",
            flat["calls"] / flat["seconds"],
            "decisions/s",
            f"worst case: 1,000 rules naming no city ({len(provinces)} provinces x "
            f"{len(categories)} categories), one bucket of {-(-1000 // 200)} chunks; "
            f"{flat['calls']:,} leads in {flat['seconds']:.2f}s, {flat['matched']:,} matched",
        ),
        Figure("routing_compile_ms_no_city", flat["compile_s"] * 1000, "ms", "compile_routing"),
        Figure(
            "scoring_decisions_per_s",
            s_calls / s_seconds,
            "cards/s",
            f"rules/scoring.yaml ({len(scoring.document.factors)} factors + qualified), "
            f"{s_calls:,} leads in {s_seconds:.2f}s; grades A {grades['A']}, B {grades['B']}, "
            f"C {grades['C']}",
        ),
        Figure("scoring_compile_ms", scoring_compile_s * 1000, "ms", "parse + compile_scoring"),
    ]


def _scoring_facts(rng: random.Random, cities: list[tuple[str, str]]) -> dict[str, Any]:
    """What intake passes to scoring (service._score), with varied registry facts."""
    city, province = rng.choice(cities)
    known = rng.random() < 0.7  # found in the registry
    return {
        "source": rng.choice(["web_form", "展会", "referral"]),
        "city": city,
        "province": province,
        "category": rng.choice(CATEGORIES),
        "purchase_timeframe": rng.choice([None, "三个月内", "半年内"]),
        "email": rng.choice([None, "buyer@example.cn"]),
        "budget": rng.choice([None, 50000.0, 500000.0]),
        "tags": rng.sample(["展会", "回访", "vip"], rng.randrange(0, 3)),
        "registered_capital_cny": rng.choice([1e6, 5e6, 2e7]) if known else None,
        "years_since_founding": rng.randrange(0, 30) if known else None,
        "insured_headcount": rng.randrange(0, 500) if known else None,
        "industry": rng.choice(["制造业", "批发业", "manufacturing"]) if known else None,
    }
