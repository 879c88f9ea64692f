"""Diagnostics probes."""

from __future__ import annotations

from lab.psjson import to_json
from lab.scripts import ScriptCall, script_handler


@script_handler("diag.echo")
def echo(call: ScriptCall) -> list[object]:
    """``diag.echo.ps1``: the value back, with its length in UTF-16 code units as .NET counts it."""
    raw = call.params.get("Value", "")
    value = "" if raw is None else str(raw)  # [string] binding turns $null into ''
    length = len(value.encode("utf-16-le")) // 2
    return [to_json({"value": value, "length": length})]
