"""Benchmark: starting the lab's built-in scenarios, its memory, and deriving ground truth.

For each scenario the lab starts as ``fleetfix lab up --detach`` starts it (its own process,
``lab.estate.manage.start_detached``), and the benchmark records:

* ``start_s``: from the command to every listener up (PKI, hosts, tenant, CRL server, files);
* ``rss_mb``: the lab process's resident memory once up, and again after ``truth`` (which writes
  each endpoint's event history on first look);
* ``truth_s``: ``fleetfix lab truth`` over the control API;
* listeners and host counts.

``--network`` moves the per-host addresses (127.<n>.x.y) off those of a lab already running.

    .venv/bin/python bench/lab_estate.py --scenario mixed-1k scale-10k --network 40
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.estate.manage import LabHandle, start_detached  # noqa: E402
from lab.scenarios import resolve  # noqa: E402


def scenario_copy(name: str, network: int, directory: Path) -> Path:
    """The built-in scenario with its per-host addresses moved to 127.<network>.x.y."""
    data: dict[str, Any] = yaml.safe_load(resolve(name).read_text(encoding="utf-8"))
    data.setdefault("winrm", {})["network"] = network
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def measure(name: str, network: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fleetfix-bench-lab-") as temp:
        directory = Path(temp) / "lab"
        scenario = scenario_copy(name, network, Path(temp))
        started = time.perf_counter()
        info = start_detached(str(scenario), directory)
        start_s = time.perf_counter() - started
        handle = LabHandle(directory)
        try:
            status = handle.get("/status")
            began = time.perf_counter()
            truth = handle.get("/truth")
            truth_s = time.perf_counter() - began
            after = handle.get("/status")
        finally:
            handle.down()
        return {
            "scenario": name,
            "hosts": status["hosts"],
            "listeners": len(info.fleet.endpoints),
            "transport": status["winrm"]["transport"],
            "start_s": round(start_s, 1),
            "rss_mb": status["rss_mb"],
            "truth_s": round(truth_s, 1),
            "truth_entries": len(truth["truth"]),
            "rss_mb_after_truth": after["rss_mb"],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", nargs="+", default=["mixed-1k", "scale-10k"])
    parser.add_argument("--network", type=int, default=40, help="127.<network>.x.y for per-host")
    args = parser.parse_args(argv)
    for name in args.scenario:
        print(json.dumps(measure(name, args.network)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
