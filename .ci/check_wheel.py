"""Fail if the wheel lacks a data file the source tree ships: playbooks, PowerShell scripts,
migrations, lab scenarios, py.typed markers. Packaging globs are easy to get wrong silently."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [
    ("playbooks", "*.yaml"),
    ("playbooks", "*.yml"),
    ("orchestrator/scripts", "*.ps1"),
    ("orchestrator/scripts/lib", "*.ps1"),
    ("orchestrator/store/migrations", "**/*.py"),
    ("orchestrator/store/migrations", "*.mako"),
    ("lab/scenarios", "*.yaml"),
    ("orchestrator/reports/templates", "*.j2"),
    (".", "*/py.typed"),
]


def expected_files() -> set[str]:
    found: set[str] = set()
    for directory, pattern in SHIPPED:
        base = ROOT / directory
        if base.is_dir():
            found.update(
                path.relative_to(ROOT).as_posix()
                for path in base.glob(pattern)
                if "__pycache__" not in path.parts
            )
    return found


def main(wheel: str) -> int:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(expected_files() - names)
    if missing:
        print(f"{wheel} lacks {len(missing)} shipped file(s):", *missing, sep="\n  ")
        return 1
    print(f"{Path(wheel).name}: all {len(expected_files())} shipped data files present")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
