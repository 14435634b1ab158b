"""Salesrail benchmark harness.

Every module ``bench/bench_*.py`` is a benchmark. It exposes::

    NAME = "yardstick"                 # unique name, used on the command line
    REQUIRES = ("yardstick",)          # optional: benchmarks whose figures it reads
    def run(ctx: Context) -> list[Figure]: ...

``python -m bench`` runs them all, the yardstick first, and prints one table. A benchmark that
compares its service to the yardstick reads the yardstick's figures from the same run through
``ctx.value("yardstick", "bare_fastapi_post_rps")`` or builds its ratio figure with
``ctx.ratio_to_yardstick(...)``. Benchmarks are not run in CI.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

#: Always run first when it is selected or required.
YARDSTICK = "yardstick"
YARDSTICK_RPS = "bare_fastapi_post_rps"


@dataclass
class Figure:
    """One measured figure: ``value`` in ``unit``; ``note`` says how it was measured."""

    name: str
    value: float
    unit: str
    note: str = ""


@dataclass
class Context:
    """What a benchmark gets: run-wide options and every figure measured earlier in the run."""

    duration: float = 10.0
    warmup: float = 2.0
    concurrency: int = 32
    generator: str = "auto"  # "auto" (wrk if on PATH), "wrk" or "python"
    options: dict[str, Any] = field(default_factory=dict)
    #: figures[benchmark][figure name] -> Figure, for every benchmark that already ran.
    figures: dict[str, dict[str, Figure]] = field(default_factory=dict)

    def has(self, bench: str, name: str) -> bool:
        return name in self.figures.get(bench, {})

    def figure(self, bench: str, name: str) -> Figure:
        try:
            return self.figures[bench][name]
        except KeyError:
            raise KeyError(
                f"figure {bench}.{name} was not measured earlier in this run "
                f"(declare REQUIRES = ({bench!r},) in the benchmark module)"
            ) from None

    def value(self, bench: str, name: str) -> float:
        return self.figure(bench, name).value

    def yardstick_rps(self) -> float:
        return self.value(YARDSTICK, YARDSTICK_RPS)

    def ratio_to_yardstick(self, name: str, rps: float, note: str = "") -> Figure:
        """A figure ``rps / yardstick rps`` measured in this same run (unit ``x yardstick``)."""
        base = self.yardstick_rps()
        ratio = rps / base if base > 0 else float("nan")
        extra = f"{rps:,.0f} req/s vs yardstick {base:,.0f} req/s"
        return Figure(name, ratio, "x yardstick", f"{note}; {extra}" if note else extra)


@dataclass
class Benchmark:
    name: str
    module: ModuleType
    requires: tuple[str, ...]

    @property
    def run(self) -> Callable[[Context], list[Figure]]:
        return self.module.run


@dataclass
class Outcome:
    bench: str
    figures: list[Figure]
    seconds: float
    error: str | None = None


def discover() -> dict[str, Benchmark]:
    """Import every ``bench/bench_*.py`` and index it by its ``NAME``."""
    found: dict[str, Benchmark] = {}
    for info in sorted(pkgutil.iter_modules([str(BENCH_DIR)]), key=lambda i: i.name):
        if not info.name.startswith("bench_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        if not isinstance(name, str) or not callable(getattr(module, "run", None)):
            raise RuntimeError(f"bench/{info.name}.py must define NAME (str) and run(ctx)")
        if name in found:
            raise RuntimeError(f"benchmark name {name!r} is defined twice")
        requires = tuple(getattr(module, "REQUIRES", ()))
        found[name] = Benchmark(name, module, requires)
    return found


def plan(available: dict[str, Benchmark], selected: Iterable[str] | None) -> list[str]:
    """Selected names plus what they require, dependencies first, the yardstick first of all."""
    wanted = list(available) if not selected else list(selected)
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise KeyError(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(available)}")

    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise RuntimeError(f"benchmark dependency cycle through {name!r}")
        if name not in available:
            raise KeyError(f"a benchmark requires {name!r}, which does not exist")
        visiting.add(name)
        for dep in available[name].requires:
            visit(dep)
        visiting.discard(name)
        order.append(name)

    if YARDSTICK in available and YARDSTICK in wanted:
        visit(YARDSTICK)
    for name in wanted:
        visit(name)
    return order


def run_benchmarks(
    order: list[str],
    available: dict[str, Benchmark],
    ctx: Context,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    failed: set[str] = set()
    for name in order:
        bench = available[name]
        if on_start:
            on_start(name)
        t0 = time.monotonic()
        missing = [d for d in bench.requires if d in failed]
        if missing:
            outcome = Outcome(name, [], 0.0, f"skipped: needs {', '.join(missing)}, which failed")
        else:
            try:
                figures = list(bench.run(ctx))
                outcome = Outcome(name, figures, time.monotonic() - t0)
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not stop the rest
                detail = traceback.format_exc(limit=4)
                outcome = Outcome(name, [], time.monotonic() - t0, f"{exc!r}\n{detail}")
        if outcome.error is None:
            ctx.figures[name] = {f.name: f for f in outcome.figures}
        else:
            failed.add(name)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def outcomes_as_json(outcomes: list[Outcome], ctx: Context, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": meta,
        "options": {
            "duration_s": ctx.duration,
            "warmup_s": ctx.warmup,
            "concurrency": ctx.concurrency,
            "generator": ctx.generator,
            **ctx.options,
        },
        "figures": [{"benchmark": o.bench, **asdict(f)} for o in outcomes for f in o.figures],
        "benchmarks": [
            {"benchmark": o.bench, "seconds": round(o.seconds, 2), "error": o.error}
            for o in outcomes
        ],
    }


__all__ = [
    "Benchmark",
    "Context",
    "Figure",
    "Outcome",
    "REPO_ROOT",
    "YARDSTICK",
    "YARDSTICK_RPS",
    "discover",
    "outcomes_as_json",
    "plan",
    "run_benchmarks",
]
