"""The Celery app, built from fleetfix's settings.

``make_app(settings)`` is what ``fleetfix worker``, the Celery executor and the distributed sweep use;
the module-level ``app`` (``celery -A tasks.app worker``) is the same app for settings found the usual
way (``FLEETFIX_CONFIG``, ``./fleetfix.toml``, ``FLEETFIX_*``). It is built on first access, so
importing this module never reads a config.

Every setting carries the reason for its value; the background (and the measurements behind it) is
in the design's Celery notes and docs/celery.md. In short: delivery is at least once, and the store's
ledgers (``run_targets`` with its attempt fencing, the action journal, ``collected_hosts``) make a
duplicate harmless, so the settings aim at *never losing* a batch and accept the odd duplicate.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from celery import Celery

from orchestrator.config import CelerySettings, Settings, load_settings
from orchestrator.engine.celery_executor import APPLY_BATCH_TASK, APPLY_GRAPH_BATCH_TASK
from orchestrator.errors import ConfigError
from orchestrator.sweep.distributed import COLLECT_BATCH_TASK

# The batch tasks' names belong to the engine and the sweep, which send them; the controllers' here.
TASK_APPLY_BATCH = APPLY_BATCH_TASK
TASK_APPLY_GRAPH_BATCH = APPLY_GRAPH_BATCH_TASK
TASK_COLLECT_BATCH = COLLECT_BATCH_TASK
TASK_ADVANCE_RUN = "fleetfix.runs.advance_run"
TASK_SCHEDULED_SWEEP = "fleetfix.sweeps.scheduled_sweep"

# Modules whose ``register(app)`` adds their tasks; tasks.beat belongs to the schedule and is
# optional (it registers itself the same way when it is there).
TASK_MODULES = ("tasks.runs", "tasks.sweeps")
OPTIONAL_TASK_MODULES = ("tasks.beat",)

_SETTINGS_ATTRIBUTE = "fleetfix_settings"


@dataclass(frozen=True)
class Queues:
    """The three queues, named from ``[celery] queue_prefix``.

    WinRM batches, Graph (tenant) batches and controller tasks go to different queues so that each
    can have its own workers: a long sweep cannot starve a controller, and Graph work (throttled
    tenant-wide) never occupies the slots WinRM batches need.
    """

    winrm: str
    graph: str
    control: str

    @classmethod
    def of(cls, celery: CelerySettings) -> Queues:
        prefix = celery.queue_prefix
        return cls(winrm=f"{prefix}.winrm", graph=f"{prefix}.graph", control=f"{prefix}.control")

    def all(self) -> tuple[str, str, str]:
        return (self.winrm, self.graph, self.control)


def broker_kind(url: str) -> str:
    """``redis`` or ``amqp`` (RabbitMQ), from the broker URL's scheme; anything else is refused."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in {"redis", "rediss", "redis+socket"}:
        return "redis"
    if scheme in {"amqp", "amqps", "pyamqp"}:
        return "amqp"
    # the URL may carry a password: only its scheme is repeated
    raise ConfigError(
        f"unsupported broker scheme {scheme or '(none)'!r}: use redis://, rediss:// or amqp://",
        field="broker_url",
    )


def transport_options(settings: Settings, *, concurrency: int) -> dict[str, Any]:
    """Broker transport options for the configured broker (pure; unit-tested)."""
    celery = settings.celery
    assert settings.broker_url is not None
    if broker_kind(settings.broker_url) == "amqp":
        # RabbitMQ hands an unacknowledged message back as soon as the consumer's connection dies
        # (no visibility timeout to wait for); publisher confirms make a publish return only once
        # the broker has the message, so a batch the coordinator thinks it sent was really sent.
        return {"confirm_publish": True}
    return {
        # A batch not acknowledged within this time is handed to another worker. It must exceed the
        # longest batch (hard time limit) plus the longest retry delay, or a batch still running is
        # delivered a second time (harmless through the ledger, but wasted work).
        "visibility_timeout": celery.visibility_timeout_s,
        # kombu 5.7 looks for expired unacknowledged messages every interval x throttle seconds
        # (default 10 x 10 = 100 s); throttle 1 makes the interval the only knob.
        "unacked_restore_interval": celery.unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
        # kombu's default pool of 10 connections is too small once a worker process uses threads:
        # acknowledgements then fail with MaxConnectionsError and messages run again (measured).
        "max_connections": max(10, 2 * concurrency + 8),
        # A dead broker connection is noticed in seconds rather than at the OS's TCP timeout.
        "socket_timeout": 30,
        "socket_connect_timeout": 10,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }


def default_concurrency(settings: Settings) -> int:
    """Batches one worker runs at once: ``[celery] worker_concurrency``, else the CPUs."""
    return settings.celery.worker_concurrency or max(1, os.cpu_count() or 1)


def require_shared_store(settings: Settings) -> None:
    """Refuse SQLite with Celery: the run (or sweep) is shared by every worker machine, and a SQLite
    file lives on one of them. An InputError naming ``store_url`` (exit 2)."""
    if settings.uses_sqlite:
        raise ConfigError(
            "Celery workers share the store: set store_url to PostgreSQL (postgresql+psycopg://...), "
            "SQLite is a single machine's file",
            field="store_url",
        )


def make_app(settings: Settings, *, concurrency: int | None = None) -> Celery:
    """The Celery app for ``settings``; ConfigError without a broker URL.

    ``concurrency`` (the worker's ``-c``) sizes the broker connection pool; producers leave it out.
    """
    if not settings.broker_url:
        raise ConfigError(
            "no broker configured: set broker_url (redis://... or amqp://...) to use Celery workers",
            field="broker_url",
        )
    if broker_kind(settings.broker_url) == "redis" and importlib.util.find_spec("redis") is None:
        raise ConfigError(
            "broker_url is a Redis URL but the redis package is missing: install fleetfix[redis]",
            field="broker_url",
        )
    celery = settings.celery
    queues = Queues.of(celery)
    pool = concurrency or default_concurrency(settings)
    app = Celery("fleetfix", broker=settings.broker_url, backend=celery.result_backend, set_as_current=False)
    app.conf.update(
        # --- serialization: JSON only. Pickle would be code execution for anyone who can write to
        # the broker; messages carry names and references, never secrets, so JSON is enough.
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # --- delivery: never lose a batch; duplicates are made harmless by the store's ledgers.
        # Acknowledge after the batch ran, not before: a worker dying mid-batch leaves the message
        # unacknowledged, and the broker gives it to another worker.
        task_acks_late=True,
        # Acks-late alone still acknowledges when a pool process is killed (OOM, SIGKILL): requeue.
        task_reject_on_worker_lost=True,
        # ... and in 5.7 re-send such a batch as a retry instead, counted against max_retries, so a
        # batch that kills its process every time stops after retry_max attempts (no endless loop).
        task_retry_on_worker_lost=True,
        # A batch that failed (its retries used up) or hit the hard time limit is acknowledged:
        # re-running it at once would fail again. Its unfinished targets stay pending in the store,
        # and the coordinator re-sends them (redispatch) or takes them over when their leases expire.
        task_acks_on_failure=True,
        task_acks_on_timeout=True,
        # Reserve only the batch a process is running: a prefetched batch waiting behind a long one
        # can outlive the visibility timeout and run twice, and starves idle workers.
        worker_prefetch_multiplier=1,
        # A broker connection lost mid-batch: let the batch finish and write its outcomes. Cancelling
        # it (the 6.0 default) would SIGTERM the process in the middle of changing hosts, leaving
        # half-done targets to take over; a second delivery of a finished batch does nothing.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # On a warm shutdown, running batches get this long to finish before they are requeued.
        worker_soft_shutdown_timeout=60.0,
        worker_enable_soft_shutdown_on_idle=True,
        # Soft and hard limits on every task (controllers override them, see tasks.runs/sweeps).
        # The soft limit stops a batch from starting hosts and records what it finished; the hard
        # limit kills the process (only the prefork pool enforces either).
        task_soft_time_limit=celery.soft_time_limit_s,
        task_time_limit=celery.time_limit_s,
        # WinRM and HTTP client libraries keep memory per host; recycle pool processes now and then.
        worker_max_tasks_per_child=200,
        # Workers and coordinators may start before the broker: keep trying instead of exiting.
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        # A publish while the broker is away is retried for about a minute; after that the
        # coordinator's own re-sending takes over (it never assumes a batch arrived).
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 10,
            "interval_start": 0.5,
            "interval_step": 1.0,
            "interval_max": 10.0,
        },
        broker_transport_options=transport_options(settings, concurrency=pool),
        broker_pool_limit=max(10, pool + 2),
        # Outcomes go to the store (run_targets, the journal, collected_hosts), not to a result
        # backend: nobody waits on an AsyncResult, and 10k result keys would only need expiring.
        task_ignore_result=celery.result_backend is None,
        result_expires=7 * 86400,
        result_extended=False,  # would copy arguments into the backend; they are in the store anyway
        # STARTED is only visible with a result backend (for Flower and the like); cheap when off.
        task_track_started=True,
        # Per-task events multiply broker traffic during a fan-out; progress is read from the store.
        task_send_sent_event=False,
        worker_send_task_events=False,
        # Worker clocks judge `expires` (the change window's end): keep them on UTC and NTP.
        timezone="UTC",
        enable_utc=True,
        # Separate queues, routed by task name (tenant batches have a task name of their own).
        # A task without a route goes to the control queue, not to a "celery" queue nobody serves.
        task_default_queue=queues.control,
        task_create_missing_queues=True,
        task_routes={
            TASK_APPLY_BATCH: {"queue": queues.winrm},
            TASK_APPLY_GRAPH_BATCH: {"queue": queues.graph},
            TASK_COLLECT_BATCH: {"queue": queues.winrm},
            TASK_ADVANCE_RUN: {"queue": queues.control},
            TASK_SCHEDULED_SWEEP: {"queue": queues.control},
        },
        # fleetfix's own logging (redacting, on the current stderr) stays in charge: no root logger
        # takeover, and no stdout/stderr redirection into the logger (its handler writes to stderr).
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    setattr(app, _SETTINGS_ATTRIBUTE, settings)
    for name in TASK_MODULES:
        importlib.import_module(name).register(app)
    for name in OPTIONAL_TASK_MODULES:
        if importlib.util.find_spec(name) is not None:
            module = importlib.import_module(name)
            register = getattr(module, "register", None)
            if callable(register):
                register(app)
    _configure_signing(app, settings)
    return app


def _configure_signing(app: Celery, settings: Settings) -> None:
    """The signing hook (tasks/signing.py), last: it may switch the serializers."""
    from tasks.signing import configure_signing  # noqa: PLC0415

    configure_signing(app, settings)


def settings_of(app: Any) -> Settings:
    """The fleetfix settings ``app`` was built from."""
    settings = getattr(app, _SETTINGS_ATTRIBUTE, None)
    if not isinstance(settings, Settings):
        raise ConfigError("this Celery app was not built by tasks.app.make_app", field="broker_url")
    return settings


def queues_of(app: Any) -> Queues:
    return Queues.of(settings_of(app).celery)


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    """``tasks.app.app``: built on first access from the settings found the usual way."""
    global _app  # noqa: PLW0603 (one app per process, built once)
    if name in {"app", "celery"}:
        if _app is None:
            _app = make_app(load_settings())
        return _app
    raise AttributeError(name)


__all__ = [
    "TASK_ADVANCE_RUN",
    "TASK_APPLY_BATCH",
    "TASK_APPLY_GRAPH_BATCH",
    "TASK_COLLECT_BATCH",
    "TASK_SCHEDULED_SWEEP",
    "Queues",
    "broker_kind",
    "default_concurrency",
    "make_app",
    "queues_of",
    "require_shared_store",
    "settings_of",
    "transport_options",
]
