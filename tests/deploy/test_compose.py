"""docker-compose.yml (and deploy/compose.signing.yml) read as Compose reads them, checked without a
Docker engine: every command is a real ``fleetfix`` command, dependencies wait on health checks
that exist, volumes, networks and secrets are declared and consistent, no secret value is written
in, the services' environment is valid fleetfix settings, and one image serves every role."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli.worker import QUEUE_KINDS, queue_names
from orchestrator.config import Settings, load_settings
from orchestrator.credentials.masterkey import decode_master_key
from tests.clirun import FLEETFIX, Cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SIGNING = ROOT / "deploy" / "compose.signing.yml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
IMAGE = "fleetfix:latest"
THIRD_PARTY = {"postgres", "redis"}
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


# --- reading the files the way Compose does ---------------------------------------------------


def interpolate(value: Any, seen: set[str]) -> Any:
    """Compose's interpolation with an empty environment: ``${VAR:-default}`` gives the default,
    ``$$`` a literal ``$``; the names met are collected in ``seen``."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            seen.add(match["name"])
            return match["default"] or ""

        return _VARIABLE.sub(replace, value)
    if isinstance(value, list):
        return [interpolate(item, seen) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, seen) for key, item in value.items()}
    return value


def load(path: Path) -> tuple[dict[str, Any], set[str]]:
    seen: set[str] = set()
    document = yaml.safe_load(path.read_text(encoding="utf-8"))  # resolves YAML anchors and merge keys
    return interpolate(document, seen), seen


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)[0]


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def fleetfix_services(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in services.items():
        if service.get("image") == IMAGE:
            yield name, service


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def profiles(service: dict[str, Any]) -> frozenset[str]:
    return frozenset(service.get("profiles") or ())


# --- commands -------------------------------------------------------------------------------------


def fleetfix_argvs(name: str, service: dict[str, Any]) -> list[list[str]]:
    """The fleetfix command lines a service runs: its command, or the ``exec fleetfix ...`` of a
    shell entrypoint, plus its health check when that is a fleetfix command."""
    entrypoint = service.get("entrypoint")
    command = service.get("command") or []
    found = []
    if entrypoint is None:
        found.append(list(command))
    elif entrypoint == ["sh", "-c"]:
        (script,) = command
        parts = [shlex.split(part) for part in script.split("&&")]
        assert parts[-1][:2] == ["exec", "fleetfix"], f"{name}: the shell must exec fleetfix last: {script}"
        found.append(parts[-1][2:])
    else:
        assert entrypoint == ["celery"], f"{name}: unexpected entrypoint {entrypoint}"
    test = (service.get("healthcheck") or {}).get("test") or []
    if test[:2] == ["CMD", "fleetfix"]:
        found.append(test[2:])
    return found


def test_every_command_is_a_real_fleetfix_command(services: dict[str, dict[str, Any]], cli: Cli) -> None:
    checked = set()
    for name, service in fleetfix_services(services):
        for argv in fleetfix_argvs(name, service):
            if tuple(argv) in checked:
                continue
            checked.add(tuple(argv))
            # --help after the options: the parser still rejects an unknown command or option
            result = cli.run(*argv, *([] if argv == ["--help"] else ["--help"]))
            assert result.returncode == 0, f"{name}: fleetfix {' '.join(argv)}\n{result.stderr}"
    assert {("worker", "--queues", "winrm", "--name", "winrm@%h"), ("beat",), ("db", "upgrade")} <= checked


def test_the_lab_scenario_exists(services: dict[str, dict[str, Any]], cli: Cli) -> None:
    (argv,) = [a for a in fleetfix_argvs("lab", services["lab"]) if a[:2] == ["lab", "up"]]
    scenario = argv[argv.index("--scenario") + 1]
    known = {entry["name"] for entry in cli.json("lab", "scenarios")["scenarios"]}
    assert scenario in known
    examples = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert examples["LAB_SCENARIO"] in known


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_workers_serve_every_queue_and_their_health_checks_ping_them(
    services: dict[str, dict[str, Any]],
) -> None:
    served: dict[str, set[str]] = {"default": set(), "lab": set()}
    for name, service in fleetfix_services(services):
        command = service.get("command") or []
        if command[:1] != ["worker"]:
            continue
        prefix = environment(service).get("FLEETFIX_CELERY__QUEUE_PREFIX", "fleetfix")
        queues = option(command, "--queues")
        served["lab" if "lab" in profiles(service) else "default"].update(
            queue_names(None if queues is None else [queues], prefix)
        )
        node = option(command, "--name")
        assert node is not None
        assert node.endswith("@%h"), f"{name}: a node name per container"
        ping = " ".join(service["healthcheck"]["test"])
        assert f"--destination {node.split('@')[0]}@$HOSTNAME" in ping, f"{name}: {ping}"
        assert "celery -A tasks.app:app inspect ping" in ping
    assert served["default"] == {f"fleetfix.{kind}" for kind in QUEUE_KINDS}
    # the options the health checks give celery exist
    celery = str(Path(FLEETFIX).with_name("celery"))
    usage = subprocess.run(
        [celery, "inspect", "ping", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--destination" in usage
    assert "--timeout" in usage
    assert served["lab"] == {f"fleetfix-lab.{kind}" for kind in QUEUE_KINDS}


def test_flower_runs_fleetfix_app_from_the_image(services: dict[str, dict[str, Any]]) -> None:
    flower = services["flower"]
    assert flower["entrypoint"] == ["celery"]
    assert flower["command"][:3] == ["-A", "tasks.app:app", "flower"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("flower") for requirement in extras["flower"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip wheel .*\[[a-z,]*flower[a-z,]*\]", dockerfile)
    assert re.search(r"pip install .*fleetfix\[[a-z,]*flower[a-z,]*\]", dockerfile)
    # the login comes from the config secret: never --basic-auth on the command line
    assert not any(arg.startswith(("--basic", "--auth")) for arg in flower["command"])
    assert "--conf=/run/secrets/flower_config" in flower["command"]


# --- dependencies, health checks ----------------------------------------------------------------


def test_dependencies_wait_on_health_checks_that_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            dependency = services[target]
            condition = rule["condition"]
            if condition == "service_healthy":
                assert dependency.get("healthcheck"), f"{name} waits for {target}'s health, it has no check"
            elif condition == "service_completed_successfully":
                assert dependency.get("restart") == "no", f"{target} is not a one-shot"
            else:
                assert condition == "service_started", condition
            # a service of the default profile cannot need one that only runs in a profile
            if not profiles(service):
                assert not profiles(dependency), f"{name} needs {target} of profile {profiles(dependency)}"


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if service.get("restart") == "no":
            continue
        check = service.get("healthcheck")
        assert check, f"{name} runs for good without a health check"
        assert check.get("test"), name


def test_one_shots_stop_for_good(services: dict[str, dict[str, Any]]) -> None:
    for name in ("migrate", "lab-migrate"):
        assert services[name]["command"] == ["db", "upgrade"]
        assert services[name]["restart"] == "no"
    assert services["fleetfix"]["restart"] == "no"
    assert profiles(services["fleetfix"]) == {"cli"}


# --- volumes, networks, ports -------------------------------------------------------------------


def mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            yield volume["source"], volume["target"]
        else:
            source, target = volume.split(":")[:2]
            yield source, target


def test_volumes_are_declared_and_bind_mounts_exist(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for source, target in mounts(service):
            if source.startswith(("./", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} is not in the repository"
                assert "secrets" not in Path(source).parts, (
                    f"{name}: secrets go through `secrets:`, not a mount"
                )
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
            assert target.startswith("/"), target
    assert used == declared, f"declared but unused: {declared - used}"


def test_named_volumes_start_writable_by_the_image_user(services: dict[str, dict[str, Any]]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    owned = re.search(r"chown fleetfix:fleetfix ([^\n&\\]+)", dockerfile)
    assert owned is not None
    owned_paths = set(owned.group(1).split())
    for name, service in fleetfix_services(services):
        for source, target in mounts(service):
            if not source.startswith(("./", "/")):
                assert target in owned_paths, f"{name}: {target} would be a root-owned volume"
    assert re.search(r"^USER fleetfix$", dockerfile, re.MULTILINE)
    assert re.search(r"useradd --uid 10001", dockerfile)


def test_networks_keep_the_database_and_broker_private(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    networks = compose["networks"]
    assert networks["backend"]["internal"] is True
    for name, service in services.items():
        if "network_mode" in service:
            mode = service["network_mode"]
            assert mode.startswith("service:"), mode
            host = services[mode.removeprefix("service:")]
            assert "network_mode" not in host
            assert profiles(host) <= profiles(service)
            assert "networks" not in service, name
            assert "ports" not in service, name
            continue
        for network in service.get("networks") or []:
            assert network in networks, f"{name}: network {network} is not declared"
    for name in ("postgres", "redis"):
        assert services[name]["networks"] == ["backend"]
        assert "ports" not in services[name]
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert list(published) == ["flower"]
    assert all(port.startswith("127.0.0.1:") for port in published["flower"])


# --- secrets ------------------------------------------------------------------------------------

_SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|PASS|_KEY|KEY_", re.IGNORECASE)


def secret_paths(text: str) -> set[str]:
    return set(re.findall(r"/run/secrets/([A-Za-z0-9_.-]+)", text))


def check_no_secret_values(name: str, service: dict[str, Any], declared: dict[str, Any]) -> None:
    granted = {item if isinstance(item, str) else item["source"] for item in service.get("secrets") or []}
    assert granted <= set(declared), f"{name}: undeclared secrets {granted - set(declared)}"
    for key, value in environment(service).items():
        if _SECRETISH.search(key):
            assert key.endswith("FILE"), f"{name}: {key} holds a secret inline"
            assert value.startswith("/run/secrets/"), f"{name}: {key} = {value} is not a mounted secret"
        assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), f"{name}: {key} has a password in a URL"
    text = json.dumps(service)
    for path in secret_paths(text):
        assert path in granted, f"{name} reads /run/secrets/{path} but is not granted it"
    for word in ("--requirepass", "--basic-auth", "--basic_auth", "password="):
        assert word not in text, f"{name}: {word}"


def test_no_secret_is_written_in(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = compose["secrets"]
    for name, service in services.items():
        check_no_secret_values(name, service, declared)
    for secret in declared.values():
        assert secret["file"].startswith("./deploy/secrets/"), secret
    # the secret files stay out of the repository
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/secrets"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert tracked.stdout.split() == ["deploy/secrets/README.md"]
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/deploy/secrets/*" in ignored
    assert "/.env" in ignored
    # Compose's variables (.env) are not secrets either
    for line in ENV_EXAMPLE.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            assert not _SECRETISH.search(line.split("=", 1)[0]), line


def test_every_compose_variable_has_a_default_and_is_documented() -> None:
    _document, seen = load(COMPOSE)
    text = COMPOSE.read_text()
    for name in seen:
        assert re.search(r"\$\{" + name + r":-[^}]+\}", text), f"${{{name}}} has no default"
    documented = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert seen == documented


# --- the image ----------------------------------------------------------------------------------


def test_one_image_serves_every_fleetfix_role(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service:
            assert service["build"] == ".", name
            assert service["image"] == IMAGE, name
        else:
            repository, _, tag = service["image"].partition(":")
            assert repository in THIRD_PARTY, f"{name}: {service['image']}"
            assert tag[:1].isdigit(), f"{name}: pin a version, not {tag!r}"
        assert service.get("user") in {None, "10001", "10001:10001"}, f"{name} runs as {service.get('user')}"
    assert (ROOT / "Dockerfile").is_file()


# --- the services' settings -----------------------------------------------------------------------


def setting_exists(variable: str) -> bool:
    """Whether FLEETFIX_A__B names a field (pydantic-settings ignores unknown variables silently)."""
    parts = variable.removeprefix("FLEETFIX_").lower().split("__")
    model: Any = Settings
    for part in parts:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        model = fields[part].annotation
    return True


@pytest.mark.parametrize(
    "name",
    [
        "worker",
        "worker-graph",
        "worker-control",
        "beat",
        "flower",
        "migrate",
        "lab-worker",
        "lab-beat",
        "lab-migrate",
    ],
)
def test_each_service_environment_is_valid_settings(
    services: dict[str, dict[str, Any]], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment(services[name])
    for variable in os.environ:
        if variable.startswith("FLEETFIX_"):
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)  # no fleetfix.toml here: the environment alone
    for variable, value in env.items():
        if variable.startswith("FLEETFIX_") and variable != "FLEETFIX_CONFIG":
            assert setting_exists(variable), f"{name}: {variable} is no fleetfix setting"
            monkeypatch.setenv(variable, value)
    settings = load_settings(None)
    if name == "flower":
        assert settings.store_url is None  # the broker only
    else:
        assert settings.store_url is not None
        assert settings.store_url.startswith("postgresql+psycopg://fleetfix@postgres:5432/")
    if name not in {"migrate", "lab-migrate"}:
        assert settings.broker_url == "redis://redis:6379/0"
    if name == "lab-beat":
        from orchestrator.playbook import load_playbooks  # noqa: PLC0415

        jobs = settings.schedule.jobs
        assert [job.kind for job in jobs] == ["sweep", "playbook"]
        # a scheduled playbook runs unattended only when its risk is none (or it is approved)
        playbook = load_playbooks(settings).get(jobs[1].playbook or "")
        assert playbook.risk.value == "none"


def test_production_services_read_the_mounted_config_and_the_master_key(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("worker", "worker-graph", "worker-control", "beat", "fleetfix"):
        env = environment(services[name])
        assert env["FLEETFIX_CONFIG"] == "/etc/fleetfix/fleetfix.toml"
        assert ("./deploy/config", "/etc/fleetfix") in set(mounts(services[name]))
        assert env["FLEETFIX_MASTER_KEY_FILE"] == "/run/secrets/fleetfix_master_key"
        assert env["FLEETFIX_DATA_DIR"] == "/var/lib/fleetfix"
    for name in ("lab-worker", "lab-beat"):
        env = environment(services[name])
        # the lab's own vault: no master key from outside, the data directory in the lab volume
        assert "FLEETFIX_MASTER_KEY_FILE" not in env
        assert "FLEETFIX_MASTER_KEY" not in env
        assert (env["FLEETFIX_CONFIG"], env["FLEETFIX_DATA_DIR"]) == ("/lab/fleetfix.toml", "/lab/data")
        assert services[name]["network_mode"] == "service:lab"


# --- the signing override -----------------------------------------------------------------------


def test_the_signing_override_covers_every_service_that_sends_or_runs_tasks(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    override, _seen = load(SIGNING)
    covered = override["services"]
    assert set(covered) <= set(services)
    brokered = {
        name for name, service in fleetfix_services(services)
        if "FLEETFIX_BROKER_URL" in environment(service) and not profiles(service) - {"cli"}
    }  # fmt: skip
    assert brokered == set(covered), f"signing would be half on: {brokered ^ set(covered)}"
    for name, service in covered.items():
        env = environment(service)
        assert {variable for variable in env if variable.startswith("FLEETFIX_SIGNING__")} == {
            "FLEETFIX_SIGNING__KEY_FILE",
            "FLEETFIX_SIGNING__CERTIFICATE",
            "FLEETFIX_SIGNING__CERT_STORE",
        }
        assert all(setting_exists(variable) for variable in env)
        check_no_secret_values(name, service, {**compose["secrets"], **override["secrets"]})
        for source, _target in mounts(service):
            assert source == "./deploy/secrets/trusted", source  # public certificates, read-only


# --- make-secrets.sh ----------------------------------------------------------------------------


def test_make_secrets_writes_private_files_once(tmp_path: Path) -> None:
    target = tmp_path / "secrets"
    first = subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    files = {path.name: path for path in target.iterdir()}
    assert set(files) == {"master.key", "postgres_password", "pgpass", "flowerconfig.py"}
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        if os.geteuid() == 0:
            assert (path.stat().st_uid, path.stat().st_gid) == (10001, 10001)
    assert len(decode_master_key(files["master.key"].read_text(), source="test")) == 32
    password = files["postgres_password"].read_text()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password)
    assert files["pgpass"].read_text() == f"postgres:5432:*:fleetfix:{password}\n"
    flower: dict[str, Any] = {}
    exec(files["flowerconfig.py"].read_text(), flower)  # what Flower does with --conf
    (login,) = flower["basic_auth"]
    assert re.fullmatch(r"admin:[A-Za-z0-9]{24}", login)
    before = {name: path.read_bytes() for name, path in files.items()}
    again = subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0
    assert {name: path.read_bytes() for name, path in files.items()} == before
    assert again.stdout.count("kept") == 4
