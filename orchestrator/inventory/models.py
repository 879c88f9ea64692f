"""Inventory values: hosts, their WinRM settings, groups, and the inventory itself.

Immutable and free of I/O.  The models validate what can be judged from the values alone (names,
addresses, ports, combinations such as Basic auth over plain HTTP); the loader adds what needs the
file system or the whole file set (a CA bundle exists, a group is defined, a host is unique).

Partial validation: the loader checks each *layer* of settings (an inventory's ``defaults``, a group,
a host entry) on its own, before layers are merged into a host.  It passes the validation context
``{"partial": True}``: field types are checked, rules that combine fields wait for the merged host.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from orchestrator.credentials.reference import CredentialRef, parse_reference

PARTIAL = "partial"
"""Validation-context key: check a layer's fields, not the rules that combine them (see module doc)."""
BASE_DIR = "base_dir"
"""Validation-context key: directory that relative paths (``ca_bundle``) are relative to."""


class Role(StrEnum):
    """What a host is in an Always On VPN deployment; decides which probes and checks apply."""

    ENDPOINT = "endpoint"
    RRAS = "rras"
    CA = "ca"


class Transport(StrEnum):
    HTTPS = "https"
    HTTP = "http"


class WinRMAuth(StrEnum):
    NEGOTIATE = "negotiate"
    NTLM = "ntlm"
    KERBEROS = "kerberos"
    BASIC = "basic"
    CERTIFICATE = "certificate"
    CREDSSP = "credssp"


DEFAULT_PORTS: Mapping[Transport, int] = {Transport.HTTPS: 5986, Transport.HTTP: 5985}

# Names appear in selectors, where whitespace, parentheses and ':' separate tokens, so they are kept
# to the characters DNS and NetBIOS names use anyway.
NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,252}"
TAG_KEY_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}"
_CONFIGURATION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def field_error(field_name: str, message: str) -> PydanticCustomError:
    """An error about one field raised by a whole-model validator.

    Pydantic reports such errors at the model, not the field; the field name travels in the context
    so that callers (the inventory loader) can point at the line that set the field.
    """
    return PydanticCustomError("field_rule", message, {"field": field_name})


def _is_partial(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(PARTIAL))


class FrozenModel(BaseModel):
    """Base of every inventory model: immutable, and unknown keys are errors that suggest a fix.

    A typo such as ``adress:`` must not pass silently, and the message lists what is accepted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    raise _unknown_key(str(key), list(cls.model_fields))
        return data


def _unknown_key(key: str, allowed: list[str]) -> PydanticCustomError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return field_error(key, f"unknown key; expected one of: {', '.join(allowed)}{hint}")


def _check_name(value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise ValueError(
            f"invalid name {value!r}: use letters, digits, '.', '-' and '_', starting with a letter or digit"
        )
    return value


def _check_address(value: str) -> str:
    """A DNS name (RFC 1123), an IPv4 or an IPv6 address."""
    text = value.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return text
    labels = text.removesuffix(".").split(".")
    # A name whose last label is all digits would be an IPv4 address with a typo (10.0.0.256).
    valid = (
        0 < len(text) <= 253
        and all(_HOSTNAME_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )
    if not valid:
        raise ValueError(f"invalid address {value!r}: expected a host name, FQDN, IPv4 or IPv6 address")
    return text


def _parse_credential(value: object) -> CredentialRef:
    if isinstance(value, CredentialRef):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a credential reference 'vault:NAME' or 'env:VAR'")
    return parse_reference(value)


def _normalise_tags(value: object) -> object:
    """Accept ``{key: value}`` or a list of ``"key=value"`` / ``"key"`` strings; numbers become text."""
    if isinstance(value, list | tuple):
        tags: dict[str, object] = {}
        for item in value:
            if not isinstance(item, str) or not item:
                raise ValueError(f"tag list items must be 'key=value' or 'key' strings, not {item!r}")
            key, _, tag_value = item.partition("=")
            if not key:
                raise ValueError(f"tag {item!r} has no key; write 'key=value' or 'key'")
            if key in tags:
                raise ValueError(f"tag {key!r} is given twice")
            tags[key] = tag_value
        return tags
    if isinstance(value, Mapping):
        # YAML reads `wave: 2` as a number; a tag value is text. Booleans stay errors, because
        # `ring: yes` is almost always a quoting mistake.
        return {
            key: str(item) if isinstance(item, int | float) and not isinstance(item, bool) else item
            for key, item in value.items()
        }
    return value


def _check_tag_key(value: str) -> str:
    if not re.fullmatch(TAG_KEY_PATTERN, value):
        raise ValueError(f"invalid tag key {value!r}: use letters, digits, '.', '-' and '_'")
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Address = Annotated[str, AfterValidator(_check_address)]
Credential = Annotated[
    CredentialRef, PlainValidator(_parse_credential), PlainSerializer(str, return_type=str)
]
TagKey = Annotated[str, AfterValidator(_check_tag_key)]
Tags = Annotated[dict[TagKey, str], BeforeValidator(_normalise_tags)]
Vars = dict[str, Any]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=86400)]


def _default_port(validated: dict[str, Any]) -> int:
    return DEFAULT_PORTS[validated.get("transport", Transport.HTTPS)]


class WinRMSettings(FrozenModel):
    """How to reach a host over WinRM. Defaults suit a domain-joined Windows host with an HTTPS listener."""

    transport: Transport = Transport.HTTPS
    port: Port = Field(default_factory=_default_port, description="default 5986 for https, 5985 for http")
    auth: WinRMAuth = WinRMAuth.NEGOTIATE
    username: str | None = Field(default=None, min_length=1, description="needed with env: credentials")
    ca_bundle: Path | None = Field(default=None, description="PEM bundle to validate the listener's TLS")
    cert_validation: bool = True
    client_certificate: Path | None = Field(default=None, description="PEM certificate for auth: certificate")
    client_key: Path | None = Field(
        default=None, description="PEM private key of client_certificate; the credential holds its passphrase"
    )
    connection_timeout: Seconds = 10.0
    # The server holds a Receive open for operation_timeout; the HTTP read must wait longer than that.
    operation_timeout: Seconds = 20.0
    read_timeout: Seconds = 30.0
    configuration_name: str = Field(default="Microsoft.PowerShell", description="JEA endpoints use their own")
    allow_unencrypted: bool = Field(default=False, description="permit Basic auth over plain http")

    @field_validator("ca_bundle", "client_certificate", "client_key")
    @classmethod
    def _relative_to_base(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = info.context.get(BASE_DIR) if info.context else None
        if value is None or value.is_absolute() or base is None:
            return value
        return Path(base) / value

    @field_validator("configuration_name")
    @classmethod
    def _session_configuration_name(cls, value: str) -> str:
        if not _CONFIGURATION_NAME.fullmatch(value):
            raise ValueError(f"invalid PowerShell session configuration name {value!r}")
        return value

    @model_validator(mode="after")
    def _combination_rules(self, info: ValidationInfo) -> WinRMSettings:
        if _is_partial(info):
            return self
        plain_http = self.transport is Transport.HTTP
        if plain_http and self.auth is WinRMAuth.BASIC and not self.allow_unencrypted:
            raise field_error(
                "auth",
                "basic auth over plain http sends the password in the clear; "
                "use transport: https, or set allow_unencrypted: true if you accept that",
            )
        if plain_http and self.auth is WinRMAuth.CERTIFICATE:
            raise field_error("auth", "certificate auth needs transport: https")
        certificate_files = (self.client_certificate, self.client_key)
        if self.auth is WinRMAuth.CERTIFICATE and None in certificate_files:
            raise field_error("auth", "certificate auth needs client_certificate and client_key")
        if self.read_timeout <= self.operation_timeout:
            raise field_error(
                "read_timeout",
                f"must be longer than operation_timeout ({self.operation_timeout:g}s): "
                "the server holds each request open that long",
            )
        return self


class Source(StrEnum):
    """Where a host came from: a hand-written file, Intune, or a hand-written host Intune also knows."""

    INVENTORY = "inventory"
    INTUNE = "intune"
    BOTH = "inventory+intune"


class IntuneIds(FrozenModel):
    """How Intune and Entra know a host; kept so that later actions (sync, profile state) can address it."""

    managed_device_id: str = Field(min_length=1)
    azure_ad_device_id: str | None = None
    device_name: str | None = None
    os_version: str | None = None
    last_sync: str | None = None


class Host(FrozenModel):
    """One machine fleetfix manages. ``credential`` is a reference; the secret never lives here."""

    name: Name
    role: Role
    address: Address
    winrm: WinRMSettings = Field(default_factory=WinRMSettings)
    credential: Credential
    groups: tuple[Name, ...] = ()
    tags: Tags = Field(default_factory=dict)
    vars: Vars = Field(default_factory=dict)
    source: Source = Source.INVENTORY
    intune: IntuneIds | None = None

    @model_validator(mode="after")
    def _env_reference_needs_username(self, info: ValidationInfo) -> Host:
        # An env: reference holds only the secret (see credentials.reference); the user name has
        # to come from the WinRM settings, or the host could never log in.
        if not _is_partial(info) and self.credential.scheme == "env" and self.winrm.username is None:
            raise field_error(
                "credential", f"{self.credential} holds only a secret: set winrm.username for this host"
            )
        return self

    def tag(self, key: str) -> str | None:
        """The value of tag ``key`` (compared without case, as Windows compares names), or None."""
        wanted = key.casefold()
        return next((value for name, value in self.tags.items() if name.casefold() == wanted), None)


class Group(FrozenModel):
    """A named set of settings that hosts join by listing the group; ``winrm`` holds only the
    settings the group itself sets."""

    name: Name
    winrm: Mapping[str, Any] = Field(default_factory=dict)
    credential: Credential | None = None
    tags: Tags = Field(default_factory=dict)
    vars: Vars = Field(default_factory=dict)


_Named = TypeVar("_Named", Host, Group)


def name_key(name: str) -> str:
    """Host and group names compare without case, as Windows compares computer names."""
    return name.casefold()


@dataclass(frozen=True)
class Inventory:
    """An immutable set of hosts and groups, sorted by name, with lookup by name (ignoring case)."""

    hosts: tuple[Host, ...] = ()
    groups: tuple[Group, ...] = ()
    _by_name: Mapping[str, Host] = field(init=False, repr=False, compare=False)
    _groups_by_name: Mapping[str, Group] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", tuple(sorted(self.hosts, key=lambda host: name_key(host.name))))
        object.__setattr__(self, "groups", tuple(sorted(self.groups, key=lambda group: name_key(group.name))))
        object.__setattr__(self, "_by_name", _index(self.hosts, "host"))
        object.__setattr__(self, "_groups_by_name", _index(self.groups, "group"))

    def __len__(self) -> int:
        return len(self.hosts)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name_key(name) in self._by_name

    def __getitem__(self, name: str) -> Host:
        return self._by_name[name_key(name)]

    def get(self, name: str) -> Host | None:
        return self._by_name.get(name_key(name))

    def group(self, name: str) -> Group | None:
        return self._groups_by_name.get(name_key(name))

    def members(self, group: str) -> tuple[Host, ...]:
        """Hosts that list ``group`` (ignoring case)."""
        wanted = name_key(group)
        return tuple(host for host in self.hosts if any(name_key(g) == wanted for g in host.groups))


def _index(items: tuple[_Named, ...], kind: str) -> dict[str, _Named]:
    index: dict[str, _Named] = {}
    for item in items:
        key = name_key(item.name)
        if key in index:
            raise ValueError(f"{kind} {item.name!r} appears twice in the inventory")
        index[key] = item
    return index


__all__ = [
    "DEFAULT_PORTS",
    "NAME_PATTERN",
    "TAG_KEY_PATTERN",
    "Address",
    "Credential",
    "FrozenModel",
    "Group",
    "Host",
    "IntuneIds",
    "Inventory",
    "Name",
    "Role",
    "Source",
    "Tags",
    "Transport",
    "Vars",
    "WinRMAuth",
    "WinRMSettings",
    "field_error",
    "name_key",
]
