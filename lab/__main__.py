"""``python -m lab serve --config fleet.json``: serve a simulated fleet until told to stop.

Prints one line ``FLEETFIX-LAB-READY {json}`` (see :meth:`lab.server.LabInfo.to_dict`) once every
listener is up, then serves until stdin is closed, SIGTERM or Ctrl+C.  The config is a
:class:`lab.config.FleetConfig` as JSON or YAML.
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

from lab.config import FleetConfig
from lab.runtime import READY_PREFIX
from lab.scripts import default_registry
from lab.server import FleetServer


def load_fleet(path: Path) -> FleetConfig:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        return FleetConfig.model_validate(yaml.safe_load(text))
    return FleetConfig.model_validate_json(text)


async def serve(fleet: FleetConfig, directory: Path) -> None:
    server = FleetServer(fleet, directory, default_registry())
    info = await server.start()
    print(READY_PREFIX + json.dumps(info.to_dict()), flush=True)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    # stdin closing (the parent went away or asked us to stop) also ends the lab.  A daemon
    # thread, not the default executor: asyncio.run() would wait for a blocked read on exit.
    threading.Thread(target=_wait_for_eof, args=(loop, stopped), daemon=True).start()
    await stopped.wait()
    await server.stop()


def _wait_for_eof(loop: asyncio.AbstractEventLoop, stopped: asyncio.Event) -> None:
    sys.stdin.read()
    loop.call_soon_threadsafe(stopped.set)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description="fleetfix simulated fleet")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve a fleet until stdin closes or SIGTERM")
    serve_parser.add_argument("--config", type=Path, required=True, help="FleetConfig as JSON or YAML")
    serve_parser.add_argument("--directory", type=Path, help="where to write the CA bundle and host keys")
    serve_parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    directory = args.directory or Path(tempfile.mkdtemp(prefix="fleetfix-lab-"))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(load_fleet(args.config), directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
