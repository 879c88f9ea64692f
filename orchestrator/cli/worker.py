"""``fleetfix worker``: a Celery worker on the configured broker, serving fleetfix's queues.

The pool is **prefork**, always: Celery enforces soft and hard time limits only in the prefork pool
(the threads pool has none, gevent none that works with blocking WinRM calls), a pool process that
dies (OOM, a crash in a native library) takes only its own batch down and is replaced, and
``task_reject_on_worker_lost`` / ``task_retry_on_worker_lost`` bring that batch back. Parallelism
*within* a batch comes from a thread pool in the task (pypsrp blocks), so ``--concurrency`` counts
batches, not hosts: hosts in flight = concurrency x the run's ``--concurrency``.

Refuses to start without ``broker_url`` and on a SQLite store (exit 2): workers on several machines
share the runs, and a SQLite file lives on one of them.
"""

from __future__ import annotations

import os
import socket
from typing import Annotated

import typer

from orchestrator.cli.common import app_state, command, stderr
from orchestrator.errors import InputError
from orchestrator.logs import configure_logging

QUEUE_KINDS = ("winrm", "graph", "control")


def queue_names(requested: list[str] | None, prefix: str) -> list[str]:
    """``--queues`` as queue names: kinds (``winrm``, ``graph``, ``control``, comma-separated or
    repeated) become ``PREFIX.KIND``; full names of fleetfix's queues are kept. Default: all three."""
    names: list[str] = []
    for item in requested or list(QUEUE_KINDS):
        for part in (piece.strip() for piece in item.split(",")):
            if not part:
                continue
            if part in QUEUE_KINDS:
                names.append(f"{prefix}.{part}")
            elif part in {f"{prefix}.{kind}" for kind in QUEUE_KINDS}:
                names.append(part)
            else:
                raise InputError(
                    f"unknown queue {part!r}: use {', '.join(QUEUE_KINDS)} (or {prefix}.KIND)",
                    field="--queues",
                )
    return list(dict.fromkeys(names))


@command
def worker_command(
    ctx: typer.Context,
    *,
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", "-Q", help="queues to serve: winrm, graph, control (default: all)"),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, max=256, help="batches at once (default: CPUs)"),
    ] = None,
    loglevel: Annotated[
        str, typer.Option("--loglevel", "-l", help="DEBUG, INFO, WARNING or ERROR (worker log on stderr)")
    ] = "INFO",
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="node name (default: fleetfix-PID@HOST)")
    ] = None,
) -> None:
    """Run a Celery worker for fleetfix's batches (prefork pool; stop with Ctrl-C or SIGTERM)."""
    from tasks.app import broker_kind, default_concurrency, make_app, require_shared_store  # noqa: PLC0415

    settings = app_state(ctx).settings
    level = loglevel.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise InputError("must be DEBUG, INFO, WARNING or ERROR", field="--loglevel")
    if not settings.broker_url:
        raise InputError(
            "no broker configured: set broker_url in fleetfix.toml (or FLEETFIX_BROKER_URL), "
            "e.g. redis://127.0.0.1:6379/0 or amqp://user:password@host:5672//",
            field="broker_url",
        )
    broker_kind(settings.broker_url)
    require_shared_store(settings)
    # the worker's log (task received, succeeded, retried) on stderr through the redacting handler
    configure_logging(level if level != "CRITICAL" else "ERROR")
    from orchestrator.cli.sweep import _quiet_pypsrp  # noqa: PLC0415

    _quiet_pypsrp()
    size = concurrency or default_concurrency(settings)
    served = queue_names(queues, settings.celery.queue_prefix)
    app = make_app(settings, concurrency=size)
    node = name or f"fleetfix-{os.getpid()}@{socket.gethostname()}"
    stderr.print(f"fleetfix worker {node}: {size} processes on {', '.join(served)}", highlight=False)
    app.worker_main(
        [
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(size),
            "--queues",
            ",".join(served),
            "--loglevel",
            level,
            "--hostname",
            node,
            # no worker-to-worker chatter: nothing in fleetfix uses revokes or state sync between
            # workers, and it is broker traffic per worker
            "--without-gossip",
            "--without-mingle",
        ]
    )


__all__ = ["queue_names", "worker_command"]
