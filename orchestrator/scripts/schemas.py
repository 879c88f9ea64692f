"""The output schema of every shipped script: the one JSON document it prints, as a pydantic model.

Models are strict (a number printed as text is an error, not coerced), frozen, and refuse unknown
keys: a script and its schema ship together, so any difference is a bug in one of them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ScriptOutput(BaseModel):
    """Base of every script's output model."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class DiagEcho(ScriptOutput):
    """``diag.echo``: the value back, and its length in UTF-16 code units (.NET ``String.Length``)."""

    value: str
    length: int = Field(ge=0)


class HostInfo(ScriptOutput):
    """``host.info``: who the host is (names, Windows build and UBR, PowerShell version)."""

    computer_name: str = Field(min_length=1, max_length=15, description="NetBIOS name, $env:COMPUTERNAME")
    fqdn: str = Field(min_length=1, description="lower case")
    os_caption: str = Field(min_length=1, description="Win32_OperatingSystem.Caption")
    os_build: int = Field(ge=0, description="CurrentBuildNumber, e.g. 22631")
    os_ubr: int = Field(ge=0, description="update build revision, e.g. 4460")
    ps_version: str = Field(min_length=1, description="$PSVersionTable.PSVersion, e.g. 5.1.22621.4391")


__all__ = ["DiagEcho", "HostInfo", "ScriptOutput"]
