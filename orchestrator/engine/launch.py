"""From a playbook and the inventory to a run's targets and its per-target work, with the real edges.

The CLI, the demo and (through the Celery tasks) the workers build a playbook run's work here:

* :func:`select_targets`: the inventory hosts of the playbook's role that ``--limit`` selects and
  that the latest sweep found something on that the playbook fixes (``all_hosts`` drops that
  filter), plus the tenant (``intune``) when the playbook has tenant steps;
* :func:`base_facts`: the fleet's context from the latest sweep (every non-endpoint host's facts,
  the tenant, the CRL fetches) that planning and verification judge a target in;
* :func:`work_setup`: the :class:`~orchestrator.engine.hostwork.WorkSetup` over WinRM, Graph, the
  vault and the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from orchestrator.actions.model import TENANT_TARGET
from orchestrator.checks.model import FrozenJson
from orchestrator.config import Settings
from orchestrator.credentials.vault import Vault
from orchestrator.errors import CredentialError, InputError
from orchestrator.facts.fleet import FleetFacts
from orchestrator.inventory.models import Host, Role
from orchestrator.store import Store
from orchestrator.store.models import HostResult
from orchestrator.store.sweeps import SweepRun, fleet_facts_of, get_sweep, latest_sweep, sweep_findings
from orchestrator.sweep.collect import ProbeSession, winrm_session
from orchestrator.sweep.credentials import resolve_all
from orchestrator.sweep.plan import DEFAULT_CONCURRENCY, DEFAULT_DEADLINE_S, CollectOptions, CredentialKey
from orchestrator.sweep.service import SweepIO, default_io

if TYPE_CHECKING:
    from orchestrator.engine.hostwork import TargetRunner, WorkSetup
    from orchestrator.engine.runs import RunView
    from orchestrator.playbook.model import Playbook
    from orchestrator.transport.graph.intune import IntuneClient

TENANT_ROLE = "tenant"


@dataclass(frozen=True)
class Target:
    """One target of a run: a host name and its role (``tenant`` for the Intune tenant)."""

    name: str
    role: str


@dataclass(frozen=True)
class Context:
    """The fleet's context a run plans in: the sweep it comes from and its facts."""

    sweep: SweepRun
    facts: FleetFacts
    open_findings: Mapping[str, frozenset[str]]
    """host name (case-folded) -> check ids the sweep found there"""


def load_context(store: Store, *, sweep_id: str | None = None) -> Context:
    """The context of sweep ``sweep_id`` (a resumed run keeps its own), else of the latest
    finished sweep; a run without one would plan blind."""
    with store.transaction() as session:
        sweep = get_sweep(session, sweep_id) if sweep_id else latest_sweep(session)
        if sweep is None:
            raise InputError(
                "no finished sweep in the store: run `fleetfix sweep` first "
                "(a playbook plans from fresh facts, but in the context of the fleet's last sweep)",
                field="store",
            )
        hosts = _context_hosts(session, sweep.id)
        wide = fleet_facts_of(session, sweep.id) or {}
        findings: dict[str, set[str]] = {}
        for record in sweep_findings(session, sweep.id):
            findings.setdefault(record.host.casefold(), set()).add(record.check_id)
    facts = FleetFacts.from_json_data({**wide, "hosts": hosts})
    return Context(sweep, facts, {host: frozenset(ids) for host, ids in findings.items()})


def _context_hosts(session: Any, run_id: str) -> list[dict[str, Any]]:
    """Every non-endpoint host of a sweep with its facts (endpoints are never another's context)."""
    rows = session.execute(
        select(
            HostResult.host,
            HostResult.role,
            HostResult.facts,
            HostResult.error_kind,
            HostResult.error_message,
        )
        .where(HostResult.run_id == run_id, HostResult.role != Role.ENDPOINT.value)
        .order_by(HostResult.host)
    )
    hosts = []
    for row in rows:
        entry: dict[str, Any] = {"name": row.host, "role": row.role}
        if row.facts is not None:
            entry["facts"] = row.facts
        else:
            entry["error"] = {"kind": row.error_kind or "internal", "message": row.error_message or ""}
        hosts.append(entry)
    return hosts


def select_targets(
    playbook: Playbook,
    hosts: Iterable[Host],
    context: Context,
    *,
    all_hosts: bool = False,
    tenant_configured: bool = True,
) -> tuple[Target, ...]:
    """The run's targets in a stable order: the tenant first (its steps come before any host's)."""
    fixes = frozenset(playbook.fixes)
    targets: list[Target] = []
    tenant_open = context.open_findings.get(TENANT_TARGET, frozenset()) & fixes
    if playbook.tenant_steps and tenant_configured and (all_hosts or tenant_open):
        targets.append(Target(TENANT_TARGET, TENANT_ROLE))
    for host in sorted(hosts, key=lambda item: item.name.casefold()):
        if host.role.value != playbook.target:
            continue
        if all_hosts or context.open_findings.get(host.name.casefold(), frozenset()) & fixes:
            targets.append(Target(host.name, host.role.value))
    return tuple(targets)


def work_setup(
    settings: Settings,
    store: Store,
    *,
    run_id: str,
    playbook: Playbook,
    params: Mapping[str, FrozenJson],
    hosts: Sequence[Host],
    context: Context,
    actor: str,
    approver: str | None = None,
    holder: str | None = None,
    options: CollectOptions | None = None,
    environ: Mapping[str, str] | None = None,
    io: SweepIO | None = None,
    verify_timeout_s: float | None = None,
) -> WorkSetup:
    """The real edges: WinRM sessions with the vault's credentials, Graph when configured."""
    from orchestrator.engine.hostwork import WorkSetup  # noqa: PLC0415 (the actions load here)

    options = options or CollectOptions()
    vault = Vault.from_settings(settings, environ)
    return WorkSetup(
        store=store,
        run_id=run_id,
        playbook=playbook,
        params=params,
        hosts={host.name.casefold(): host for host in hosts},
        base=context.facts,
        io=io or default_io(settings, environ=environ),
        options=options,
        open_session=_session_opener(vault, options, environ),
        open_intune=_intune_opener(settings, vault),
        actor=actor,
        approver=approver,
        holder=holder,
        verify_timeout_s=verify_timeout_s,
    )


@dataclass(frozen=True)
class RunWork:
    """A playbook run's per-target work, rebuilt from what the run recorded, and its parallelism."""

    runner: TargetRunner
    concurrency: int


def run_work(
    settings: Settings,
    store: Store,
    run: RunView,
    *,
    holder: str,
    hosts: Sequence[Host] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunWork:
    """The work of ``run`` from its recorded parameters (playbook, parameters, the sweep it
    plans in, collection options): what the CLI, ``runs resume`` and a Celery worker all run.

    ``hosts`` defaults to the configured inventory (a worker has no ``--limit``: the run's
    targets are already chosen).
    """
    from orchestrator.engine.hostwork import TargetRunner  # noqa: PLC0415
    from orchestrator.inventory import load_inventory  # noqa: PLC0415
    from orchestrator.playbook import load_playbooks  # noqa: PLC0415

    recorded = run.parameters
    playbook = load_playbooks(settings).get(run.playbook_id or "")
    params = playbook.resolve_params(dict(recorded.get("params", {})))
    concurrency = int(recorded.get("concurrency", DEFAULT_CONCURRENCY))
    setup = work_setup(
        settings,
        store,
        run_id=run.id,
        playbook=playbook,
        params=params,
        hosts=tuple(load_inventory(settings.inventory)) if hosts is None else hosts,
        context=load_context(store, sweep_id=recorded.get("sweep_id")),
        actor=run.requested_by,
        approver=run.approved_by,
        holder=holder,
        options=CollectOptions(
            concurrency=concurrency, deadline_s=float(recorded.get("deadline_s", DEFAULT_DEADLINE_S))
        ),
        environ=environ,
        verify_timeout_s=recorded.get("verify_timeout_s"),
    )
    return RunWork(TargetRunner(setup), concurrency)


def _session_opener(
    vault: Vault, options: CollectOptions, environ: Mapping[str, str] | None
) -> Callable[[Host], AbstractContextManager[ProbeSession]]:
    def open_session(host: Host) -> AbstractContextManager[ProbeSession]:
        key = CredentialKey(host.credential, host.winrm.username)
        credential = resolve_all((key,), open_vault=lambda: vault, environ=environ)[key]
        if isinstance(credential, CredentialError):
            raise credential
        return winrm_session(host, credential, options.deadline_s)

    return open_session


def _intune_opener(
    settings: Settings, vault: Vault
) -> Callable[[], AbstractContextManager[IntuneClient]] | None:
    if not settings.graph.configured:
        return None

    def open_client() -> AbstractContextManager[IntuneClient]:
        from orchestrator.transport.graph import open_intune  # noqa: PLC0415 (msal only when used)

        return open_intune(settings, vault=vault)

    return open_client


__all__ = [
    "TENANT_ROLE",
    "Context",
    "RunWork",
    "Target",
    "load_context",
    "run_work",
    "select_targets",
    "work_setup",
]
