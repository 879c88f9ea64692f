"""Running the installed ``fleetfix`` console script the way an admin does, in a throwaway home.

Tests use the real script (next to the interpreter running pytest), so packaging, entry point,
exit codes and the separation of stdout and stderr are tested too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FLEETFIX = str(Path(sys.executable).with_name("fleetfix"))


class Cli:
    """``fleetfix`` with a private environment; ``env`` may be extended per test."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.cwd = cwd
        self.env = env

    def run(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FLEETFIX, *args],
            input=stdin,
            cwd=cwd or self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def json(self, *args: str, code: int = 0, stdin: str = "") -> Any:
        """Run with ``--output json``, assert the exit code, return the parsed stdout."""
        result = self.run(*args, "--output", "json", stdin=stdin)
        assert result.returncode == code, result.stderr
        return json.loads(result.stdout)
