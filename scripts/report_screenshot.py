"""Make a sweep report to look at: ``fleetfix demo`` on a lab scenario, then the report of its sweep
as HTML (and CSV, JSON), and a screenshot of the page through headless Chromium.

    .venv/bin/python scripts/report_screenshot.py --out report-preview
    .venv/bin/python scripts/report_screenshot.py --out shots --scenario mixed-1k --height 12000

Writes into ``--out``: ``lab/`` (the demo's lab directory, kept: its store answers ``fleetfix
--config lab/fleetfix.toml report sweep ...``), ``sweep.html``, ``sweep.csv``, ``sweep.json`` and,
when Chromium is installed (Debian: ``apt-get install -y chromium``), ``sweep.png``.  The fleetfix
used is the one installed next to this Python.  See docs/reports.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def fleetfix_command() -> str:
    beside = Path(sys.executable).with_name("fleetfix")
    if beside.is_file():
        return str(beside)
    found = shutil.which("fleetfix")
    if found is None:
        sys.exit("fleetfix is not installed next to this Python nor on PATH: pip install -e . first")
    return found


def clean_environment() -> dict[str, str]:
    """The environment without FLEETFIX_* settings: the lab directory's configuration decides."""
    return {name: value for name, value in os.environ.items() if not name.startswith("FLEETFIX_")}


def run(command: list[str], *, allowed: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(command), file=sys.stderr)
    done = subprocess.run(  # noqa: S603 (fleetfix and chromium, argument lists, no shell)
        command, capture_output=True, text=True, env=clean_environment(), check=False
    )
    if done.returncode not in allowed:
        sys.stderr.write(done.stderr)
        sys.exit(f"failed with exit code {done.returncode}")
    return done


def screenshot(chromium: str, page: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fleetfix-chromium-") as profile:
        run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                page.resolve().as_uri(),
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write into (created)")
    parser.add_argument("--scenario", default="seed-article", help="lab scenario for the demo")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=7000, help="screenshot height in pixels (the page's)")
    args = parser.parse_args()

    fleetfix = fleetfix_command()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    lab = out / "lab"
    if lab.exists():
        shutil.rmtree(lab)
    # exit 1 only says the sweep did not match the scenario's ground truth: still a report to see
    demo = run(
        [fleetfix, "demo", "--scenario", args.scenario, "--dir", str(lab), "--output", "json"], allowed=(0, 1)
    )
    run_id = json.loads(demo.stdout)["sweep"]["run_id"]
    config = ["--config", str(lab / "fleetfix.toml")]
    for fmt in ("html", "csv", "json"):
        run(
            [
                fleetfix,
                *config,
                "report",
                "sweep",
                "--run",
                run_id,
                "--format",
                fmt,
                "-o",
                str(out / f"sweep.{fmt}"),
            ]
        )
    written = [out / f"sweep.{fmt}" for fmt in ("html", "csv", "json")]
    if Path(args.chromium).is_file():
        png = out / "sweep.png"
        screenshot(args.chromium, out / "sweep.html", png, args.width, args.height)
        written.append(png)
    else:
        print(
            f"no screenshot: {args.chromium} not found (Debian: apt-get install -y chromium)", file=sys.stderr
        )
    print(f"sweep {run_id} of scenario {args.scenario}:")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    main()
