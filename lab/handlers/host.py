"""Host identity probes."""

from __future__ import annotations

from lab.psjson import to_json
from lab.scripts import ScriptCall, script_handler


@script_handler("host.info")
def info(call: ScriptCall) -> list[object]:
    """``host.info.ps1``: names, OS caption, build and UBR, PowerShell version."""
    host = call.host
    return [
        to_json(
            {
                "computer_name": host.name.upper()[:15],  # $env:COMPUTERNAME is the NetBIOS name
                "fqdn": host.fqdn,
                "os_caption": host.os_caption,
                "os_build": host.os_build,
                "os_ubr": host.os_ubr,
                "ps_version": host.ps_version,
            }
        )
    ]
