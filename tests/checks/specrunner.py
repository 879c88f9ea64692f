"""Check specs as data: YAML cases (facts in, findings out) run against ``run_checks``.

Each file of ``tests/checks/specs/`` (except ``_fleet.yaml``, the healthy fleet every case starts
from) holds ``checks`` (the ids its cases run by default) and ``cases``.  A case may set ``at``,
``options``, ``pki`` (certificates and CRLs added to or replacing the fleet's), ``hosts`` (merged
into the fleet's hosts by name; ``facts`` is deep-merged into the role's default facts, ``drop:
true`` removes a host, ``error`` replaces its facts by a collection error), ``tenant`` (merged; null
removes it), ``crls`` (replaces the fetched CRLs), and ``expect``: the exact findings, each
``{check, host, reason, subject}``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.checks import CheckOptions, Finding, catalogue
from orchestrator.facts import FleetFacts
from tests.checks.certgen import TestPki, when

SPECS = Path(__file__).parent / "specs"
_PLACEHOLDER = re.compile(r"\{\{(cert|crl|thumbprint):([A-Za-z0-9_\-]+)\}\}")


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    data: Mapping[str, Any]

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(SPECS.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in document["cases"]:
            data = {"checks": document.get("checks", "all"), **case}
            cases.append(Case(path.stem, str(case["name"]), data))
    return cases


def merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings recursively, anything else (lists included) replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def fleet_defaults() -> dict[str, Any]:
    document = yaml.safe_load((SPECS / "_fleet.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict), "_fleet.yaml must be a mapping"
    return document


def substitute(value: Any, pki: TestPki) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: _resolve(m.group(1), m.group(2), pki), value)
    if isinstance(value, Mapping):
        return {key: substitute(item, pki) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, pki) for item in value]
    return value


def _resolve(kind: str, name: str, pki: TestPki) -> str:
    if kind == "cert":
        return pki.cert_b64(name)
    if kind == "crl":
        return pki.crl_b64(name)
    return pki.thumbprint(name)


def _hosts(defaults: Mapping[str, Any], case: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    by_name = {host["name"]: dict(host) for host in defaults["hosts"]}
    for host in case.get("hosts", ()):
        by_name[host["name"]] = merge(by_name.get(host["name"], {}), host)
    for host in by_name.values():
        if host.get("drop"):
            continue
        entry = {"name": host["name"], "role": host["role"]}
        if "error" in host:
            entry["error"] = host["error"]
        else:
            entry["facts"] = merge(defaults["roles"][host["role"]], host.get("facts", {}))
        yield entry


@dataclass(frozen=True)
class Built:
    fleet: FleetFacts
    pki: TestPki
    options: CheckOptions
    only: tuple[str, ...] | None
    expect: list[dict[str, Any]]
    at: Any


def build(case: Mapping[str, Any]) -> Built:
    defaults = fleet_defaults()
    pki_data = merge(defaults["pki"], case.get("pki", {}))
    pki = TestPki(pki_data.get("certs", {}), pki_data.get("crls", {}))
    tenant = merge(defaults["tenant"], case.get("tenant", {})) if case.get("tenant", {}) is not None else None
    data = {
        "hosts": list(_hosts(defaults, case)),
        "tenant": tenant,
        "crls": case.get("crls", defaults["crls"]),
    }
    fleet = FleetFacts.from_json_data(substitute(data, pki))
    checks = case.get("checks", "all")
    only = None if checks == "all" else tuple(checks)
    options = CheckOptions.model_validate(substitute(case.get("options", {}), pki))
    expect = substitute(list(case.get("expect", [])), pki)
    return Built(fleet, pki, options, only, expect, when(case.get("at", defaults["at"])))


def observed(findings: tuple[Finding, ...]) -> set[tuple[str, str, str | None, str]]:
    return {(f.check_id, f.host, f.reason, f.subject) for f in findings}


def expected(items: list[dict[str, Any]]) -> set[tuple[str, str, str | None, str]]:
    return {(str(e["check"]), str(e["host"]), e.get("reason"), str(e["subject"])) for e in items}


def known_check_ids() -> set[str]:
    return {spec.id for spec in catalogue()}


__all__ = [
    "Built",
    "Case",
    "build",
    "expected",
    "fleet_defaults",
    "known_check_ids",
    "load_cases",
    "observed",
]
