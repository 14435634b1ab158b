"""HTTP load generation against a server on this machine.

``run_load(url, ...)`` returns a :class:`LoadResult` (successful requests/s, latency p50/p95/p99,
errors). It uses ``wrk`` when it is on PATH (the request body goes in a generated Lua script) and
otherwise a Python generator: several processes, each an asyncio loop of raw keep-alive sockets.
The Python generator is much slower than wrk and competes for the same two cores as the server,
so its absolute figures are lower: compare ratios measured in one run, not absolute numbers.

Only loopback targets are accepted; every run is bounded in time (the Python generator also in
request count; wrk on request).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import multiprocessing as mp
import os
import queue as queue_mod
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: Cap on requests in one measurement of the Python generator (opt-in for wrk, see run_load).
DEFAULT_MAX_REQUESTS = 5_000_000
#: Per-request timeout (seconds): a slower answer counts as an error.
DEFAULT_TIMEOUT = 5.0


class SlowGeneratorWarning(UserWarning):
    """The Python fallback is in use: absolute figures are lower than with wrk."""


@dataclass(frozen=True)
class VaryingBody:
    """A request body that differs for every request (e.g. a new lead each time).

    Both generators number requests per *slot*: ``n`` counts 1, 2, 3... within a slot, and no
    two slots of one ``run_load`` call are the same, so ``(slot, n)`` never repeats:

    - ``lua``: Lua code defining ``function make_body(slot, n)`` that returns the body string.
      wrk's slot is ``phase * threads + thread`` (phase 0 = warm-up, 1 = measured run, thread
      0..threads-1), so slots are ``0 .. 2 * threads - 1``. Building a request in Lua costs wrk
      more CPU per request than a fixed body.
    - ``python(slot, n) -> bytes``: the same for the Python generator, whose slot is its
      process index ``0 .. procs - 1`` (warm-up and measurement share one counter).
    """

    lua: str
    python: Callable[[int, int], bytes]
    content_type: str = "application/json"


@dataclass
class LoadResult:
    generator: str  # e.g. "wrk 4.1.0 (1 thread)" or "python-asyncio-raw (2 procs)"
    rps: float  # successful (2xx/3xx) responses per second
    requests: int  # successful responses in the measured window
    errors: int  # non-2xx/3xx responses + connect/read/write errors + timeouts
    duration: float  # measured seconds
    concurrency: int  # open connections
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    error_kinds: dict[str, int] = field(default_factory=dict)
    #: successful responses during the warm-up (not counted above), when the generator knows
    warmup_requests: int | None = None

    @property
    def note(self) -> str:
        """A short description for a Figure's note."""
        text = f"{self.generator}, c={self.concurrency}, {self.duration:.1f}s"
        if self.errors:
            kinds = ", ".join(f"{k}={v}" for k, v in sorted(self.error_kinds.items()) if v)
            text += f", ERRORS={self.errors} ({kinds})"
        else:
            text += ", 0 errors"
        return text


# --------------------------------------------------------------------------- helpers


def _target(url: str) -> tuple[str, int, str]:
    """(host, port, path?query) of ``url``; refuses anything but a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported, got {url!r}")
    host = parts.hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"load targets must be loopback IP addresses, got {host!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"refusing to load {host}: only loopback (127.0.0.0/8, ::1) is allowed")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port, path


def _encode_body(body: Any) -> tuple[bytes | None, bool]:
    """(bytes, is_json) for a body given as bytes, str or a JSON-serialisable object."""
    if body is None:
        return None, False
    if isinstance(body, bytes):
        return body, False
    if isinstance(body, str):
        return body.encode(), False
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), True


def _headers(body: bytes | None, is_json: bool, headers: dict[str, str] | None) -> dict[str, str]:
    out = dict(headers or {})
    if body is not None and is_json and not any(k.lower() == "content-type" for k in out):
        out["Content-Type"] = "application/json"
    return out


def _percentile(sorted_values: list[float] | array, q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def wrk_path() -> str | None:
    return shutil.which("wrk")


def pick_generator(generator: str = "auto") -> str:
    """'wrk' or 'python' for the requested generator ('auto' takes wrk when on PATH)."""
    if generator not in ("auto", "wrk", "python"):
        raise ValueError(f"generator must be auto, wrk or python, not {generator!r}")
    if generator == "auto":
        return "wrk" if wrk_path() else "python"
    if generator == "wrk" and not wrk_path():
        raise RuntimeError("wrk is not on PATH: apt-get install -y wrk (or use --generator python)")
    return generator


def run_load(
    url: str,
    *,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
    concurrency: int = 32,
    duration: float = 10.0,
    warmup: float = 0.0,
    generator: str = "auto",
    threads: int | None = None,
    max_requests: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    varying_body: VaryingBody | None = None,
) -> LoadResult:
    """Load ``url`` with ``concurrency`` keep-alive connections for ``duration`` seconds.

    ``body`` may be bytes, str or a JSON-serialisable object (sent as application/json).
    ``warmup`` seconds of the same load run first and are not counted. ``threads`` is wrk's
    thread count or the Python generator's process count (default: 1 wrk thread, which leaves
    the other core to the server; 2 Python processes).

    Bounds: wrk runs for ``-d`` seconds and is killed if it overruns by a minute; the Python
    generator stops at its deadline or after ``max_requests`` (default DEFAULT_MAX_REQUESTS).
    With wrk, a ``max_requests`` cap is opt-in: it needs a Lua ``response()`` hook that costs wrk
    ~20-30 % more CPU per request, CPU taken from the server on a 2-core machine.

    ``varying_body`` (instead of ``body``) makes every request's body different; see
    :class:`VaryingBody`.
    """
    if concurrency < 1 or duration <= 0 or warmup < 0:
        raise ValueError("concurrency >= 1, duration > 0 and warmup >= 0 are required")
    if varying_body is not None and body is not None:
        raise ValueError("give body or varying_body, not both")
    host, port, path = _target(url)
    data, is_json = _encode_body(body)
    hdrs = _headers(data, is_json, headers)
    if varying_body is not None and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = varying_body.content_type
    which = pick_generator(generator)
    if which == "wrk":
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return _run_wrk(
            f"http://{netloc}{path}",
            method.upper(),
            data,
            hdrs,
            concurrency,
            duration,
            warmup,
            threads or 1,
            max_requests,
            timeout,
            varying_body,
        )
    warnings.warn(
        "wrk is not on PATH: using the Python load generator, which is much slower than wrk "
        "(and shares the cores with the server); compare ratios within one run, not absolute "
        "figures. apt-get install -y wrk",
        SlowGeneratorWarning,
        stacklevel=2,
    )
    return _run_python(
        host,
        port,
        path,
        method.upper(),
        data,
        hdrs,
        concurrency,
        duration,
        warmup,
        threads or min(2, os.cpu_count() or 1),
        max_requests or DEFAULT_MAX_REQUESTS,
        timeout,
        varying_body,
    )


# --------------------------------------------------------------------------- wrk


def _lua_string(value: bytes | str) -> str:
    """A Lua string literal for arbitrary bytes (decimal escapes, safe in LuaJIT)."""
    raw = value.encode() if isinstance(value, str) else value
    out = []
    for b in raw:
        if 32 <= b < 127 and b not in (34, 92):  # printable ASCII except " and \
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


_WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%.0f,\"duration_us\":%.0f,\"connect\":%.0f,\"read\":%.0f," ..
    "\"write\":%.0f,\"status\":%.0f,\"timeout\":%.0f,\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f," ..
    "\"max\":%.1f}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


_WRK_VARYING = r"""
local bench_phase, bench_threads, bench_next = @PHASE@, @THREADS@, 0
setup = function(thread)
  thread:set("bench_thread", bench_next)
  bench_next = bench_next + 1
end
local bench_n = 0
request = function()
  bench_n = bench_n + 1
  return wrk.format(nil, nil, nil, make_body(bench_phase * bench_threads + bench_thread, bench_n))
end
"""


def wrk_script(
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    per_thread_cap: int | None,
    varying: VaryingBody | None = None,
    phase: int = 1,
    threads: int = 1,
) -> str:
    """The Lua script that makes wrk send ``method`` with ``body`` and report JSON at the end.

    With ``varying``, a ``request()`` hook builds each body with ``make_body(slot, n)``;
    ``phase`` (0 warm-up, 1 measured) and ``threads`` make the slots of the two runs differ.
    """
    lines = [f"wrk.method = {_lua_string(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
    for key, value in headers.items():
        lines.append(f"wrk.headers[{_lua_string(key)}] = {_lua_string(value)}")
    if varying is not None:
        lines.append(varying.lua)
        lines.append(
            _WRK_VARYING.replace("@PHASE@", str(int(phase))).replace("@THREADS@", str(int(threads)))
        )
    if per_thread_cap:
        # Count bound: each thread stops after its share of max_requests.
        lines.append(
            f"local cap, seen = {int(per_thread_cap)}, 0\n"
            "response = function(status, headers, body)\n"
            "  seen = seen + 1\n"
            "  if seen >= cap then wrk.thread:stop() end\n"
            "end"
        )
    lines.append(_WRK_DONE)
    return "\n".join(lines) + "\n"


def _wrk_version() -> str:
    try:
        out = subprocess.run(
            [wrk_path() or "wrk", "--version"], capture_output=True, text=True, timeout=5
        )
        first = (out.stdout or out.stderr).splitlines()[0]
        # "wrk debian/4.1.0-3+b2 [epoll] Copyright ..." -> "wrk 4.1.0"
        token = first.split()[1].split("/")[-1].split("-")[0]
        return f"wrk {token}"
    except Exception:  # noqa: BLE001 - only used in a note
        return "wrk"


def _run_wrk_once(
    url: str, script: str, concurrency: int, duration: float, threads: int, timeout: float
) -> dict[str, float]:
    threads = max(1, min(threads, concurrency))
    secs = max(1, round(duration))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-", delete=False) as f:
        f.write(script)
        script_path = f.name
    try:
        cmd = [
            wrk_path() or "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{secs}s",
            "--timeout",
            f"{max(1, math.ceil(timeout))}s",
            "-s",
            script_path,
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
    finally:
        os.unlink(script_path)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(f"wrk gave no result (exit {proc.returncode}): {proc.stdout}{proc.stderr}")


def _run_wrk(
    url: str,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    concurrency: int,
    duration: float,
    warmup: float,
    threads: int,
    max_requests: int | None,
    timeout: float,
    varying: VaryingBody | None = None,
) -> LoadResult:
    threads = max(1, min(threads, concurrency))
    cap = max(1, max_requests // threads) if max_requests else None
    warmup_ok = None
    if warmup > 0:
        script = wrk_script(method, body, headers, cap, varying, phase=0, threads=threads)
        w = _run_wrk_once(url, script, concurrency, warmup, threads, timeout)
        warmup_ok = int(w["requests"] - w["status"])
    script = wrk_script(method, body, headers, cap, varying, phase=1, threads=threads)
    r = _run_wrk_once(url, script, concurrency, duration, threads, timeout)
    seconds = r["duration_us"] / 1e6
    ok = int(r["requests"] - r["status"])
    kinds = {
        "status": int(r["status"]),
        "connect": int(r["connect"]),
        "read": int(r["read"]),
        "write": int(r["write"]),
        "timeout": int(r["timeout"]),
    }
    return LoadResult(
        generator=f"{_wrk_version()} ({threads} thread{'s' if threads > 1 else ''})",
        rps=ok / seconds if seconds > 0 else 0.0,
        requests=ok,
        errors=sum(kinds.values()),
        duration=seconds,
        concurrency=concurrency,
        p50_ms=r["p50"] / 1000.0,
        p95_ms=r["p95"] / 1000.0,
        p99_ms=r["p99"] / 1000.0,
        max_ms=r["max"] / 1000.0,
        error_kinds=kinds,
        warmup_requests=warmup_ok,
    )


# --------------------------------------------------------------------------- Python fallback


def _request_bytes(
    host: str, port: int, path: str, method: str, body: bytes | None, headers: dict[str, str]
) -> bytes:
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; (status, server wants the connection closed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    close = b"\r\nconnection: close" in lower
    idx = lower.find(b"\r\ncontent-length:")
    if idx >= 0:
        end = lower.index(b"\r\n", idx + 2)
        await reader.readexactly(int(lower[idx + 17 : end]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif status not in (204, 304) and status >= 200:
        await reader.read()  # body delimited by close
        close = True
    return status, close


#: How long RawJsonClient reuses an idle connection: under uvicorn's 5 s keep-alive timeout.
IDLE_REUSE_S = 3.0


class RawJsonClient:
    """Keep-alive HTTP/1.1 POSTs of JSON over plain asyncio streams, for open-loop benchmarks.

    httpx spent about 1 ms of CPU a request: at 200 requests/s the generator saturated its
    core and the latency it measured was its own queueing. This is ~10 times cheaper.
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.host, self.port, self.path = _target(url)
        self.headers = _headers(b"", True, headers)
        # (reader, writer, idle since): the most recently used first out.
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def post(self, body: Any) -> tuple[int, bytes]:
        """(status, body) of one POST; a connection is reused when the server keeps it."""
        payload, _ = _encode_body(body)
        request = _request_bytes(self.host, self.port, self.path, "POST", payload, self.headers)
        reader, writer = await self._connection()
        try:
            writer.write(request)
            status, answer, close = await _read_body(reader)
        except BaseException:
            _drop(writer)
            raise
        if close:
            _drop(writer)
        else:
            self._idle.append((reader, writer, time.monotonic()))
        return status, answer

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """An idle connection the server still keeps, else a new one. A connection left over
        from a burst may have idled past the server's keep-alive timeout (uvicorn: 5 s) and be
        closed as the next request goes out: that showed as IncompleteReadError, not latency."""
        while self._idle:
            reader, writer, since = self._idle.pop()
            if time.monotonic() - since < IDLE_REUSE_S and not reader.at_eof():
                return reader, writer
            _drop(writer)
        return await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        for _, writer, _since in self._idle:
            _drop(writer)
        self._idle.clear()


async def _read_body(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response with a Content-Length body: (status, body, close)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    idx = lower.find(b"\r\ncontent-length:")
    if idx < 0:
        raise ValueError("RawJsonClient reads Content-Length responses only")
    end = lower.index(b"\r\n", idx + 2)
    body = await reader.readexactly(int(lower[idx + 17 : end]))
    return int(head[9:12]), body, b"\r\nconnection: close" in lower


async def _py_worker_main(
    host: str,
    port: int,
    request: bytes,
    conns: int,
    warmup: float,
    duration: float,
    cap: int,
    request_timeout: float,
    make_request: Callable[[int], bytes] | None = None,
) -> dict[str, Any]:
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies = array("d")
    counts = {"ok": 0, "status": 0, "connect": 0, "read": 0, "timeout": 0}
    warmup_ok = 0
    sent = 0

    async def one_connection() -> None:
        nonlocal warmup_ok, sent
        reader = writer = None
        while True:
            now = time.monotonic()
            if now >= stop_at or counts["ok"] >= cap:
                break
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), request_timeout
                    )
                if make_request is not None:
                    sent += 1
                    payload = make_request(sent)
                else:
                    payload = request
                t0 = time.monotonic()
                async with asyncio.timeout(request_timeout):
                    writer.write(payload)
                    status, close = await _read_response(reader)
                t1 = time.monotonic()
                if t0 >= measure_from and t1 <= stop_at:
                    if 200 <= status < 400:
                        counts["ok"] += 1
                        latencies.append(t1 - t0)
                    else:
                        counts["status"] += 1
                elif t1 < measure_from and 200 <= status < 400:
                    warmup_ok += 1
                if close:
                    writer.close()
                    writer = None
            except TimeoutError:
                if time.monotonic() >= measure_from:
                    counts["timeout"] += 1
                writer = _drop(writer)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                if time.monotonic() >= measure_from:
                    counts["connect" if writer is None else "read"] += 1
                writer = _drop(writer)
                await asyncio.sleep(0.01)
        _drop(writer)

    await asyncio.gather(*(one_connection() for _ in range(conns)))
    return {"latencies": latencies, "counts": counts, "measured": duration, "warmup_ok": warmup_ok}


def _drop(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass
    return None


def _py_worker(args: tuple, barrier: Any, queue: Any, make_request: Any = None) -> None:
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    try:
        barrier.wait(timeout=30)
        result = asyncio.run(_py_worker_main(*args, make_request=make_request))
        queue.put(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", repr(exc)))


def _run_python(
    host: str,
    port: int,
    path: str,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    concurrency: int,
    duration: float,
    warmup: float,
    procs: int,
    max_requests: int,
    timeout: float,
    varying: VaryingBody | None = None,
) -> LoadResult:
    procs = max(1, min(procs, concurrency))
    request = _request_bytes(host, port, path, method, body, headers)

    def request_maker(slot: int) -> Callable[[int], bytes] | None:
        if varying is None:
            return None
        return lambda n: _request_bytes(host, port, path, method, varying.python(slot, n), headers)

    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    cap = max(1, max_requests // procs)
    # fork: no re-import of the caller's __main__ (a script without a main guard would
    # otherwise run again in every worker); the harness is single-threaded when it forks.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier = ctx.Barrier(procs)
    queue = ctx.Queue()
    if varying is not None and ctx.get_start_method() != "fork":
        raise RuntimeError("varying bodies need the fork start method for the Python generator")
    workers = [
        ctx.Process(
            target=_py_worker,
            args=(
                (host, port, request, n, warmup, duration, cap, timeout),
                barrier,
                queue,
                request_maker(slot),
            ),
            daemon=True,
        )
        for slot, n in enumerate(shares)
    ]
    for w in workers:
        w.start()
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    deadline = time.monotonic() + warmup + duration + timeout + 60
    try:
        for _ in workers:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                kind, payload = queue.get(timeout=remaining)
            except queue_mod.Empty:
                raise RuntimeError("python load generator: a worker gave no result") from None
            (results if kind == "ok" else failures).append(payload)
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.terminate()
                w.join(timeout=5)
    if failures:
        raise RuntimeError(f"python load generator failed: {failures}")

    lat = sorted(x for r in results for x in r["latencies"])
    counts: dict[str, int] = {}
    for r in results:
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
    ok = counts.pop("ok", 0)
    return LoadResult(
        generator=f"python-asyncio-raw ({procs} proc{'s' if procs > 1 else ''}, slower than wrk)",
        rps=ok / duration,
        requests=ok,
        errors=sum(counts.values()),
        duration=duration,
        concurrency=concurrency,
        p50_ms=_percentile(lat, 50) * 1000,
        p95_ms=_percentile(lat, 95) * 1000,
        p99_ms=_percentile(lat, 99) * 1000,
        max_ms=(lat[-1] * 1000) if lat else 0.0,
        error_kinds=counts,
        warmup_requests=sum(int(r.get("warmup_ok", 0)) for r in results),
    )


def _main(argv: list[str]) -> int:
    """``python -m bench.load URL [POST JSON]``: a quick manual load run (5 s, c=32)."""
    if not argv:
        print("usage: python -m bench.load URL [METHOD [JSON_BODY]]", file=sys.stderr)
        return 2
    url = argv[0]
    method = argv[1] if len(argv) > 1 else "GET"
    body = json.loads(argv[2]) if len(argv) > 2 else None
    r = run_load(url, method=method, body=body, duration=5, warmup=1)
    print(f"{r.rps:,.0f} req/s p50 {r.p50_ms:.2f} ms p99 {r.p99_ms:.2f} ms ({r.note})")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
