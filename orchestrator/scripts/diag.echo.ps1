# fleetfix-script: diag.echo
<#
.SYNOPSIS
    Echoes a value back as JSON.

.DESCRIPTION
    fleetfix runs this probe to check that a host is reachable and that parameter values arrive
    unchanged. The value is only measured and returned; it is never executed.

.PARAMETER Value
    Any string, including quotes, semicolons, subexpressions and newlines.

.OUTPUTS
    One compressed JSON document: {"value": <Value>, "length": <number of UTF-16 code units>}.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $false)]
    [AllowEmptyString()]
    [string]$Value = ''
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

@{ value = $Value; length = $Value.Length } | ConvertTo-Json -Compress
