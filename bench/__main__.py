"""``python -m bench [NAME ...] [--json PATH]``: run benchmarks and print a table of figures."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import warnings
from pathlib import Path

from bench import Context, Outcome, discover, outcomes_as_json, plan, run_benchmarks
from bench.load import SlowGeneratorWarning, pick_generator, wrk_path


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def _parse_set(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run Salesrail benchmarks (all by default, the yardstick first) and print "
        "a table of figures. Not for CI.",
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write figures as JSON")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (2)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (32)")
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk when on PATH (auto), or the slower Python one",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s measured, 1 s warm-up")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="per-benchmark option, e.g. yardstick.concurrency=64 (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0

    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is in the workspace's dependencies
        Console = Table = None  # type: ignore[assignment,misc]

    err = Console(stderr=True) if Console else None

    def say(msg: str) -> None:
        if err:
            err.print(msg)
        else:
            print(msg, file=sys.stderr)

    available = discover()
    if args.list:
        for name, b in available.items():
            req = f" (requires {', '.join(b.requires)})" if b.requires else ""
            doc = (b.module.__doc__ or "").strip().splitlines()[0:1]
            print(f"{name}{req}: {doc[0] if doc else ''}")
        return 0
    try:
        order = plan(available, args.names)
    except KeyError as exc:
        say(f"[red]{exc.args[0]}[/red]" if err else str(exc.args[0]))
        return 2

    try:
        generator = pick_generator(args.generator)
    except RuntimeError as exc:
        say(str(exc))
        return 2
    if generator == "python":
        why = "--generator python" if wrk_path() else "wrk not found: apt-get install -y wrk"
        say(
            f"[yellow]Using the Python load generator ({why}): it is slower than wrk (more CPU "
            "per request, taken from the server). Compare ratios within this run, not absolute "
            "figures.[/yellow]"
        )
    warnings.simplefilter("ignore", SlowGeneratorWarning)  # said once above

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    ctx = Context(
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        generator=args.generator,
        options=_parse_set(args.set),
    )
    say(
        f"running {', '.join(order)}: {args.duration:g}s measured after {args.warmup:g}s "
        f"warm-up, c={args.concurrency}, generator {generator}"
    )

    def on_start(name: str) -> None:
        say(f"[bold]→ {name}[/bold] …" if err else f"-> {name} ...")

    def on_done(o: Outcome) -> None:
        if o.error:
            say(
                f"[red]✗ {o.bench} failed after {o.seconds:.1f}s:[/red] {o.error}"
                if err
                else f"x {o.bench} failed: {o.error}"
            )
        else:
            say(f"✓ {o.bench} ({o.seconds:.1f}s)")

    outcomes = run_benchmarks(order, available, ctx, on_start, on_done)

    rows = []
    for o in outcomes:
        if o.error:
            rows.append((o.bench, "FAILED", "", "", o.error.splitlines()[0]))
        for f in o.figures:
            rows.append((o.bench, f.name, _fmt(f.value), f.unit, f.note))
    if Table:
        table = Table(title="Salesrail benchmarks")
        table.add_column("benchmark")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_column("unit")
        table.add_column("notes", overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(width=max(160, Console().width)).print(table)
    else:
        for row in rows:
            print(" | ".join(row))

    if args.json:
        meta = {
            "started": started,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "generator": generator,
            "wrk": wrk_path(),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(outcomes_as_json(outcomes, ctx, meta), ensure_ascii=False, indent=2) + "\n"
        )
        say(f"figures written to {args.json}")
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
