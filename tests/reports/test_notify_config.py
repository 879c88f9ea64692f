"""``[[notify.webhooks]]`` in fleetfix.toml and FLEETFIX_NOTIFY__WEBHOOKS: defaults, validation, and
error messages that never repeat a URL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.errors import ConfigError

SECRET_URL = "https://hooks.slack.com/services/T000/B000/S3CRET-T0KEN"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FLEETFIX_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleetfix.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_webhooks_from_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[[notify.webhooks]]
url = "{SECRET_URL}"
format = "slack"

[[notify.webhooks]]
url = "vault:teams-hook"
format = "teams"
events = ["sweep", "run"]
timeout_s = 2.5
retries = 0
""",
    )
    first, second = load_settings(path).notify.webhooks
    assert (first.url, first.format, first.events, first.timeout_s, first.retries) == (
        SECRET_URL,
        "slack",
        ("sweep",),
        10.0,
        3,
    )
    assert not first.is_reference
    assert (second.url, second.is_reference, second.events, second.timeout_s, second.retries) == (
        "vault:teams-hook",
        True,
        ("sweep", "run"),
        2.5,
        0,
    )
    assert SECRET_URL not in repr(load_settings(path))


def test_no_webhooks_by_default(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")).notify.webhooks == ()


@pytest.mark.parametrize(
    ("entry", "field", "text"),
    [
        ('url = "hooks.slack.com/services/T000/B000/S3CRET-T0KEN"', "notify.webhooks.0.url", "http(s) URL"),
        (f'url = "{SECRET_URL}"\nformat = "email"', "notify.webhooks.0.format", "'json', 'teams' or 'slack'"),
        (f'url = "{SECRET_URL}"\nretries = 99', "notify.webhooks.0.retries", "less than or equal to 10"),
        (f'url = "{SECRET_URL}"\nsecret = "x"', "notify.webhooks.0.secret", "unknown setting"),
        ('format = "json"', "notify.webhooks.0.url", "Field required"),
    ],
)
def test_invalid_webhooks_are_config_errors(tmp_path: Path, entry: str, field: str, text: str) -> None:
    path = write(tmp_path, f"[[notify.webhooks]]\n{entry}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.field == field
    assert text in str(raised.value)
    assert "S3CRET-T0KEN" not in str(raised.value)
    assert str(path) in str(raised.value)


def test_webhooks_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = [{"url": "env:HOOK", "format": "teams"}, {"url": SECRET_URL}]
    monkeypatch.setenv("FLEETFIX_NOTIFY__WEBHOOKS", json.dumps(hooks))
    first, second = load_settings(write(tmp_path, "")).notify.webhooks
    assert (first.url, first.format, second.url, second.format) == ("env:HOOK", "teams", SECRET_URL, "json")
