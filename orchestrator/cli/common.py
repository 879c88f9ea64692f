"""Conventions every ``fleetfix`` command follows.

* ``--output table|json``: tables (rich) for humans; with ``json`` stdout carries exactly one JSON
  document and nothing else, messages go to stderr.
* Exit codes: 0 success/compliant, 1 findings or failed hosts, 2 bad input, 3 internal or transport
  error (:class:`ExitCode`).
* Errors: one line on stderr naming file:line and field where there is one; with ``--output json``
  also ``{"error": {...}}`` on stdout so scripts can parse it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.config import Settings, load_settings
from orchestrator.errors import AuditChainError, FleetfixError, InputError, SelectorError
from orchestrator.logs import redact

log = logging.getLogger("fleetfix.cli")

P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1
    BAD_INPUT = 2
    ERROR = 3


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output", "-o", help="table for humans, json for scripts (stable schema)", case_sensitive=False
    ),
]


def _console_width() -> int | None:
    """Rich's own width on a terminal; piped output (a log, `| less -S`) is not folded to 80 columns."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 200


stdout = Console(soft_wrap=True, width=_console_width())
stderr = Console(stderr=True, soft_wrap=True)


@dataclass
class AppState:
    """What the top-level callback parsed; settings are loaded on first use so that ``--help`` and
    ``--version`` work without a valid config."""

    config_path: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path, **self.overrides)
        return self._settings


def app_state(ctx: typer.Context) -> AppState:
    state = ctx.find_root().obj
    if not isinstance(state, AppState):  # commands invoked without the root callback (tests)
        state = AppState()
        ctx.find_root().obj = state
    return state


def record_audit(
    ctx: typer.Context, action: str, target: str, details: dict[str, object] | None = None
) -> None:
    """Append an entry to the store's audit log for a change a command made (names, never secrets).

    The store is imported here, not at module level, so commands that never audit start fast.
    """
    from orchestrator import store  # noqa: PLC0415

    with store.open_store(app_state(ctx).settings) as opened:
        store.append_audit(opened.engine, store.local_actor(), action, target, details)


def emit_json(document: object) -> None:
    """Write one JSON document to stdout. Keys keep their insertion order; the schema is documented."""
    sys.stdout.write(json.dumps(document, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def render_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Cells are data (host names, usernames): never let them be read as rich markup.
        table.add_row(*("" if cell is None else escape(str(cell)) for cell in row))
    stdout.print(table)


def _report_error(exc: FleetfixError, output: OutputFormat) -> ExitCode:
    code = ExitCode.ERROR
    if isinstance(exc, InputError):
        code = ExitCode.BAD_INPUT
    elif isinstance(exc, AuditChainError):
        code = ExitCode.FINDINGS  # a broken chain is a finding about the store, not a crash
    # Redacted in case a library's message carried a revealed secret; escaped so it is not markup.
    stderr.print(f"[bold red]error:[/] {escape(redact(str(exc)))}", markup=True, highlight=False)
    if isinstance(exc, SelectorError):
        stderr.print(exc.pointer(), markup=False, highlight=False)
    if output is OutputFormat.json:
        details = exc.to_dict().items()
        emit_json({"error": {key: redact(val) if isinstance(val, str) else val for key, val in details}})
    return code


def command(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap a typer command so FleetfixError becomes a clean message and the documented exit code.

    Unexpected exceptions exit 3 with a one-line message; the traceback goes to the log at DEBUG.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        raw = kwargs.get("output", OutputFormat.table)
        output = raw if isinstance(raw, OutputFormat) else OutputFormat.table
        try:
            return func(*args, **kwargs)
        except FleetfixError as exc:
            raise typer.Exit(int(_report_error(exc, output))) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            log.debug("internal error", exc_info=True)
            internal = FleetfixError(f"internal error: {type(exc).__name__}: {exc}")
            internal.kind = "internal"
            raise typer.Exit(int(_report_error(internal, output))) from None

    return wrapper
