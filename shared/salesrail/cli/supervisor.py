"""Runs the five services as child processes: prefixed logs, restarts, clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field

import httpx
from rich.console import Console
from rich.text import Text

from salesrail.cluster import ServiceSpec

_COLOURS = ("cyan", "green", "magenta", "yellow", "blue", "red")


@dataclass
class Child:
    spec: ServiceSpec
    colour: str
    port: int
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    pump: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Supervisor:
    def __init__(
        self, services: tuple[ServiceSpec, ...], *, env: dict[str, str], console: Console
    ) -> None:
        self.env = env
        self.console = console
        self.stopping = False
        self.children = [
            Child(spec, _COLOURS[i % len(_COLOURS)], _port_of(spec, env))
            for i, spec in enumerate(services)
        ]
        self._width = max(len(s.name) for s in services)

    async def start_all(self) -> None:
        for child in self.children:
            await self._spawn(child)

    async def _spawn(self, child: Child) -> None:
        child.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            child.spec.module,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
        )
        child.pump = asyncio.create_task(self._pump(child))

    async def _pump(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        prefix = Text(f"{child.spec.name:<{self._width}} | ", style=child.colour)
        async for raw in child.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.console.print(prefix + Text(line), soft_wrap=True, highlight=False)
        code = await child.process.wait()
        if not self.stopping:
            child.restarts += 1
            delay = min(2**child.restarts, 30)
            self.console.print(
                prefix + Text(f"exited with {code}; restarting in {delay}s", style="bold red")
            )
            await asyncio.sleep(delay)
            if not self.stopping:
                await self._spawn(child)

    async def wait_ready(self, timeout_s: float) -> dict[str, bool]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        ready = {c.spec.name: False for c in self.children}
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not all(ready.values()) and asyncio.get_running_loop().time() < deadline:
                for child in self.children:
                    if not ready[child.spec.name]:
                        ready[child.spec.name] = await _is_ready(client, child.url)
                await asyncio.sleep(0.2)
        return ready

    async def stop_all(self, grace_s: float = 20.0) -> None:
        self.stopping = True
        running = [c for c in self.children if c.process and c.process.returncode is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        for child in running:
            assert child.process is not None
            try:
                await asyncio.wait_for(child.process.wait(), grace_s)
            except TimeoutError:
                child.process.kill()
                await child.process.wait()
        for child in self.children:
            if child.pump is not None:
                await asyncio.gather(child.pump, return_exceptions=True)


async def _is_ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(f"{url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


def _port_of(spec: ServiceSpec, env: dict[str, str]) -> int:
    return int(env.get(f"{spec.env_prefix}PORT") or spec.port)


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
