"""The playbook catalogue: the shipped playbooks, then the admin's directories.

Shipped playbooks are the ``*.yaml`` files of the ``playbooks`` package (they ship in the wheel).
Each directory in ``Settings.playbook_paths`` adds its ``*.yaml`` / ``*.yml`` files (not
recursively; hidden files are skipped).  An admin playbook with the id of a shipped one replaces
it, and says so (``source.replaces``): a site can tune a shipped playbook without forking fleetfix.
Two admin files with one id are an error naming both, since neither can be said to win.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType

from orchestrator.config import Settings
from orchestrator.errors import PlaybookError, SourcePosition
from orchestrator.playbook.loader import Registries, load_playbook
from orchestrator.playbook.model import Playbook, PlaybookSource
from orchestrator.yamlsrc import load_yaml

SHIPPED_PACKAGE = "playbooks"
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PlaybookCatalog:
    """Playbooks by id, sorted by id."""

    playbooks: tuple[Playbook, ...]
    _by_id: Mapping[str, Playbook] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.playbooks, key=lambda playbook: playbook.id))
        object.__setattr__(self, "playbooks", ordered)
        object.__setattr__(self, "_by_id", MappingProxyType({playbook.id: playbook for playbook in ordered}))

    def __iter__(self) -> Iterator[Playbook]:
        return iter(self.playbooks)

    def __len__(self) -> int:
        return len(self.playbooks)

    def __contains__(self, playbook_id: object) -> bool:
        return playbook_id in self._by_id

    def get(self, playbook_id: str) -> Playbook:
        """The playbook called ``playbook_id``, or PlaybookError listing the known ones."""
        found = self._by_id.get(playbook_id)
        if found is not None:
            return found
        known = sorted(self._by_id)
        close = difflib.get_close_matches(playbook_id, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PlaybookError(f"unknown playbook {playbook_id!r} (known: {', '.join(known)}){hint}", field="ID")

    def for_check(self, check_id: str) -> tuple[Playbook, ...]:
        """The playbooks that list ``check_id`` in ``fixes``, by id."""
        return tuple(playbook for playbook in self.playbooks if check_id in playbook.fixes)


def load_playbooks(settings: Settings, *, registries: Registries | None = None) -> PlaybookCatalog:
    """Every playbook fleetfix knows: the shipped ones, replaced by admin ones of the same id."""
    registries = registries or Registries.shipped()
    with ExitStack() as stack:
        shipped_files = [stack.enter_context(resources.as_file(item)) for item in _shipped_entries()]
        shipped = _unique(
            load_playbook(path, registries=registries, source=_shipped(path)) for path in shipped_files
        )
    admin = _unique(
        load_playbook(path, registries=registries, source=PlaybookSource(path=path))
        for path in admin_files(settings.playbook_paths)
    )
    merged = dict(shipped)
    for playbook_id, playbook in admin.items():
        replaced = shipped.get(playbook_id)
        merged[playbook_id] = playbook if replaced is None else _replacing(playbook, replaced)
    return PlaybookCatalog(tuple(merged.values()))


def _replacing(playbook: Playbook, shipped: Playbook) -> Playbook:
    """``playbook`` marked as the replacement of the shipped one with its id."""
    source = playbook.source.model_copy(update={"replaces": shipped.source.path})
    return playbook.model_copy(update={"source": source})


def _shipped(path: Path) -> PlaybookSource:
    return PlaybookSource(path=path, shipped=True)


def _shipped_entries() -> list[Traversable]:
    package = resources.files(SHIPPED_PACKAGE)
    return sorted(
        (item for item in package.iterdir() if item.is_file() and item.name.endswith(SUFFIXES)),
        key=lambda item: item.name,
    )


def admin_files(directories: Iterable[Path]) -> list[Path]:
    """The playbook files of the admin's directories, in the order given, each directory by name."""
    files: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            problem = "is not a directory" if directory.exists() else "not found"
            raise PlaybookError(
                f"playbook directory {problem}", position=SourcePosition(directory), field="playbook_paths"
            )
        files.extend(
            sorted(
                path
                for path in directory.iterdir()
                if path.suffix in SUFFIXES and not path.name.startswith(".") and path.is_file()
            )
        )
    return files


def _unique(playbooks: Iterable[Playbook]) -> dict[str, Playbook]:
    """Index by id; a second file with an id already seen is an error naming both files."""
    index: dict[str, Playbook] = {}
    for playbook in playbooks:
        first = index.get(playbook.id)
        if first is not None:
            raise PlaybookError(
                f"playbook {playbook.id!r} is already defined in {_where(first)}",
                position=_id_position(playbook),
                field="id",
            )
        index[playbook.id] = playbook
    return index


def _where(playbook: Playbook) -> str:
    return str(_id_position(playbook))


def _id_position(playbook: Playbook) -> SourcePosition:
    """``file:line`` of the playbook's ``id`` (the file parsed fine a moment ago)."""
    path = playbook.source.path
    if path is None:
        return SourcePosition(None)
    return load_yaml(path, PlaybookError).position(("id",))


__all__ = ["SHIPPED_PACKAGE", "PlaybookCatalog", "admin_files", "load_playbooks"]
