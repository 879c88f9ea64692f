"""Loading one playbook file: the valid format, and one-line ``file:line: field: message`` errors."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest
from pydantic import ValidationError

from orchestrator.actions.model import ArgType
from orchestrator.errors import InputError, PlaybookError, SourcePosition
from orchestrator.inventory.models import Role
from orchestrator.playbook import MaxFail, PlaybookSource, Risk, Step
from tests.playbook.support import NAME, VALID, edited, load, load_error

# --- the valid file -----------------------------------------------------------------------------


def test_valid_playbook_loads_every_field(tmp_path: Path) -> None:
    playbook = load(tmp_path)
    assert playbook.id == "rras-root-thumbprint"
    assert playbook.fixes == ("RRAS-AUTH-01", "RRAS-DRIFT-01")
    assert (playbook.target, playbook.risk) == (Role.RRAS, Risk.SERVICE_RESTART)
    assert list(playbook.parameters) == ["root_thumbprint", "restart"]
    thumbprint = playbook.parameters["root_thumbprint"]
    assert (thumbprint.type, thumbprint.default, thumbprint.required) == (ArgType.STRING, "", False)
    assert thumbprint.pattern == "^([0-9A-Fa-f]{40})?$"
    assert playbook.tenant_steps == ()
    assert [step.id for step in playbook.steps] == ["set-root", "restart"]
    assert dict(playbook.steps[0].args) == {"thumbprint": "${params.root_thumbprint}"}
    assert playbook.steps[1].when_changed == ("set-root",)
    assert playbook.steps[1].when == "${params.restart}"
    assert playbook.verify.checks == ("RRAS-AUTH-01", "RRAS-DRIFT-01")
    assert (playbook.verify.timeout_s, playbook.verify.interval_s) == (120, 5)
    assert playbook.rollback.on_verify_failure is True
    rollout = playbook.rollout
    assert (rollout.canary, rollout.wave_size, rollout.serial) == (1, 10, True)
    assert rollout.max_fail == MaxFail(1)
    assert playbook.source == PlaybookSource(path=tmp_path / NAME)


def test_defaults_of_optional_sections(tmp_path: Path) -> None:
    text = VALID.split("rollback:")[0].replace("  timeout_s: 120\n  interval_s: 5\n", "")
    playbook = load(tmp_path, text)
    assert (playbook.verify.timeout_s, playbook.verify.interval_s) == (120, 5)
    assert playbook.rollback.on_verify_failure is False
    rollout = playbook.rollout
    assert (rollout.canary, rollout.wave_size, rollout.serial, str(rollout.max_fail)) == (1, 10, False, "0")


def test_empty_sections_read_as_empty(tmp_path: Path) -> None:
    text = """\
id: rras-root-thumbprint
description: d
fixes: [RRAS-AUTH-01]
target: rras
risk: none
parameters:
tenant_steps:
steps:
  - id: set-root
    action: rras.set-root-certificate
    args:
verify:
  checks: [RRAS-AUTH-01]
rollback:
rollout:
"""
    playbook = load(tmp_path, text)
    assert (playbook.parameters, playbook.tenant_steps, playbook.steps[0].args) == ({}, (), {})
    assert (playbook.rollback.on_verify_failure, playbook.rollout.wave_size) == (False, 10)


def test_loaded_playbook_is_immutable(tmp_path: Path) -> None:
    playbook = load(tmp_path)
    with pytest.raises(ValidationError):
        playbook.id = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        playbook.steps[0].action = "other"  # type: ignore[misc]
    assert isinstance(playbook.parameters, MappingProxyType)
    assert isinstance(playbook.steps[0].args, MappingProxyType)
    assert isinstance(playbook.steps[1].args, MappingProxyType)  # no args: still read-only
    assert isinstance(playbook.fixes, tuple)


def test_list_arguments_become_tuples(tmp_path: Path) -> None:
    text = edited(
        "  - id: restart\n",
        "  - id: typed\n    action: test.typed\n    args: {text: x, names: [a, b]}\n  - id: restart\n",
    )
    step = load(tmp_path, text).steps[1]
    assert step.args["names"] == ("a", "b")


def test_to_dict_is_the_file_in_json_form(tmp_path: Path) -> None:
    document = load(tmp_path).to_dict()
    assert list(document) == [
        "id", "target", "risk", "fixes", "source", "replaces_shipped", "file", "description",
        "parameters", "tenant_steps", "steps", "verify", "rollback", "rollout",
    ]  # fmt: skip
    assert document["parameters"][0] == {
        "name": "root_thumbprint",
        "type": "string",
        "required": False,
        "default": "",
        "description": "SHA-1 thumbprint; empty = the enterprise root",
        "pattern": "^([0-9A-Fa-f]{40})?$",
        "min": None,
        "max": None,
        "choices": None,
    }
    assert document["steps"][1] == {
        "id": "restart",
        "action": "rras.restart-remoteaccess",
        "args": {},
        "when_changed": ["set-root"],
        "when": "${params.restart}",
    }
    assert document["rollout"] == {"canary": 1, "wave_size": 10, "serial": True, "max_fail": "1"}
    assert document["source"] == document["file"] == str(tmp_path / NAME)


def test_tenant_steps_take_tenant_actions(tmp_path: Path) -> None:
    text = edited("steps:\n", "tenant_steps:\n  - id: routes\n    action: intune.fix-vpn-routes\nsteps:\n")
    playbook = load(tmp_path, text)
    assert [step.id for step in playbook.all_steps] == ["routes", "set-root", "restart"]
    assert playbook.step("routes") == Step(id="routes", action="intune.fix-vpn-routes")


def test_tenant_only_playbook_is_allowed(tmp_path: Path) -> None:
    text = VALID.split("steps:")[0] + "tenant_steps:\n  - id: routes\n    action: intune.fix-vpn-routes\n"
    text += "verify:" + VALID.split("verify:")[1]
    assert load(tmp_path, text).steps == ()


# --- errors: the file as a whole ------------------------------------------------------------------


def test_error_is_an_input_error_with_position_and_field(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("risk: service-restart", "risk: high"))
    assert isinstance(error, InputError)
    assert error.kind == "playbook"
    assert error.position == SourcePosition(tmp_path / NAME, 5)
    assert error.field == "risk"
    assert str(error) == (
        f"{tmp_path / NAME}:5: risk: unknown value 'high'; expected one of "
        "'service-restart', 'user-disruption' or 'none'"
    )


def test_empty_file(tmp_path: Path) -> None:
    error = load_error(tmp_path, "# nothing yet\n")
    assert str(error).startswith(f"{tmp_path / NAME}:1: the file is empty; a playbook needs id,")


def test_bad_yaml_names_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("  checks: [RRAS-AUTH-01, RRAS-DRIFT-01]", "  checks: [RRAS-AUTH-01"))
    assert str(error).startswith(f"{tmp_path / NAME}:25:")
    assert "invalid YAML" in str(error)


def test_duplicate_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("target: rras\n", "target: rras\ntarget: ca\n"))
    assert str(error) == f"{tmp_path / NAME}:5: target: duplicate key 'target' (first defined at line 4)"


def test_missing_section_points_at_the_top(tmp_path: Path) -> None:
    text = VALID.split("verify:")[0] + "rollback:" + VALID.split("rollback:")[1]
    assert str(load_error(tmp_path, text)) == f"{tmp_path / NAME}:1: verify: is required"


def test_id_must_equal_the_file_stem(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID, name="root.yaml")
    assert str(error) == (
        f"{tmp_path / 'root.yaml'}:1: id: the id 'rras-root-thumbprint' must equal the file name "
        "without extension ('root')"
    )


def test_id_must_be_lower_case_dashed(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("id: rras-root-thumbprint", "id: RRAS_root"))
    assert str(error) == (
        f"{tmp_path / NAME}:1: id: invalid value 'RRAS_root': use lower-case letters and digits in "
        "words joined by single dashes (rras-root-thumbprint)"
    )


def test_unknown_top_level_key_suggests_the_right_one(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("rollback:\n", "rolback:\n"))
    assert (error.position, error.field) == (SourcePosition(tmp_path / NAME, 27), "rolback")
    assert error.message.startswith("unknown key; expected one of: id, description, fixes, target, risk,")
    assert error.message.endswith("did you mean 'rollback'?")


def test_unknown_step_key_suggests_the_right_one(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("    when_changed:", "    when_change:"))
    assert str(error) == (
        f"{tmp_path / NAME}:21: steps[1].when_change: unknown key; expected one of: id, action, args, "
        "when_changed, when; did you mean 'when_changed'?"
    )


def test_source_is_not_a_file_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID + "source: {shipped: true}\n")
    assert (error.position, error.field) == (SourcePosition(tmp_path / NAME, 32), "source")


def test_the_problem_nearest_the_top_is_reported(tmp_path: Path) -> None:
    # Two problems of shape (types, keys): the earlier line wins, whatever the order pydantic finds them.
    text = edited('  max_fail: "1"', "  max_fail: lots", edited("risk: service-restart", "risk: high"))
    assert load_error(tmp_path, text).field == "risk"
    # Two broken rules: likewise.
    text = edited("when_changed: [set-root]", "when_changed: [nope]")
    text = edited("fixes: [RRAS-AUTH-01, RRAS-DRIFT-01]", "fixes: [RRAS-AUTH-01, RRAS-NOPE-01]", text)
    assert load_error(tmp_path, text).field == "fixes[1]"
    # The shape is checked before the rules (which need a well-formed file).
    text = edited("fixes: [RRAS-AUTH-01, RRAS-DRIFT-01]", "fixes: [RRAS-AUTH-01, RRAS-NOPE-01]")
    assert (
        load_error(tmp_path, edited("  interval_s: 5", "  interval_s: 0", text)).field == "verify.interval_s"
    )


# --- errors: fixes and verify ---------------------------------------------------------------------


def test_unknown_check_id_suggests_the_closest(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("fixes: [RRAS-AUTH-01,", "fixes: [RRAS-AUTH-1,"))
    assert str(error) == (
        f"{tmp_path / NAME}:3: fixes[0]: unknown check id 'RRAS-AUTH-1' (fleetfix checks list); "
        "did you mean 'RRAS-AUTH-01'?"
    )


def test_check_listed_twice_in_fixes(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, edited("fixes: [RRAS-AUTH-01, RRAS-DRIFT-01]", "fixes: [RRAS-AUTH-01, RRAS-AUTH-01]")
    )
    assert str(error) == f"{tmp_path / NAME}:3: fixes[1]: RRAS-AUTH-01 is listed twice"


def test_fixes_must_not_be_empty(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("fixes: [RRAS-AUTH-01, RRAS-DRIFT-01]", "fixes: []"))
    assert str(error) == f"{tmp_path / NAME}:3: fixes: must not be empty"


def test_verify_check_must_be_in_fixes(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("fixes: [RRAS-AUTH-01, RRAS-DRIFT-01]", "fixes: [RRAS-AUTH-01]"))
    assert str(error) == (
        f"{tmp_path / NAME}:24: verify.checks[1]: RRAS-DRIFT-01 is not in fixes; "
        "a playbook verifies only what it fixes"
    )


def test_verify_checks_on_separate_lines_point_at_their_own_line(tmp_path: Path) -> None:
    text = edited("  checks: [RRAS-AUTH-01, RRAS-DRIFT-01]", "  checks:\n    - RRAS-AUTH-01\n    - CA-CRL-01")
    error = load_error(tmp_path, text)
    assert (error.position, error.field) == (SourcePosition(tmp_path / NAME, 26), "verify.checks[1]")


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("  timeout_s: 120", "  timeout_s: -1", 25, "verify.timeout_s", "must be 0 or more, not -1"),
        ("  interval_s: 5", "  interval_s: 0", 26, "verify.interval_s", "must be 1 or more, not 0"),
        ("  serial: true", "  canary: -2", 30, "rollout.canary", "must be 0 or more, not -2"),
        ("  serial: true", "  wave_size: 0", 30, "rollout.wave_size", "must be 1 or more, not 0"),
        ("  timeout_s: 120", '  timeout_s: "120"', 25, "verify.timeout_s", "must be an integer"),
        ("  serial: true", "  serial: yes please", 30, "rollout.serial", "must be true or false"),
        (
            '  max_fail: "1"',
            "  max_fail: -1",
            31,
            "rollout.max_fail",
            "must be a count of targets (3) or a percentage of them (10%), not -1",
        ),
        ('  max_fail: "1"', '  max_fail: "110%"', 31, "rollout.max_fail", "110% is more than 100%"),
        (
            '  max_fail: "1"',
            '  max_fail: "1.5"',
            31,
            "rollout.max_fail",
            "must be a count of targets (3) or a percentage of them (10%), not '1.5'",
        ),
    ],
)
def test_numbers_out_of_range_or_of_the_wrong_type(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    assert str(load_error(tmp_path, edited(old, new))) == f"{tmp_path / NAME}:{line}: {field}: {message}"


@pytest.mark.parametrize(("text", "shown"), [("3", "3"), ("2.5%", "2.5%"), ("10%", "10%"), ("0", "0")])
def test_max_fail_forms(tmp_path: Path, text: str, shown: str) -> None:
    playbook = load(tmp_path, edited('  max_fail: "1"', f'  max_fail: "{text}"'))
    assert str(playbook.rollout.max_fail) == shown


def test_max_fail_may_be_a_yaml_integer(tmp_path: Path) -> None:
    max_fail = load(tmp_path, edited('  max_fail: "1"', "  max_fail: 4")).rollout.max_fail
    assert (max_fail, max_fail.limit(100)) == (MaxFail(4), 4)


def test_percentage_budget_rounds_down() -> None:
    assert MaxFail(10, percent=True).limit(15) == 1
    assert MaxFail(10, percent=True).limit(9) == 0
    assert MaxFail(2.5, percent=True).limit(400) == 10


# --- errors: steps --------------------------------------------------------------------------------


def test_duplicate_step_id(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("  - id: restart", "  - id: set-root"))
    assert str(error) == f"{tmp_path / NAME}:19: steps[1].id: duplicate step id 'set-root' (also steps[0])"


def test_step_ids_are_unique_across_tenant_and_host_steps(tmp_path: Path) -> None:
    text = edited("steps:\n", "tenant_steps:\n  - id: restart\n    action: intune.fix-vpn-routes\nsteps:\n")
    error = load_error(tmp_path, text)
    assert (
        str(error) == f"{tmp_path / NAME}:22: steps[1].id: duplicate step id 'restart' (also tenant_steps[0])"
    )


def test_unknown_action_suggests_the_closest(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("rras.set-root-certificate", "rras.set-root-certficate"))
    assert str(error) == (
        f"{tmp_path / NAME}:17: steps[0].action: unknown action 'rras.set-root-certficate' (known: "
        "intune.fix-vpn-routes, intune.sync-device, rras.restart-remoteaccess, rras.set-root-certificate, "
        "test.typed); did you mean 'rras.set-root-certificate'?"
    )


def test_tenant_action_in_host_steps(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, edited("    action: rras.restart-remoteaccess", "    action: intune.fix-vpn-routes")
    )
    assert str(error) == (
        f"{tmp_path / NAME}:20: steps[1].action: intune.fix-vpn-routes acts on the tenant, so it belongs "
        "in tenant_steps, not steps"
    )


def test_host_action_in_tenant_steps(tmp_path: Path) -> None:
    text = edited("steps:\n", "tenant_steps:\n  - id: sync\n    action: intune.sync-device\nsteps:\n")
    error = load_error(tmp_path, text)
    assert str(error) == (
        f"{tmp_path / NAME}:17: tenant_steps[0].action: intune.sync-device acts on the host, so it belongs "
        "in steps, not tenant_steps"
    )


def test_no_steps_at_all(tmp_path: Path) -> None:
    text = VALID.split("steps:")[0] + "steps: []\nverify:" + VALID.split("verify:")[1]
    text = text.split("parameters:")[0] + "steps:" + text.split("steps:")[1]
    error = load_error(tmp_path, text)
    assert (
        str(error)
        == f"{tmp_path / NAME}:6: steps: a playbook needs at least one step (in steps or tenant_steps)"
    )


def test_when_changed_naming_a_later_step(tmp_path: Path) -> None:
    text = edited('    args: {thumbprint: "${params.root_thumbprint}"}\n', "    when_changed: [restart]\n")
    error = load_error(tmp_path, text)
    assert str(error) == (
        f"{tmp_path / NAME}:18: steps[0].when_changed[0]: 'restart' is a later step; "
        "when_changed names earlier steps"
    )


def test_when_changed_naming_an_unknown_step(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("when_changed: [set-root]", "when_changed: [set-rot]"))
    assert str(error) == (
        f"{tmp_path / NAME}:21: steps[1].when_changed[0]: unknown step 'set-rot' (earlier steps: set-root); "
        "did you mean 'set-root'?"
    )


def test_when_changed_naming_itself(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("when_changed: [set-root]", "when_changed: [set-root, restart]"))
    assert str(error) == f"{tmp_path / NAME}:21: steps[1].when_changed[1]: a step cannot wait for itself"


def test_when_changed_cannot_cross_from_host_to_tenant_steps(tmp_path: Path) -> None:
    text = edited("steps:\n", "tenant_steps:\n  - id: routes\n    action: intune.fix-vpn-routes\nsteps:\n")
    text = edited("when_changed: [set-root]", "when_changed: [routes]", text)
    error = load_error(tmp_path, text)
    assert str(error) == (
        f"{tmp_path / NAME}:24: steps[1].when_changed[0]: 'routes' is in tenant_steps; "
        "when_changed names earlier steps of steps"
    )


# --- errors: arguments ----------------------------------------------------------------------------

TYPED_STEP = "  - id: typed\n    action: test.typed\n    args: ARGS\n"


def typed(args: str) -> str:
    """VALID with a test.typed step (line 19; its args on line 21) before the restart step."""
    return edited("  - id: restart\n", TYPED_STEP.replace("ARGS", args) + "  - id: restart\n")


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ("{text: 3}", "args.text", "must be a string, not 3"),
        ("{text: x, count: '3'}", "args.count", "must be an integer, not '3'"),
        ("{text: x, count: true}", "args.count", "must be an integer, not True"),
        ("{text: x, flag: 'yes'}", "args.flag", "must be true or false, not 'yes'"),
        ("{text: x, names: a}", "args.names", "must be a list of strings, not 'a'"),
        ("{text: x, names: [a, 1]}", "args.names[1]", "must be a string, not 1"),
        ("{text: {a: 1}}", "args.text", "must be a string, not a mapping"),
        ("{text: x, count: [1]}", "args.count", "must be an integer, not a list"),
        ("{count: 1}", "args", "test.typed needs the argument(s) text"),
        (
            "{text: x, txt: y}",
            "args.txt",
            "test.typed has no argument 'txt' (accepts: text, count, flag, names); did you mean 'text'?",
        ),
    ],
)
def test_argument_values_are_checked_against_the_action(
    tmp_path: Path, args: str, field: str, message: str
) -> None:
    error = load_error(tmp_path, typed(args))
    assert str(error) == f"{tmp_path / NAME}:21: steps[1].{field}: {message}"


def test_missing_required_argument_without_args_points_at_the_step(tmp_path: Path) -> None:
    text = edited("  - id: restart\n", "  - id: typed\n    action: test.typed\n  - id: restart\n")
    error = load_error(tmp_path, text)
    assert str(error) == f"{tmp_path / NAME}:19: steps[1]: test.typed needs the argument(s) text"


def test_argument_on_its_own_line_is_pointed_at(tmp_path: Path) -> None:
    text = edited("  - id: restart\n", "  - id: typed\n    action: test.typed\n    args:\n      text: x\n"
                  "      count: many\n  - id: restart\n")  # fmt: skip
    error = load_error(tmp_path, text)
    assert (error.position, error.field) == (SourcePosition(tmp_path / NAME, 23), "steps[1].args.count")


# --- errors: references ---------------------------------------------------------------------------


def test_unknown_parameter_in_a_reference(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("${params.root_thumbprint}", "${params.root_thumbprnt}"))
    assert str(error) == (
        f"{tmp_path / NAME}:18: steps[0].args.thumbprint: unknown parameter 'root_thumbprnt' in "
        "${params.root_thumbprnt} (known: root_thumbprint, restart); did you mean 'root_thumbprint'?"
    )


def test_unknown_parameter_embedded_in_text(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited('"${params.root_thumbprint}"', '"x-${params.nope}"'))
    assert error.field == "steps[0].args.thumbprint"
    assert error.message.startswith("unknown parameter 'nope' in ${params.nope}")


def test_reference_type_must_fit_the_argument(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited("${params.root_thumbprint}", "${params.restart}"))
    assert str(error) == (
        f"{tmp_path / NAME}:18: steps[0].args.thumbprint: ${{params.restart}} is a bool parameter; "
        "the argument takes a string"
    )


def test_embedded_reference_makes_a_string(tmp_path: Path) -> None:
    text = typed("{text: x, count: 'n${params.restart}'}")
    assert load_error(tmp_path, text).message == (
        "text with references is a string; the argument takes an integer"
    )
    # but any scalar parameter may be embedded in a string argument
    assert load(tmp_path, typed("{text: 'restart=${params.restart}'}")).steps[1].args["text"] == (
        "restart=${params.restart}"
    )


def test_exact_reference_keeps_the_parameter_type(tmp_path: Path) -> None:
    text = typed("{text: x, flag: '${params.restart}'}")
    assert load(tmp_path, text).steps[1].args["flag"] == "${params.restart}"


def test_list_parameter_cannot_be_embedded(tmp_path: Path) -> None:
    text = edited(
        "  restart:\n",
        "  names:\n    type: string_list\n    default: [a]\n  restart:\n",
        typed("{text: 'x${params.names}'}"),
    )
    error = load_error(tmp_path, text)
    assert (
        error.message == "${params.names} is a list and cannot be embedded in text; make it the whole value"
    )


def test_list_parameter_as_a_whole_list_argument(tmp_path: Path) -> None:
    text = edited(
        "  restart:\n", "  names:\n    type: string_list\n    default: [a]\n  restart:\n",
        typed("{text: x, names: '${params.names}'}"),
    )  # fmt: skip
    assert load(tmp_path, text).steps[1].args["names"] == "${params.names}"


def test_facts_references_are_checked_only_for_syntax(tmp_path: Path) -> None:
    text = typed("{text: 'CN=${facts.fqdn}', count: '${facts.cert.count}'}")
    assert load(tmp_path, text).steps[1].args["count"] == "${facts.cert.count}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${param.x}", "unknown reference scope 'param' in ${param.x}: use params or facts"),
        (
            "${params.a.b}",
            "malformed parameter reference ${params.a.b}: a parameter is ${params.NAME}, NAME in lower case, "
            "digits and '_'",
        ),
        (
            "x ${params.root_thumbprint",
            "malformed reference '${params.root_thumbprint': write ${params.NAME} or ${facts.dotted.path} "
            "($${ for a literal ${)",
        ),
    ],
)
def test_malformed_references(tmp_path: Path, value: str, message: str) -> None:
    error = load_error(tmp_path, edited('"${params.root_thumbprint}"', f'"{value}"'))
    assert (error.field, error.message) == ("steps[0].args.thumbprint", message)


def test_when_must_be_a_bool_parameter(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited('when: "${params.restart}"', 'when: "${params.root_thumbprint}"'))
    assert str(error) == (
        f"{tmp_path / NAME}:22: steps[1].when: ${{params.root_thumbprint}} is a string parameter; "
        "when needs a bool"
    )


def test_when_must_be_one_reference(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited('when: "${params.restart}"', "when: always"))
    assert error.message == "must be one reference to a bool, such as ${params.restart}, not 'always'"


def test_when_naming_an_unknown_parameter(tmp_path: Path) -> None:
    error = load_error(tmp_path, edited('when: "${params.restart}"', 'when: "${params.restrat}"'))
    assert (error.position, error.field) == (SourcePosition(tmp_path / NAME, 22), "steps[1].when")
    assert error.message.endswith("did you mean 'restart'?")


def test_when_on_a_fact_is_checked_at_run_time(tmp_path: Path) -> None:
    playbook = load(tmp_path, edited('when: "${params.restart}"', 'when: "${facts.service.running}"'))
    assert playbook.steps[1].when == "${facts.service.running}"


# --- errors: parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        (
            '    default: ""',
            "    default: 5",
            9,
            "parameters.root_thumbprint.default",
            "must be a string, not 5",
        ),
        (
            '    default: ""',
            "    default: abc",
            9,
            "parameters.root_thumbprint.default",
            "'abc' does not match the pattern '^([0-9A-Fa-f]{40})?$'",
        ),
        (
            '    pattern: "^([0-9A-Fa-f]{40})?$"',
            '    pattern: "([0-9"',
            11,
            "parameters.root_thumbprint.pattern",
            "invalid regular expression: unterminated character set at position 1",
        ),
        (
            "    default: true",
            "    default: 1",
            14,
            "parameters.restart.default",
            "must be true or false, not 1",
        ),
        (
            "    type: bool",
            "    type: boolean",
            13,
            "parameters.restart.type",
            "unknown value 'boolean'; expected one of 'string', 'int', 'bool' or 'string_list'",
        ),
        (
            "    type: bool",
            "    type: bool\n    min: 1",
            14,
            "parameters.restart.min",
            "min only applies to int parameters, not bool",
        ),
        (
            "    type: bool",
            "    type: bool\n    pattern: x",
            14,
            "parameters.restart.pattern",
            "a pattern only applies to string parameters, not bool",
        ),
        (
            "    type: bool",
            "    type: bool\n    choices: [true]",
            14,
            "parameters.restart.choices",
            "choices do not apply to bool parameters",
        ),
        (
            "  restart:",
            "  Restart:",
            12,
            "parameters.Restart",
            "invalid parameter name 'Restart': lower-case letters, digits and '_'",
        ),
        (
            "    type: bool",
            "    typ: bool",
            13,
            "parameters.restart.typ",
            "unknown key; expected one of: type, default, description, pattern, min, max, choices; "
            "did you mean 'type'?",
        ),
    ],
)
def test_parameter_declarations(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    text = edited(old, new)
    if "Restart" in new:
        text = text.replace("${params.restart}", "${params.root_thumbprint}").replace(
            '    when: "${params.root_thumbprint}"\n', ""
        )
    assert str(load_error(tmp_path, text)) == f"{tmp_path / NAME}:{line}: {field}: {message}"


def test_int_parameter_constraints(tmp_path: Path) -> None:
    declared = "  restart:\n    type: bool\n    default: true\n  tries:\n    type: int\n    default: 3\n"
    base = edited("  restart:\n    type: bool\n    default: true\n", declared)
    assert load(tmp_path, edited("    default: 3\n", "    default: 3\n    min: 1\n    max: 5\n", base))
    error = load_error(tmp_path, edited("    default: 3\n", "    default: 3\n    min: 4\n", base))
    assert (error.field, error.message) == ("parameters.tries.default", "3 is less than the minimum 4")
    error = load_error(tmp_path, edited("    default: 3\n", "    default: 3\n    min: 4\n    max: 2\n", base))
    assert (error.field, error.message) == ("parameters.tries.max", "max 2 is less than min 4")
    error = load_error(tmp_path, edited("    default: 3\n", "    default: 3\n    choices: [1, 2]\n", base))
    assert (error.field, error.message) == ("parameters.tries.default", "3 is not one of the choices: 1, 2")
    error = load_error(tmp_path, edited("    default: 3\n", "    default: 3\n    choices: [1, x]\n", base))
    assert (error.field, error.message) == ("parameters.tries.choices[1]", "a choice must be an integer")


def test_parameter_without_default_is_required(tmp_path: Path) -> None:
    playbook = load(tmp_path, edited('    default: ""\n', ""))
    assert playbook.parameters["root_thumbprint"].required


def test_every_error_is_a_playbook_error() -> None:
    assert issubclass(PlaybookError, InputError)
    assert PlaybookError("x").kind == "playbook"
