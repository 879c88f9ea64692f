"""Settings: ``fleetfix.toml`` plus ``FLEETFIX_*`` environment overrides.

Precedence, highest first: values passed by the caller (CLI options), ``FLEETFIX_*`` variables,
the TOML file, built-in defaults.  The file is found by ``--config``, then ``FLEETFIX_CONFIG``, then
``./fleetfix.toml``; without any file fleetfix runs on defaults (data in the user's data directory,
SQLite store, in-process executor).

Relative paths in the TOML file are relative to the file's directory, so a config can be moved
together with its inventory; relative paths from the environment are relative to the working
directory, as a shell user expects.  Nested fields take a double underscore in the environment:
``FLEETFIX_GRAPH__TENANT_ID``.  List fields (``inventory``, ``playbook_paths``) accept a JSON list or
paths separated by ``os.pathsep``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core.core_schema import ValidationInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from orchestrator.credentials.reference import parse_reference
from orchestrator.errors import ConfigError, SourcePosition

CONFIG_FILENAME = "fleetfix.toml"
ENV_PREFIX = "FLEETFIX_"
ENV_CONFIG = "FLEETFIX_CONFIG"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def default_data_dir() -> Path:
    """Where fleetfix keeps its store and key material when nothing says otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fleetfix"


class GraphSettings(BaseModel):
    """The Intune tenant fleetfix talks to over Microsoft Graph. Secrets are references only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str | None = None
    client_id: str | None = None
    authority: str = DEFAULT_AUTHORITY
    graph_url: str = DEFAULT_GRAPH_URL
    client_secret: str | None = Field(
        default=None, description="credential reference (vault:NAME or env:VAR) holding the client secret"
    )
    certificate: Path | None = Field(default=None, description="PEM or PFX file for certificate assertion")
    certificate_password: str | None = Field(
        default=None, description="credential reference for the PFX or encrypted PEM password"
    )
    ca_bundle: Path | None = Field(default=None, description="CA bundle for the Graph and authority TLS")

    @field_validator("client_secret", "certificate_password")
    @classmethod
    def _must_be_reference(cls, value: str | None) -> str | None:
        return None if value is None else str(parse_reference(value))

    @property
    def configured(self) -> bool:
        return bool(self.tenant_id and self.client_id and (self.client_secret or self.certificate))


WebhookFormat = Literal["json", "teams", "slack"]
WebhookEvent = Literal["sweep", "run"]


class WebhookSettings(BaseModel):
    """One ``[[notify.webhooks]]`` entry: where to post a summary after a sweep (or a run).

    ``url`` is an http(s) URL or, since webhook URLs carry their token, a credential reference
    (``vault:NAME``: the entry's secret is the URL; ``env:VAR``); it is kept out of reprs and logs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(repr=False, description="http(s) URL, or vault:NAME / env:VAR holding it")
    format: WebhookFormat = "json"
    events: tuple[WebhookEvent, ...] = ("sweep",)
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="seconds per attempt and phase")
    retries: int = Field(default=3, ge=0, le=10, description="attempts after the first on 5xx, 429, errors")

    @field_validator("url")
    @classmethod
    def _url_or_reference(cls, value: str) -> str:
        # The messages never repeat the value: it may be a URL with its token.
        text = value.strip()
        if text.startswith(("vault:", "env:")):
            return str(parse_reference(text))
        parts = urlsplit(text)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an http(s) URL or a credential reference (vault:NAME, env:VAR)")
        return text

    @property
    def is_reference(self) -> bool:
        return self.url.startswith(("vault:", "env:"))


class NotifySettings(BaseModel):
    """``[notify]``: notifications after a sweep (docs/reports.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: tuple[WebhookSettings, ...] = ()


class CelerySettings(BaseModel):
    """``[celery]``: how work spreads over Celery workers once ``broker_url`` is set (docs/celery.md).

    The defaults follow the measured advice in the design's Celery notes: batches of about a hundred
    hosts, a hard time limit of 15 minutes per batch, a visibility timeout of two hours (well above a
    batch plus any retry delay, so Redis never re-delivers a batch that is still running).  Tests
    shorten them to provoke redelivery within seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_prefix: str = Field(
        default="fleetfix",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="queues are PREFIX.winrm, PREFIX.graph and PREFIX.control",
    )
    batch_size: int = Field(default=100, ge=1, le=1000, description="targets or hosts per task (50-200)")
    soft_time_limit_s: float = Field(default=840.0, gt=0, description="a batch stops starting hosts")
    time_limit_s: float = Field(default=900.0, gt=0, description="a batch's process is killed")
    control_time_limit_s: float = Field(
        default=6 * 3600.0, gt=0, description="hard limit of a controller task (it drives a whole run)"
    )
    visibility_timeout_s: float = Field(
        default=7200.0, gt=0, description="Redis: an unacknowledged batch comes back after this long"
    )
    unacked_restore_interval_s: float = Field(
        default=10.0, gt=0, description="Redis: how often a worker looks for batches to bring back"
    )
    lease_ttl_s: float = Field(
        default=300.0, gt=0, description="a dead worker keeps its hosts locked this long at most"
    )
    poll_s: float = Field(default=1.0, gt=0, description="how often the coordinator reads progress")
    redispatch_after_s: float | None = Field(
        default=None, gt=0, description="re-send hosts no worker touched for this long (default: the VT)"
    )
    worker_concurrency: int | None = Field(
        default=None, ge=1, le=256, description="batches one worker runs at once (default: CPUs)"
    )
    result_backend: str | None = Field(
        default=None, description="none: outcomes go to the store, not to a result backend"
    )
    retry_max: int = Field(default=5, ge=0, le=100, description="retries of a batch on store errors")
    retry_backoff_max_s: float = Field(default=300.0, gt=0, description="longest wait between retries")

    @model_validator(mode="after")
    def _soft_below_hard(self) -> CelerySettings:
        if self.soft_time_limit_s >= self.time_limit_s:
            raise ValueError("soft_time_limit_s must be below time_limit_s")
        return self

    @property
    def redispatch_after(self) -> float:
        return self.redispatch_after_s or self.visibility_timeout_s


# --- [schedule] (docs/schedule.md) -----------------------------------------------------------------

JobKind = Literal["sweep", "playbook"]
JOB_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}"


class ScheduleRollout(BaseModel):
    """A scheduled playbook's rollout overrides (the playbook's own rollout defaults otherwise)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    canary: int | None = Field(default=None, ge=0, description="targets in the canary wave")
    wave_size: int | None = Field(default=None, ge=1, description="targets per later wave")
    max_fail: str | None = Field(default=None, description="failure budget: a count (3) or a share (10%)")

    @field_validator("max_fail", mode="before")
    @classmethod
    def _budget(cls, value: object) -> object:
        if value is None:
            return None
        text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
        from orchestrator.engine.model import FailureBudget  # noqa: PLC0415 (the engine imports config)
        from orchestrator.errors import InputError  # noqa: PLC0415

        try:
            FailureBudget.parse(text)
        except InputError as exc:
            raise ValueError(exc.message) from None
        return text


class ScheduleJobSettings(BaseModel):
    """One ``[[schedule.jobs]]`` entry: what runs, when (cron in the job's zone), on which hosts.

    A playbook whose risk is not ``none`` runs only when the job names who approved it
    (``approved_by``) and the digest of the job they approved (``approved_digest``, shown by
    ``fleetfix beat --list``); a changed job or playbook needs a new approval (docs/schedule.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=f"^{JOB_NAME_PATTERN}$", description="unique; keys the job's fires")
    kind: JobKind = "sweep"
    cron: str = Field(description="minute hour day-of-month month day-of-week, in `timezone`")
    timezone: str | None = Field(default=None, description="IANA zone; default: [schedule] timezone")
    selector: str | None = Field(default=None, description="--limit expression; default: every host")
    enabled: bool = True
    # --- playbook jobs ---
    playbook: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="playbook parameters NAME = VALUE")
    window: str | None = Field(default=None, description="change window: a [windows] name or a spec")
    rollout: ScheduleRollout = Field(default_factory=ScheduleRollout)
    all_hosts: bool = Field(default=False, description="every selected host of the role, not only flagged")
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    approved_by: str | None = Field(default=None, min_length=1, max_length=255)
    approved_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{12,64}$")
    approval_expires: date | None = Field(default=None, description="last local date the approval holds")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str, info: ValidationInfo) -> str:
        from orchestrator.errors import InputError  # noqa: PLC0415
        from orchestrator.schedule.cron import CronExpr  # noqa: PLC0415 (keeps config light)

        try:
            return CronExpr.parse(value).text
        except InputError as exc:
            raise ValueError(f"{_job_label(info)}{exc.message}") from None

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str | None, info: ValidationInfo) -> str | None:
        try:
            return None if value is None else _check_zone(value)
        except ValueError as exc:
            raise ValueError(f"{_job_label(info)}{exc}") from None

    @field_validator("selector")
    @classmethod
    def _valid_selector(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        from orchestrator.errors import SelectorError  # noqa: PLC0415
        from orchestrator.inventory.selectors import parse_selector  # noqa: PLC0415

        try:
            parse_selector(value)
        except SelectorError as exc:
            raise ValueError(f"{_job_label(info)}{exc.message}") from None
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> ScheduleJobSettings:
        if self.kind == "playbook":
            if not self.playbook:
                raise ValueError("a playbook job needs `playbook` (a playbook id)")
            return self
        given = [
            key
            for key in ("playbook", "window", "approved_by", "approved_digest", "approval_expires",
                        "concurrency")
            if getattr(self, key) is not None
        ]  # fmt: skip
        if self.params:
            given.append("params")
        if self.all_hosts:
            given.append("all_hosts")
        if self.rollout != ScheduleRollout():
            given.append("rollout")
        if given:
            raise ValueError(f'{", ".join(given)}: only playbook jobs take these (kind = "playbook")')
        return self


def _job_label(info: ValidationInfo) -> str:
    """``job 'NAME': `` when the job's name is valid (it is checked before the other fields)."""
    name = info.data.get("name")
    return f"job {name!r}: " if isinstance(name, str) else ""


def _check_zone(value: str) -> str:
    from orchestrator.engine.windows import _zone  # noqa: PLC0415
    from orchestrator.errors import InputError  # noqa: PLC0415

    try:
        return _zone(value, value, "timezone").key
    except InputError as exc:
        message = exc.message.removeprefix(f"{value!r}: ")
        raise ValueError(message) from None


class ScheduleSettings(BaseModel):
    """``[schedule]``: the jobs ``fleetfix beat`` fires, and how the beat keeps its one lease."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = Field(default=None, description="IANA zone for jobs that name none")
    catch_up_s: float = Field(
        default=3600.0, ge=0, le=7 * 86400, description="a fire missed by less than this still runs"
    )
    lease_ttl_s: float = Field(
        default=60.0, ge=5, le=3600, description="a dead beat's lease expires after this long"
    )
    jobs: tuple[ScheduleJobSettings, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)

    def zone_of(self, job: ScheduleJobSettings) -> str:
        """The job's zone: its own, else the schedule's (checked when the settings load)."""
        zone = job.timezone or self.timezone
        assert zone is not None
        return zone

    def job(self, name: str) -> ScheduleJobSettings | None:
        return next((job for job in self.jobs if job.name == name), None)


# --- [signing] (docs/deploy.md, "Message signing") ----------------------------------------------


class SigningSettings(BaseModel):
    """``[signing]``: Celery messages signed with an RSA key; workers accept only messages signed
    by a certificate in ``cert_store``. The key file is a path, its password a credential reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_file: Path | None = Field(default=None, description="PEM private key (RSA) this process signs with")
    certificate: Path | None = Field(default=None, description="PEM certificate of that key")
    cert_store: Path | None = Field(default=None, description="directory of trusted signers' *.pem")
    key_password: str | None = Field(default=None, description="credential reference (vault:NAME, env:VAR)")
    digest: Literal["sha256", "sha384", "sha512"] = "sha256"
    max_age_s: float = Field(
        default=6 * 3600.0, gt=0, le=7 * 86400, description="deadline of a message sent without expires"
    )

    @field_validator("key_password")
    @classmethod
    def _must_be_reference(cls, value: str | None) -> str | None:
        return None if value is None else str(parse_reference(value))

    @model_validator(mode="after")
    def _all_or_nothing(self) -> SigningSettings:
        given = {"key_file": self.key_file, "certificate": self.certificate, "cert_store": self.cert_store}
        missing = [name for name, value in given.items() if value is None]
        if 0 < len(missing) < len(given):
            raise ValueError(
                f"signing needs key_file, certificate and cert_store; missing: {', '.join(missing)}"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.key_file is not None


class Settings(BaseSettings):
    """Everything fleetfix needs to know about its surroundings. Immutable once loaded."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    store_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    broker_url: str | None = Field(default=None, description="Celery broker; none = in-process executor")
    inventory: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    playbook_paths: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    master_key_file: Path | None = Field(default=None, description="default: data_dir/master.key")
    credentials_file: Path | None = Field(default=None, description="default: data_dir/credentials.json")
    log_level: LogLevel = "WARNING"
    graph: GraphSettings = Field(default_factory=GraphSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    windows: dict[str, str] = Field(
        default_factory=dict,
        description="named change windows: name -> '[DAYS] HH:MM-HH:MM ZONE' (see docs/engine.md)",
    )
    """Named change windows for ``--window NAME``, e.g. ``weekend = "Sat-Sun 22:00-04:00
    Europe/Amsterdam"`` in a ``[windows]`` table; each value is checked when the settings load."""
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    """Scheduled sweeps and playbook runs for ``fleetfix beat`` (``[schedule]``, docs/schedule.md)."""
    signing: SigningSettings = Field(default_factory=SigningSettings)
    """Optional Celery message signing (``[signing]``, docs/deploy.md)."""
    # Where the settings came from; set by load_settings, not by users.
    config_file: Path | None = Field(default=None, exclude=True)

    @field_validator("inventory", "playbook_paths", mode="before")
    @classmethod
    def _split_path_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json  # noqa: PLC0415 - only needed for this rare form

                return json.loads(text)
            return [part for part in text.split(os.pathsep) if part]
        return value

    @field_validator("windows")
    @classmethod
    def _valid_windows(cls, value: dict[str, str]) -> dict[str, str]:
        # imported here: the engine imports this module
        from orchestrator.engine.windows import ChangeWindow  # noqa: PLC0415
        from orchestrator.errors import InputError  # noqa: PLC0415

        for name, spec in value.items():
            try:
                ChangeWindow.parse(spec, name=name)
            except InputError as exc:
                raise ValueError(f"window {name!r}: {exc.message}") from None
        return value

    @model_validator(mode="after")
    def _valid_schedule(self) -> Settings:
        """Checks across jobs and sections, reported at the job's own line: unique names, a zone for
        every job, windows that name a configured window or are a spec."""
        from orchestrator.engine.windows import resolve_window  # noqa: PLC0415
        from orchestrator.errors import InputError  # noqa: PLC0415

        seen: dict[str, int] = {}
        for index, job in enumerate(self.schedule.jobs):
            if job.name in seen:
                _schedule_error(
                    index, "name", f"job name {job.name!r} is already used by job {seen[job.name] + 1}"
                )
            seen[job.name] = index
            if job.timezone is None and self.schedule.timezone is None:
                _schedule_error(
                    index, "timezone", "required: an IANA zone (Europe/Amsterdam, UTC) here or in [schedule]"
                )
            if job.window is not None:
                try:
                    resolve_window(job.window, self)
                except InputError as exc:
                    _schedule_error(index, "window", exc.message)
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def store_url_resolved(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'fleetfix.db'}"

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def credentials_path(self) -> Path:
        return self.credentials_file or self.data_dir / "credentials.json"

    @property
    def uses_sqlite(self) -> bool:
        return self.store_url_resolved.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML source is injected by load_settings through init kwargs at the lowest priority
        # (see _TomlSource); no dotenv or secrets-dir sources: secrets come by reference only.
        return (init_settings, env_settings, _TomlSource(settings_cls))


def _schedule_error(index: int, field: str, message: str) -> None:
    """Fail validation at ``schedule.jobs[index].field`` so the error names the job's own line."""
    error = pydantic_core.PydanticCustomError("schedule", "{message}", {"message": message})
    details = pydantic_core.InitErrorDetails(type=error, loc=("schedule", "jobs", index, field), input=None)
    raise ValidationError.from_exception_data("Settings", [details])


# --- TOML loading -------------------------------------------------------------------------------

_PATH_KEYS_TOP = {"data_dir", "master_key_file", "credentials_file"}
_PATH_LIST_KEYS = {"inventory", "playbook_paths"}
_PATH_KEYS_GRAPH = {"certificate", "ca_bundle"}
_PATH_KEYS_SIGNING = {"key_file", "certificate", "cert_store"}

# The TOML document being loaded; load_settings sets it around model construction so the settings
# class stays a plain pydantic-settings class. A ContextVar keeps concurrent loads apart.
_toml_data: ContextVar[dict[str, Any]] = ContextVar("fleetfix_toml_data", default={})  # noqa: B039


class _TomlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _toml_data.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_data.get())


def find_config_file(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to use, or None to run on defaults. An explicitly named file must exist."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError("config file not found", position=SourcePosition(explicit))
        return explicit
    from_env = environ.get(ENV_CONFIG)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"config file named by {ENV_CONFIG} not found", position=SourcePosition(path))
        return path
    local = Path.cwd() / CONFIG_FILENAME
    return local if local.is_file() else None


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", position=SourcePosition(path)) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, column = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc)) or "invalid TOML"
        raise ConfigError(f"invalid TOML: {message}", position=SourcePosition(path, line, column)) from None


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative paths in the file relative to the file's directory."""

    def resolve(value: object) -> object:
        return str((base / value).resolve()) if isinstance(value, str) and value else value

    out = dict(data)
    for key in _PATH_KEYS_TOP & out.keys():
        out[key] = resolve(out[key])
    for key in _PATH_LIST_KEYS & out.keys():
        if isinstance(out[key], list):
            out[key] = [resolve(item) for item in out[key]]
        else:
            out[key] = resolve(out[key])
    graph = out.get("graph")
    if isinstance(graph, dict):
        graph = dict(graph)
        for key in _PATH_KEYS_GRAPH & graph.keys():
            graph[key] = resolve(graph[key])
        out["graph"] = graph
    signing = out.get("signing")
    if isinstance(signing, dict):
        signing = dict(signing)
        for key in _PATH_KEYS_SIGNING & signing.keys():
            signing[key] = resolve(signing[key])
        out["signing"] = signing
    return out


def toml_key_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line where a dotted key ``loc`` (``('graph', 'tenant_id')``) is set in TOML text.

    A small scanner is enough because fleetfix's config has one level of tables; it accepts both
    ``[graph]`` + ``tenant_id = ...`` and ``graph.tenant_id = ...`` forms.
    """
    if any(isinstance(part, int) for part in loc):
        return _array_table_key_line(text, loc)
    keys = [str(part) for part in loc if isinstance(part, str)]
    if not keys:
        return None
    table: list[str] = []
    table_line: int | None = None  # fallback: the header of the table that holds the key
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.fullmatch(r"\[\s*([A-Za-z0-9_.\-\s]+?)\s*\]", line)
        if header:
            table = [part.strip() for part in header.group(1).split(".")]
            if table == keys[: len(table)]:
                table_line = number
            continue
        key = re.match(r"([A-Za-z0-9_.\-\"' ]+?)\s*=", line)
        if key:
            full = table + [part.strip().strip("\"'") for part in key.group(1).split(".")]
            if full == keys[: len(full)]:
                return number
    return table_line


def _array_table_key_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """:func:`toml_key_line` for a key in an array of tables (``[[schedule.jobs]]``, the index in
    ``loc``): the key's line in that entry, else the line of the longest part of ``loc`` found
    (the entry's header when the key is missing)."""
    wanted = [str(part) for part in loc]
    counts: dict[tuple[str, ...], int] = {}
    path: list[str] = []
    best: tuple[int, int] | None = None  # (matched length, line)

    def consider(full: list[str], number: int) -> None:
        nonlocal best
        if full == wanted[: len(full)] and (best is None or len(full) > best[0]):
            best = (len(full), number)

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        array = re.fullmatch(r"\[\[\s*([A-Za-z0-9_.\-\s]+?)\s*\]\]", line)
        table = None if array else re.fullmatch(r"\[\s*([A-Za-z0-9_.\-\s]+?)\s*\]", line)
        if array or table:
            header = array or table
            assert header is not None
            parts = tuple(part.strip() for part in header.group(1).split("."))
            path = list(parts)
            if array:
                counts[parts] = counts.get(parts, -1) + 1
                path.append(str(counts[parts]))
            consider(path, number)
            continue
        key = re.match(r"([A-Za-z0-9_.\-\"' ]+?)\s*=", line)
        if key:
            consider(path + [part.strip().strip("\"'") for part in key.group(1).split(".")], number)
    return None if best is None else best[1]


def _env_name(loc: tuple[str | int, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc if isinstance(part, str))


def _explain(exc: ValidationError, path: Path | None, text: str, environ: Mapping[str, str]) -> ConfigError:
    """Turn the first pydantic error into a ConfigError that names file, line and field, or the variable."""
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    field = ".".join(str(part) for part in loc)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    env_name = _env_name(loc)
    if env_name in environ:
        return ConfigError(message, field=env_name)
    if path is not None:
        return ConfigError(message, position=SourcePosition(path, toml_key_line(text, loc)), field=field)
    return ConfigError(message, field=field)


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the config file (if any), ``FLEETFIX_*`` variables and ``overrides``."""
    env = os.environ
    path = find_config_file(config, env)
    data: dict[str, Any] = {}
    text = ""
    if path is not None:
        raw, text = _read_toml(path)
        data = _resolve_paths(raw, path.parent.resolve())
    token = _toml_data.set(data)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise _explain(exc, path, text, env) from None
    finally:
        _toml_data.reset(token)
    return settings.model_copy(update={"config_file": path.resolve() if path else None})


__all__ = [
    "CONFIG_FILENAME",
    "CelerySettings",
    "GraphSettings",
    "NotifySettings",
    "ScheduleJobSettings",
    "ScheduleRollout",
    "ScheduleSettings",
    "Settings",
    "SigningSettings",
    "WebhookSettings",
    "default_data_dir",
    "find_config_file",
    "load_settings",
    "toml_key_line",
]
