"""Saved plan files: what --save-plan writes is what --plan reads; every problem names file and field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.planfile import load_plan, plan_document, write_plan
from orchestrator.errors import InputError


def document(**changes: Any) -> dict[str, Any]:
    base = plan_document(
        playbook="install-ca-chain",
        params={"x": 1},
        selector="role:endpoint",
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
        created_by="alice@adminhost",
        targets=[
            {
                "target": "ep-1",
                "role": "endpoint",
                "changes": 1,
                "steps": [{"step": "import", "digest": "ab"}],
            },
            {"target": "ep-2", "role": "endpoint", "changes": 0, "steps": [], "error": "unreachable"},
        ],
    )
    return base | changes


def test_round_trip_keeps_plannable_targets_only(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(path, document())
    saved = load_plan(path)
    assert (saved.playbook, dict(saved.params), list(saved.targets)) == (
        "install-ca-chain",
        {"x": 1},
        ["ep-1"],
    )
    assert saved.roles() == {"ep-1": "endpoint"}
    assert json.loads(path.read_text())["changes"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a JSON plan file"),
        (json.dumps({"format": "other"}), "format: not a fleetfix-plan document"),
        (json.dumps(document(version=9)), "version: version 9 is not supported"),
        (json.dumps(document(targets="ep-1")), "targets: missing or not a list"),
        (json.dumps(document(targets=[{"role": "endpoint", "steps": []}])), "targets[0]: each target needs"),
        (
            json.dumps(document(targets=[{"target": "a", "role": "endpoint", "steps": []}] * 2)),
            "targets[1]: target a is listed twice",
        ),
    ],
)
def test_bad_plan_files_name_the_file_and_the_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        load_plan(path)
    assert str(path) in str(caught.value)
    assert caught.value.field == "--plan"


def test_a_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the plan"):
        load_plan(tmp_path / "missing.json")
