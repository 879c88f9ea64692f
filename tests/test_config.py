"""Settings: discovery, precedence, path resolution and errors that name file, line and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.config import load_settings, toml_key_line
from orchestrator.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No FLEETFIX_* variable of the developer's shell may leak into these tests."""
    for name in list(os.environ):
        if name.startswith("FLEETFIX_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.config_file is None
    assert settings.data_dir == tmp_path / "xdg" / "fleetfix"
    assert settings.store_url_resolved == f"sqlite:///{tmp_path / 'xdg' / 'fleetfix' / 'fleetfix.db'}"
    assert settings.broker_url is None
    assert settings.uses_sqlite
    assert settings.master_key_path == settings.data_dir / "master.key"
    assert not settings.graph.configured


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    config = write(
        tmp_path / "site" / "fleetfix.toml",
        'data_dir = "state"\ninventory = ["inv/a.yaml", "b.yaml"]\n[graph]\ncertificate = "pki/app.pem"\n',
    )
    settings = load_settings(config)
    site = (tmp_path / "site").resolve()
    assert settings.data_dir == site / "state"
    assert settings.inventory == [site / "inv" / "a.yaml", site / "b.yaml"]
    assert settings.graph.certificate == site / "pki" / "app.pem"
    assert settings.config_file == config.resolve()


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "fleetfix.toml", 'log_level = "INFO"\n')
    assert load_settings().log_level == "INFO"  # working directory
    env_file = write(tmp_path / "env" / "fleetfix.toml", 'log_level = "ERROR"\n')
    monkeypatch.setenv("FLEETFIX_CONFIG", str(env_file))
    assert load_settings().log_level == "ERROR"  # FLEETFIX_CONFIG beats the working directory
    explicit = write(tmp_path / "explicit.toml", 'log_level = "DEBUG"\n')
    assert load_settings(explicit).log_level == "DEBUG"  # --config beats both


def test_precedence_overrides_then_env_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(
        tmp_path / "fleetfix.toml",
        'broker_url = "redis://file"\nlog_level = "INFO"\n'
        '[graph]\ntenant_id = "from-file"\nclient_id = "c"\n',
    )
    monkeypatch.setenv("FLEETFIX_BROKER_URL", "redis://env")
    monkeypatch.setenv("FLEETFIX_GRAPH__TENANT_ID", "from-env")
    settings = load_settings(config, log_level="DEBUG")
    assert settings.broker_url == "redis://env"
    assert settings.log_level == "DEBUG"
    # A nested variable overrides one key and keeps the rest of the table.
    assert settings.graph.tenant_id == "from-env"
    assert settings.graph.client_id == "c"


def test_path_lists_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETFIX_INVENTORY", "a.yaml:b.yaml")
    assert load_settings().inventory == [Path("a.yaml"), Path("b.yaml")]
    monkeypatch.setenv("FLEETFIX_INVENTORY", '["c.yaml"]')
    assert load_settings().inventory == [Path("c.yaml")]


def test_settings_are_immutable() -> None:
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.broker_url = "redis://x"  # type: ignore[misc]


def test_missing_explicit_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_missing_file_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETFIX_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match="FLEETFIX_CONFIG"):
        load_settings()


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    config = write(tmp_path / "fleetfix.toml", 'data_dir = "x"\nbroker_url = \n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value).startswith(f"{config}:2:")
    assert caught.value.position is not None
    assert caught.value.position.line == 2


def test_unknown_key_names_file_line_and_field(tmp_path: Path) -> None:
    config = write(tmp_path / "fleetfix.toml", 'data_dir = "x"\n\n[graph]\ntenant = "t"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == f"{config}:4: graph.tenant: unknown setting"


def test_a_secret_in_place_of_a_reference_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = write(tmp_path / "fleetfix.toml", '[graph]\nclient_secret = "S3cr3t-value!"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert message.startswith(f"{config}:2: graph.client_secret:")
    assert "S3cr3t-value!" not in message
    assert "S3cr3t-value!" not in repr(caught.value.to_dict())


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETFIX_LOG_LEVEL", "chatty")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.field == "FLEETFIX_LOG_LEVEL"


@pytest.mark.parametrize(
    ("text", "loc", "line"),
    [
        ("a = 1\nb = 2\n", ("b",), 2),
        ('a = 1\n[graph]\ntenant_id = "x"\n', ("graph", "tenant_id"), 3),
        ('graph.tenant_id = "x"\n', ("graph", "tenant_id"), 1),
        ("[graph]\n", ("graph", "tenant_id"), 1),
        ("a = 1\n", ("zzz",), None),
    ],
)
def test_toml_key_line(text: str, loc: tuple[str, ...], line: int | None) -> None:
    assert toml_key_line(text, loc) == line
