"""Fixtures for the lab tests.

The repository root goes first on ``sys.path``: pytest's default (prepend) import mode puts
``tests/`` there, where the directory ``tests/lab`` would otherwise be found as a namespace
package named ``lab`` and hide the real :mod:`lab` package installed in editable mode.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path[:1]:
    sys.path.insert(0, str(REPO))

from tests.lab.support import Captured  # noqa: E402


@pytest.fixture(scope="module")
def captured() -> Captured:
    return Captured()
