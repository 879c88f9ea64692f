"""``python -m lab.graph serve --config tenant.yaml``: serve a simulated tenant until told to stop.

Prints one line ``FLEETFIX-TENANT-READY {json}`` (:meth:`lab.graph.server.TenantInfo.to_dict`) once
the listener is up, then serves until stdin closes, SIGTERM or Ctrl+C.  The config is a
:class:`lab.graph.config.TenantConfig` as JSON or YAML.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path

import yaml

from lab.graph.config import TenantConfig
from lab.graph.runtime import READY_PREFIX
from lab.graph.server import TenantServer


def load_tenant(path: Path) -> TenantConfig:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        return TenantConfig.model_validate(yaml.safe_load(text))
    return TenantConfig.model_validate_json(text)


async def serve(config: TenantConfig, directory: Path) -> None:
    server = TenantServer(config, directory)
    info = await server.start()
    print(READY_PREFIX + json.dumps(info.to_dict()), flush=True)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    # A daemon thread waits for stdin to close (the parent went away or asked us to stop).
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stopped.set)), daemon=True
    ).start()
    await stopped.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.graph", description="fleetfix simulated Intune tenant"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve a tenant until stdin closes or SIGTERM")
    serve_parser.add_argument("--config", type=Path, required=True, help="TenantConfig as JSON or YAML")
    serve_parser.add_argument("--directory", type=Path, help="where to write the CA bundle and server key")
    serve_parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    directory = args.directory or Path(tempfile.mkdtemp(prefix="fleetfix-tenant-"))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(load_tenant(args.config), directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
