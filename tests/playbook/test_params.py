"""``--param NAME=VALUE`` overrides and :meth:`Playbook.resolve_params`."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from orchestrator.errors import PlaybookError
from orchestrator.playbook import Playbook, parse_param_overrides
from tests.playbook.support import edited, load

PARAMETERS = """\
parameters:
  root_thumbprint:
    type: string
    default: ""
    pattern: "^([0-9A-Fa-f]{40})?$"
  restart:
    type: bool
    default: true
  tries:
    type: int
    default: 3
    min: 1
    max: 5
  mode:
    type: string
    default: fast
    choices: [fast, careful]
  hosts:
    type: string_list
    default: []
    pattern: "^[a-z0-9-]+$"
  required_note:
    type: string
"""


@pytest.fixture
def playbook(tmp_path: Path) -> Playbook:
    head, tail = edited("parameters:\n", "").split("  root_thumbprint:\n", 1)
    tail = tail.split("steps:\n", 1)[1]
    return load(tmp_path, head + PARAMETERS + "steps:\n" + tail)


def test_values_are_converted_by_type(playbook: Playbook) -> None:
    overrides = parse_param_overrides(
        ["root_thumbprint=" + "Ab" * 20, "restart=no", "tries=5", "mode=careful", "hosts=ep-1, ep-2"],
        playbook,
    )
    assert overrides == {
        "root_thumbprint": "Ab" * 20,
        "restart": False,
        "tries": 5,
        "mode": "careful",
        "hosts": ("ep-1", "ep-2"),
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("YES", True),
        ("on", True),
        ("1", True),
        ("False", False),
        ("off", False),
        ("0", False),
        ("no", False),
    ],
)
def test_bool_spellings(playbook: Playbook, text: str, value: bool) -> None:
    assert parse_param_overrides([f"restart={text}"], playbook) == {"restart": value}


def test_edge_values(playbook: Playbook) -> None:
    assert parse_param_overrides(["root_thumbprint="], playbook) == {"root_thumbprint": ""}
    assert parse_param_overrides(["hosts="], playbook) == {"hosts": ()}
    assert parse_param_overrides([" tries =4"], playbook) == {"tries": 4}
    assert parse_param_overrides(["required_note=a=b"], playbook) == {"required_note": "a=b"}
    assert parse_param_overrides([], playbook) == {}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["restart"], "--param: expected NAME=VALUE, not 'restart'"),
        (["=1"], "--param: expected NAME=VALUE, not '=1'"),
        (
            ["restrat=yes"],
            "--param: unknown parameter 'restrat' of playbook 'rras-root-thumbprint' (known: hosts, mode, "
            "required_note, restart, root_thumbprint, tries); did you mean 'restart'?",
        ),
        (["restart=maybe"], "--param: parameter 'restart' is a bool: use true or false, not 'maybe'"),
        (["tries=three"], "--param: parameter 'tries' is an int: 'three' is not an integer"),
        (["tries=2.5"], "--param: parameter 'tries' is an int: '2.5' is not an integer"),
        (["tries=9"], "--param: parameter 'tries': 9 is more than the maximum 5"),
        (["tries=0"], "--param: parameter 'tries': 0 is less than the minimum 1"),
        (["mode=slow"], "--param: parameter 'mode': 'slow' is not one of the choices: 'fast', 'careful'"),
        (
            ["root_thumbprint=xyz"],
            "--param: parameter 'root_thumbprint': 'xyz' does not match the pattern '^([0-9A-Fa-f]{40})?$'",
        ),
        (["hosts=ep-1,EP 2"], "--param: parameter 'hosts': 'EP 2' does not match the pattern '^[a-z0-9-]+$'"),
        (["tries=2", "tries=3"], "--param: parameter 'tries' is given twice"),
    ],
)
def test_bad_overrides_name_the_param_field(playbook: Playbook, items: list[str], message: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_param_overrides(items, playbook)
    assert caught.value.field == "--param"
    assert str(caught.value) == message


def test_unknown_parameter_of_a_playbook_without_parameters(tmp_path: Path) -> None:
    text = edited('"${params.root_thumbprint}"', '""')
    text = text.split("parameters:")[0] + "steps:" + text.split("steps:", 1)[1]
    text = text.replace('    when: "${params.restart}"\n', "")
    with pytest.raises(PlaybookError) as caught:
        parse_param_overrides(["x=1"], load(tmp_path, text))
    assert (
        caught.value.message
        == "unknown parameter 'x' of playbook 'rras-root-thumbprint' (it has no parameters)"
    )


def test_resolve_params_applies_defaults_under_overrides(playbook: Playbook) -> None:
    overrides = parse_param_overrides(["tries=4", "required_note=change 42"], playbook)
    params = playbook.resolve_params(overrides)
    assert dict(params) == {
        "root_thumbprint": "",
        "restart": True,
        "tries": 4,
        "mode": "fast",
        "hosts": (),
        "required_note": "change 42",
    }
    assert isinstance(params, MappingProxyType)
    with pytest.raises(TypeError):
        params["tries"] = 5  # type: ignore[index]


def test_resolve_params_needs_every_parameter_without_default(playbook: Playbook) -> None:
    with pytest.raises(PlaybookError) as caught:
        playbook.resolve_params()
    assert str(caught.value) == (
        "--param: parameter 'required_note' of playbook 'rras-root-thumbprint' has no default: "
        "give --param required_note=VALUE"
    )


def test_resolve_params_checks_programmatic_overrides(playbook: Playbook) -> None:
    with pytest.raises(PlaybookError) as caught:
        playbook.resolve_params({"required_note": "x", "tries": "4"})
    assert caught.value.message == "parameter 'tries': must be an integer, not '4'"
    with pytest.raises(PlaybookError) as caught:
        playbook.resolve_params({"required_note": "x", "trys": 4})
    assert caught.value.message.endswith("did you mean 'tries'?")
    listed = playbook.resolve_params({"required_note": "x", "hosts": ["a", "b"]})
    assert listed["hosts"] == ("a", "b")
