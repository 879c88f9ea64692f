"""The PowerShell scripts fleetfix ships (``*.ps1`` next to this file) and their catalog.

* :mod:`.spec` -- :class:`ScriptSpec`, :class:`ParamSpec`, :class:`Invocation`; reading the text
* :mod:`.schemas` -- the pydantic model of each script's JSON output
* :mod:`.catalog` -- every shipped script by id (:data:`CATALOG`, :func:`get_script`)

Pure: nothing here touches the network.
"""

from orchestrator.scripts.catalog import (
    CA_FACTS,
    CATALOG,
    DIAG_ECHO,
    ENDPOINT_FACTS,
    FACT_PROBES,
    HOST_INFO,
    RRAS_FACTS,
    get_script,
)
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
    "CA_FACTS",
    "DIAG_ECHO",
    "ENDPOINT_FACTS",
    "FACT_PROBES",
    "HOST_INFO",
    "RRAS_FACTS",
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
