"""``[schedule]`` and ``[signing]`` in fleetfix.toml: errors name file, line and field (the job's own
line in ``[[schedule.jobs]]``), values are normalised, paths are relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_settings, toml_key_line
from orchestrator.errors import ConfigError

HEAD = """data_dir = "data"

[windows]
weekend = "Sat-Sun 22:00-04:00 Europe/Amsterdam"

[schedule]
timezone = "Europe/Amsterdam"

[[schedule.jobs]]
name = "nightly"
cron = "0 2 * * *"
"""  # the first job's table header is line 9
PLAYBOOK_JOB = '\n[[schedule.jobs]]\nname = "b"\nkind = "playbook"\nplaybook = "p"\ncron = "0 2 * * *"\n'


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "fleetfix.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value


def test_a_valid_schedule(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        HEAD
        + """
[[schedule.jobs]]
name = "weekend-rras"
kind = "playbook"
playbook = "rras-root-thumbprint"
cron = "30  22 * * sat"
timezone = "America/New_York"
selector = "role:rras and tag:site=ams"
window = "weekend"
params = { restart = true }
rollout = { canary = 1, max_fail = "10%" }
approved_by = "bob@corp"
approved_digest = "0123456789ab"
approval_expires = 2026-12-31
""",
    )
    jobs = settings.schedule.jobs  # type: ignore[attr-defined]
    assert [job.name for job in jobs] == ["nightly", "weekend-rras"]
    assert jobs[1].cron == "30 22 * * sat"  # whitespace normalised
    assert settings.schedule.zone_of(jobs[0]) == "Europe/Amsterdam"  # type: ignore[attr-defined]
    assert settings.schedule.zone_of(jobs[1]) == "America/New_York"  # type: ignore[attr-defined]
    assert (jobs[1].rollout.canary, jobs[1].rollout.max_fail, jobs[1].params) == (1, "10%", {"restart": True})


@pytest.mark.parametrize(
    ("extra", "line", "field", "message"),
    [
        (
            '\n[[schedule.jobs]]\nname = "b"\ncron = "0 25 * * *"\n',
            15,
            "schedule.jobs.1.cron",
            "job 'b': '0 25 * * *': hour 25 is out of range 0-23",
        ),
        ('\n[[schedule.jobs]]\nname = "b"\ncron = "0 2 * *"\n', 15, "schedule.jobs.1.cron", "has 4 fields"),
        (
            '\n[[schedule.jobs]]\nname = "b"\ncron = "0 2 * * *"\ntimezone = "Europe/Amsterdm"\n',
            16,
            "schedule.jobs.1.timezone",
            "did you mean Europe/Amsterdam?",
        ),
        (
            '\n[[schedule.jobs]]\nname = "nightly"\ncron = "0 3 * * *"\n',
            14,
            "schedule.jobs.1.name",
            "job name 'nightly' is already used by job 1",
        ),
        (
            PLAYBOOK_JOB + 'window = "weekendd"\n',
            18,
            "schedule.jobs.1.window",
            "did you mean 'weekend'?",
        ),
        (
            PLAYBOOK_JOB + 'window = "25:00-04:00 UTC"\n',
            18,
            "schedule.jobs.1.window",
            "not a time of day",
        ),
        (
            '\n[[schedule.jobs]]\nname = "b"\ncron = "0 2 * * *"\nselector = "role:rras and"\n',
            16,
            "schedule.jobs.1.selector",
            "job 'b':",
        ),
        (
            '\n[[schedule.jobs]]\nname = "b"\ncron = "0 2 * * *"\nplaybook = "x"\n',
            13,
            "schedule.jobs.1",
            "playbook: only playbook jobs take these",
        ),
        (
            '\n[[schedule.jobs]]\nname = "b"\nkind = "playbook"\ncron = "0 2 * * *"\n',
            13,
            "schedule.jobs.1",
            "a playbook job needs `playbook`",
        ),
        (
            '\n[[schedule.jobs]]\nname = "b"\nkind = "report"\ncron = "0 2 * * *"\n',
            15,
            "schedule.jobs.1.kind",
            "'sweep' or 'playbook'",
        ),
        (
            '\n[[schedule.jobs]]\nname = "b"\ncron = "0 2 * * *"\ncolour = "red"\n',
            16,
            "schedule.jobs.1.colour",
            "unknown setting",
        ),
        (
            '\n[[schedule.jobs]]\nname = "b c"\ncron = "0 2 * * *"\n',
            14,
            "schedule.jobs.1.name",
            "should match pattern",
        ),
        (
            PLAYBOOK_JOB + 'rollout = { max_fail = "lots" }\n',
            18,
            "schedule.jobs.1.rollout.max_fail",
            "is not a failure budget",
        ),
        (
            PLAYBOOK_JOB + 'approved_digest = "XYZ"\n',
            18,
            "schedule.jobs.1.approved_digest",
            "should match pattern",
        ),
        ('\n[[schedule.jobs]]\ncron = "0 2 * * *"\n', 13, "schedule.jobs.1.name", "Field required"),
    ],
)
def test_job_errors_name_the_line_of_the_job(
    tmp_path: Path, extra: str, line: int, field: str, message: str
) -> None:
    problem = error(tmp_path, HEAD + extra)
    assert (problem.field, problem.position.line if problem.position else None) == (field, line), str(problem)
    assert problem.position is not None
    assert problem.position.path is not None
    assert problem.position.path.name == "fleetfix.toml"
    assert message in problem.message, problem.message


def test_a_job_needs_a_zone(tmp_path: Path) -> None:
    problem = error(tmp_path, 'data_dir = "data"\n\n[[schedule.jobs]]\nname = "a"\ncron = "0 2 * * *"\n')
    assert (problem.field, problem.position.line if problem.position else None) == (
        "schedule.jobs.0.timezone",
        3,
    )
    assert "required: an IANA zone" in problem.message


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('[schedule]\ntimezone = "Mars/Olympus"\n', "schedule.timezone", "unknown time zone"),
        ("[schedule]\nlease_ttl_s = 1\n", "schedule.lease_ttl_s", "greater than or equal to 5"),
        ('[signing]\nkey_file = "k.pem"\n', "signing", "missing: certificate, cert_store"),
        ('[signing]\nkey_password = "hunter2"\n', "signing.key_password", "vault:"),
        ('[signing]\ndigest = "md5"\n', "signing.digest", "'sha256'"),
    ],
)
def test_section_errors(tmp_path: Path, text: str, field: str, message: str) -> None:
    problem = error(tmp_path, text)
    assert problem.field == field, str(problem)
    assert message in problem.message
    assert "hunter2" not in str(problem)


def test_signing_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[signing]\nkey_file = "keys/beat.key"\ncertificate = "keys/beat.pem"\ncert_store = "trusted"\n'
        'key_password = "env:SIGNING_KEY_PASSWORD"\n',
    )
    signing = settings.signing  # type: ignore[attr-defined]
    assert signing.enabled
    assert (signing.key_file, signing.certificate, signing.cert_store) == (
        tmp_path / "keys" / "beat.key",
        tmp_path / "keys" / "beat.pem",
        tmp_path / "trusted",
    )
    assert signing.key_password == "env:SIGNING_KEY_PASSWORD"


def test_a_schedule_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose files set a schedule without a config file (docs/deploy.md)."""
    monkeypatch.setenv(
        "FLEETFIX_SCHEDULE", '{"timezone": "UTC", "jobs": [{"name": "sweep", "cron": "*/30 * * * *"}]}'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLEETFIX_CONFIG", raising=False)
    settings = load_settings(None)
    assert [job.name for job in settings.schedule.jobs] == ["sweep"]


def test_array_table_lines() -> None:
    text = "a = 1\n[[t.jobs]]\nname = 'x'\n[[t.jobs]]\nname = 'y'\nsub = { k = 1 }\n[other]\nname = 'z'\n"
    assert toml_key_line(text, ("t", "jobs", 1, "name")) == 5
    assert toml_key_line(text, ("t", "jobs", 0, "name")) == 3
    assert toml_key_line(text, ("t", "jobs", 1, "missing")) == 4  # the entry's header
    assert toml_key_line(text, ("t", "jobs", 1, "sub", "k")) == 6  # inside an inline table
    assert toml_key_line(text, ("other", "name")) == 8  # plain tables as before
