"""Start a server under test as a subprocess on a free loopback port, wait for it, stop it.

    with start_uvicorn("bench.yardstick_app:app") as server:
        run_load(server.url("/leads"), ...)

``start_uvicorn`` runs one uvicorn worker with the access log off (uvloop and httptools when
installed). ``start_process`` runs any command that serves HTTP on the port it is given.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import REPO_ROOT

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def best_loop() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def best_http() -> str:
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def answers(host: str, port: int, path: str = "/", timeout: float = 1.0) -> bool:
    """True when something on host:port answers an HTTP GET with any status line."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
            )
            return s.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


@dataclass
class ServerProcess:
    """A server we started; ``stop()`` (or leaving the ``with`` block) ends it."""

    proc: subprocess.Popen
    host: str
    port: int
    log_path: Path
    description: str
    keep_log: bool = False  # a log file the caller named is left in place on stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, path: str = "/", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.description} exited with {self.proc.returncode} before answering:\n"
                    f"{self.log_tail()}"
                )
            if answers(self.host, self.port, path):
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"{self.description} did not answer on {self.base_url} within {timeout:.0f}s:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; only the process we started."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if not self.keep_log:
            try:
                self.log_path.unlink()
            except OSError:
                pass

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_process(
    cmd: Sequence[str],
    port: int,
    *,
    host: str = HOST,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    ready_path: str = "/",
    timeout: float = 30.0,
    description: str | None = None,
    log_path: str | os.PathLike[str] | None = None,
) -> ServerProcess:
    """Run ``cmd`` (which must serve HTTP on host:port) and wait until it answers.

    Its output goes to ``log_path`` when given (appended, kept after stop()), else to a
    temporary file removed on stop().
    """
    if log_path is not None:
        log = open(log_path, "ab")  # noqa: SIM115 - closed below, the child keeps its copy
    else:
        log = tempfile.NamedTemporaryFile("wb", prefix="bench-server-", suffix=".log", delete=False)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    try:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd or REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    server = ServerProcess(
        proc,
        host,
        port,
        Path(log.name),
        description or " ".join(cmd[:4]),
        keep_log=log_path is not None,
    )
    try:
        server.wait_ready(ready_path, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def start_uvicorn(
    app: str,
    *,
    port: int | None = None,
    host: str = HOST,
    factory: bool = False,
    env: dict[str, str] | None = None,
    app_dir: str | os.PathLike[str] = REPO_ROOT,
    log_level: str = "warning",
    loop: str | None = None,
    http: str | None = None,
    extra_args: Sequence[str] = (),
    ready_path: str = "/",
    timeout: float = 30.0,
) -> ServerProcess:
    """One uvicorn worker serving ``app`` ("module:attr") on a free loopback port.

    The access log is off; ``loop``/``http`` default to uvloop/httptools when installed.
    ``description`` of the result says which were used (for figure notes).
    """
    port = port or free_port(host)
    loop = loop or best_loop()
    http = http or best_http()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        log_level,
        "--loop",
        loop,
        "--http",
        http,
        "--app-dir",
        str(app_dir),
        *(["--factory"] if factory else []),
        *extra_args,
    ]
    return start_process(
        cmd,
        port,
        host=host,
        env=env,
        cwd=app_dir,
        ready_path=ready_path,
        timeout=timeout,
        description=f"uvicorn 1 worker {loop}+{http}",
    )
