"""The PowerShell scripts fleetfix ships (``*.ps1`` next to this file) and their catalog.

* :mod:`.spec` -- :class:`ScriptSpec`, :class:`ParamSpec`, :class:`Invocation`; reading the text
* :mod:`.schemas` -- the pydantic model of each script's JSON output
* :mod:`.catalog` -- every shipped script by id (:data:`CATALOG`, :func:`get_script`)

Pure: nothing here touches the network.
"""

from orchestrator.scripts.catalog import CATALOG, DIAG_ECHO, HOST_INFO, get_script
from orchestrator.scripts.schemas import DiagEcho, HostInfo, ScriptOutput
from orchestrator.scripts.spec import (
    Invocation,
    ParamSpec,
    ParamType,
    ParamValue,
    ScriptKind,
    ScriptSpec,
    catalog_problems,
    parse_header,
    script_text,
    shipped_script_ids,
)

__all__ = [
    "CATALOG",
    "DIAG_ECHO",
    "HOST_INFO",
    "DiagEcho",
    "HostInfo",
    "Invocation",
    "ParamSpec",
    "ParamType",
    "ParamValue",
    "ScriptKind",
    "ScriptOutput",
    "ScriptSpec",
    "catalog_problems",
    "get_script",
    "parse_header",
    "script_text",
    "shipped_script_ids",
]
