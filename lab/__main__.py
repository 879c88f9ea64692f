"""``python -m lab <command>``: serve a lab until told to stop.

* ``serve --config fleet.yaml``: the WinRM fleet of a :class:`lab.config.FleetConfig`; ready line
  ``FLEETFIX-LAB-READY {json}`` (:meth:`lab.server.LabInfo.to_dict`);
* ``tenant --config tenant.yaml``: the Intune tenant of a :class:`lab.graph.config.TenantConfig`;
  ready line ``FLEETFIX-TENANT-READY {json}`` (:meth:`lab.graph.server.TenantInfo.to_dict`);
* ``estate --scenario NAME|FILE --dir DIR``: a whole scenario (fleet, tenant, CRL server) as
  ``fleetfix lab up`` runs it; ready line ``FLEETFIX-ESTATE-READY {json}``.

Each serves until stdin closes, SIGTERM or Ctrl+C (``--detached``: signals only).  Configs are JSON
or YAML.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from lab.config import FleetConfig
from lab.runner import Server, ready_line, serve_until_stopped

M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, model: type[M]) -> M:
    """A config model from a JSON or YAML file (by suffix)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        return model.model_validate(yaml.safe_load(text))
    return model.model_validate_json(text)


def load_fleet(path: Path) -> FleetConfig:
    return load_model(path, FleetConfig)


def _fleet_server(args: argparse.Namespace) -> tuple[Server[Any], Callable[[Any], str]]:
    from lab.runtime import READY_PREFIX  # noqa: PLC0415 (each command imports only its own server)
    from lab.scripts import default_registry  # noqa: PLC0415
    from lab.server import FleetServer  # noqa: PLC0415

    server = FleetServer(load_fleet(args.config), _directory(args), default_registry())
    return server, lambda info: ready_line(READY_PREFIX, info.to_dict())


def _tenant_server(args: argparse.Namespace) -> tuple[Server[Any], Callable[[Any], str]]:
    from lab.graph.config import TenantConfig  # noqa: PLC0415
    from lab.graph.runtime import READY_PREFIX  # noqa: PLC0415
    from lab.graph.server import TenantServer  # noqa: PLC0415

    server = TenantServer(load_model(args.config, TenantConfig), _directory(args))
    return server, lambda info: ready_line(READY_PREFIX, info.to_dict())


def _estate_server(args: argparse.Namespace) -> tuple[Server[Any], Callable[[Any], str]]:
    from lab.estate.runtime import READY_PREFIX, EstateServer  # noqa: PLC0415
    from lab.scenarios import load_scenario  # noqa: PLC0415

    scenario = load_scenario(args.scenario, hosts=args.hosts)
    server = EstateServer(scenario, _directory(args))
    return server, lambda info: ready_line(READY_PREFIX, info.to_dict())


def _directory(args: argparse.Namespace) -> Path:
    return Path(args.directory) if args.directory else Path(tempfile.mkdtemp(prefix="fleetfix-lab-"))


COMMANDS = {"serve": _fleet_server, "tenant": _tenant_server, "estate": _estate_server}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m lab", description="fleetfix simulated fleet")
    commands = root.add_subparsers(dest="command", required=True)
    served = (("serve", "a WinRM fleet (FleetConfig)"), ("tenant", "an Intune tenant (TenantConfig)"))
    for name, what in served:
        sub = commands.add_parser(name, help=f"serve {what} until stdin closes or SIGTERM")
        sub.add_argument("--config", type=Path, required=True, help="the config as JSON or YAML")
        _common(sub)
    estate = commands.add_parser("estate", help="serve a scenario: fleet, tenant, CRL server, control API")
    estate.add_argument("--scenario", required=True, help="built-in scenario name or YAML file")
    estate.add_argument("--hosts", type=int, help="number of endpoints (overrides the scenario)")
    _common(estate)
    return root


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--directory", "--dir", type=Path, help="where to write certificates and state")
    sub.add_argument("--detached", action="store_true", help="stop on signals only, not when stdin closes")
    sub.add_argument("--log-level", default="WARNING")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    server, announce = COMMANDS[args.command](args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_stopped(server, announce, watch_stdin=not args.detached))
    return 0


if __name__ == "__main__":
    sys.exit(main())
