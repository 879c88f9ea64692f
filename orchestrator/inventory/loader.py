"""The YAML inventory source: one or more files in, one validated :class:`Inventory` out.

A file has three optional sections (the format is documented in ``docs/inventory.md``)::

    defaults: {winrm: {...}, credential: vault:NAME, tags: {...}, vars: {...}}
    groups:   {NAME: {winrm, credential, tags, vars}}
    hosts:    {NAME: {role, address, groups: [...], winrm, credential, tags, vars}}

How files combine: hosts and groups share one namespace across all files (names compare without
case), so a group defined in ``groups.yaml`` can be joined by hosts in ``ams.yaml``; defining either
twice is an error naming both places.  ``defaults`` apply to the hosts of their own file only.

How settings merge for a host, later wins: the file's defaults, then each group in the order the
host lists them, then the host entry.  ``winrm``, ``tags`` and ``vars`` merge key by key; the last
``credential`` set wins.

Every error is an :class:`InventoryError` that names ``file:line`` and the dotted field, and for a
value that came from a group or the defaults, the line that set it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from orchestrator.errors import InventoryError, SourcePosition
from orchestrator.inventory.intune import merge_intune_hosts
from orchestrator.inventory.models import (
    BASE_DIR,
    PARTIAL,
    Address,
    Credential,
    FrozenModel,
    Group,
    Host,
    IntuneIds,
    Inventory,
    Name,
    Role,
    Source,
    Tags,
    Vars,
    WinRMSettings,
    name_key,
)
from orchestrator.yamlsrc import DataPath, YamlDocument, format_path, load_yaml

# --- what a file may say --------------------------------------------------------------------------


class _Layer(FrozenModel):
    """Settings that the defaults, a group or a host entry may set (checked with partial=True)."""

    winrm: WinRMSettings | None = None
    credential: Credential | None = None
    tags: Tags = Field(default_factory=dict)
    vars: Vars = Field(default_factory=dict)

    def winrm_overrides(self) -> dict[str, Any]:
        """Only the WinRM settings this layer writes out, not the model's defaults."""
        return self.winrm.model_dump(exclude_unset=True) if self.winrm else {}


class _HostEntry(_Layer):
    role: Role
    address: Address
    groups: tuple[Name, ...] = ()
    intune: IntuneIds | None = None


class _FileSpec(FrozenModel):
    defaults: _Layer = Field(default_factory=_Layer)
    groups: dict[Name, _Layer] = Field(default_factory=dict)
    hosts: dict[Name, _HostEntry] = Field(default_factory=dict)

    @field_validator("defaults", "groups", "hosts", mode="before")
    @classmethod
    def _empty_section(cls, value: object) -> object:
        # `groups:` with nothing under it is YAML null; read it as an empty section.
        return {} if value is None else value


# --- where each piece came from -------------------------------------------------------------------

_L = TypeVar("_L", _Layer, _HostEntry)


@dataclass(frozen=True)
class _Placed(Generic[_L]):
    """A validated layer and the place in its file it came from (``("groups", "ams")``)."""

    layer: _L
    document: YamlDocument
    path: DataPath

    @property
    def name(self) -> str:
        """The group's or host's name: the last key of its path."""
        return str(self.path[-1])

    def position(self, *sub: str | int) -> SourcePosition:
        return self.document.position((*self.path, *sub))

    def error(self, message: str, *sub: str | int) -> InventoryError:
        return InventoryError(message, position=self.position(*sub), field=format_path((*self.path, *sub)))

    def sets(self, field_path: Sequence[str | int]) -> bool:
        """True if this layer itself (not a model default) sets the value at ``field_path``."""
        value: Any = self.layer
        for part in field_path:
            if not isinstance(value, BaseModel) or part not in value.model_fields_set:
                return False
            value = getattr(value, str(part))
        return True


@dataclass(frozen=True)
class _ParsedFile:
    defaults: _Placed[_Layer]
    groups: tuple[_Placed[_Layer], ...]
    hosts: tuple[_Placed[_HostEntry], ...]


# --- loading ---------------------------------------------------------------------------------------


def load_inventory(paths: Sequence[Path], *, intune_file: Path | None = None) -> Inventory:
    """Load, validate and merge inventory files. Raises :class:`InventoryError` on the first problem.

    ``intune_file`` is the file ``fleetfix inventory sync-intune`` writes: its hosts join those of
    ``paths`` unless a hand-written host is the same machine, which then gains the Intune ids
    (:func:`orchestrator.inventory.intune.merge_intune_hosts`).  It may use the groups of ``paths``.
    """
    files = [_parse_file(load_yaml(path, InventoryError)) for path in paths]
    groups = _unique("group", (group for parsed in files for group in parsed.groups))
    _unique("host", (host for parsed in files for host in parsed.hosts))
    hosts = tuple(_build_host(entry, parsed.defaults, groups) for parsed in files for entry in parsed.hosts)
    if intune_file is not None:
        synced = _parse_file(load_yaml(intune_file, InventoryError))
        _unique("host", synced.hosts)
        from_intune = [_build_host(entry, synced.defaults, groups, Source.INTUNE) for entry in synced.hosts]
        hosts = merge_intune_hosts(hosts, from_intune)
    return Inventory(hosts=hosts, groups=tuple(_public_group(group) for group in groups.values()))


def _parse_file(document: YamlDocument) -> _ParsedFile:
    if document.data is None:
        raise InventoryError(
            "the file is empty; an inventory needs a 'hosts' mapping", position=document.position(())
        )
    base_dir = document.path.parent.absolute() if document.path is not None else None
    try:
        spec = _FileSpec.model_validate(document.data, context={PARTIAL: True, BASE_DIR: base_dir})
    except ValidationError as exc:
        raise _earliest(_explain(error, document) for error in exc.errors()) from None
    parsed = _ParsedFile(
        defaults=_Placed(spec.defaults, document, ("defaults",)),
        groups=tuple(_Placed(layer, document, ("groups", name)) for name, layer in spec.groups.items()),
        hosts=tuple(_Placed(entry, document, ("hosts", name)) for name, entry in spec.hosts.items()),
    )
    _check_winrm_files([parsed.defaults, *parsed.groups, *parsed.hosts])
    return parsed


_WINRM_FILES = {
    "ca_bundle": "CA bundle",
    "client_certificate": "client certificate",
    "client_key": "client key",
}


def _check_winrm_files(layers: Iterable[_Placed[Any]]) -> None:
    for placed in layers:
        winrm = placed.layer.winrm
        if winrm is None:
            continue
        for key, what in _WINRM_FILES.items():
            path = getattr(winrm, key)
            if path is not None and not path.is_file():
                raise placed.error(f"{what} file not found: {path}", "winrm", key)


def _unique(kind: str, placed: Iterable[_Placed[_L]]) -> dict[str, _Placed[_L]]:
    """Index by name (ignoring case); a second definition is an error that names the first one."""
    index: dict[str, _Placed[_L]] = {}
    for item in placed:
        first = index.get(name_key(item.name))
        if first is not None:
            raise item.error(f"{kind} {item.name!r} is already defined at {first.position()}")
        index[name_key(item.name)] = item
    return index


def _build_host(
    entry: _Placed[_HostEntry],
    defaults: _Placed[_Layer],
    groups: Mapping[str, _Placed[_Layer]],
    source: Source = Source.INVENTORY,
) -> Host:
    layers: list[_Placed[Any]] = [defaults, *_joined_groups(entry, groups), entry]
    credential = next((p.layer.credential for p in reversed(layers) if p.layer.credential), None)
    if credential is None:
        raise entry.error(
            "no credential: set 'credential' on the host, on one of its groups or in the file's defaults",
            "credential",
        )
    try:
        return Host(
            name=entry.name,
            role=entry.layer.role,
            address=entry.layer.address,
            winrm=_merged(p.layer.winrm_overrides() for p in layers),
            credential=credential,
            groups=entry.layer.groups,
            tags=_merged(p.layer.tags for p in layers),
            vars=_merged(p.layer.vars for p in layers),
            source=source,
            intune=entry.layer.intune,
        )
    except ValidationError as exc:
        raise _explain_merged(exc.errors()[0], entry.name, layers) from None


def _merged(mappings: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Key-by-key merge where later mappings win."""
    merged: dict[str, Any] = {}
    for mapping in mappings:
        merged.update(mapping)
    return merged


def _joined_groups(
    entry: _Placed[_HostEntry], groups: Mapping[str, _Placed[_Layer]]
) -> list[_Placed[_Layer]]:
    """The host's groups in the order it lists them; an unknown or repeated group is an error there."""
    joined: dict[str, _Placed[_Layer]] = {}
    for index, group in enumerate(entry.layer.groups):
        found = groups.get(name_key(group))
        if found is None:
            known = ", ".join(sorted(defined.name for defined in groups.values())) or "none"
            raise entry.error(f"unknown group {group!r}; defined groups: {known}", "groups", index)
        if name_key(group) in joined:
            raise entry.error(f"group {group!r} is listed twice", "groups", index)
        joined[name_key(group)] = found
    return list(joined.values())


def _public_group(placed: _Placed[_Layer]) -> Group:
    layer = placed.layer
    return Group(
        name=placed.name,
        winrm=layer.winrm_overrides(),
        credential=layer.credential,
        tags=layer.tags,
        vars=layer.vars,
    )


# --- turning pydantic errors into file:line errors ------------------------------------------------


def _error_path(error: ErrorDetails) -> tuple[str | int, ...]:
    """The data path an error is about: its location plus the field a model-level rule names.

    ``[key]`` marks an invalid mapping key in pydantic's location; the key itself is the place.
    """
    loc = tuple(part for part in error["loc"] if part != "[key]")
    field = (error.get("ctx") or {}).get("field")
    return (*loc, field) if isinstance(field, str) else loc


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "enum":
        return f"unknown value {error['input']!r}; expected one of {ctx['expected']}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return "must be a mapping of keys to values"
    if kind in {"tuple_type", "list_type"}:
        return "must be a list"
    if kind == "value_error":
        return str(ctx["error"])
    return error["msg"]


def _explain(error: ErrorDetails, document: YamlDocument) -> InventoryError:
    path = _error_path(error)
    return InventoryError(_message(error), position=document.position(path), field=format_path(path) or None)


def _earliest(errors: Iterable[InventoryError]) -> InventoryError:
    """Of all problems pydantic found, the one nearest the top of the file: what a reader meets first."""
    return min(errors, key=lambda exc: (exc.position.line or 0) if exc.position else 0)


def _explain_merged(error: ErrorDetails, host: str, layers: Sequence[_Placed[Any]]) -> InventoryError:
    """Point a rule broken by the merged settings at the layer that set the offending value."""
    path = _error_path(error)
    setter = next((p for p in reversed(layers) if p.sets(path)), layers[-1])
    message = _message(error)
    if setter is not layers[-1]:
        message += f" (for host {host})"
    return setter.error(message, *path)


__all__ = ["load_inventory"]
