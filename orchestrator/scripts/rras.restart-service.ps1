# fleetfix-script: rras.restart-service
<#
.SYNOPSIS
    Restarts a Windows service unless it has (re)started at or after a given time.

.DESCRIPTION
    Puts stored configuration into effect: RRAS reads Set-VpnAuthProtocol and
    Set-VpnServerConfiguration settings (and its IKEv2 registry values) only when the RemoteAccess
    service starts. Written for Windows PowerShell 5.1 and PowerShell 7; any service name works,
    and an unknown one fails as Get-Service fails.

    NotBefore makes a retried step idempotent: when the service is running and started after
    NotBefore, it already runs with every change made before that time, so it is left alone and
    "changed" is false. A restart half-done by an earlier attempt is not repeated. An empty
    NotBefore always restarts.

    Get-Service has no start time; the start of the service's process is used (Win32_Service
    ProcessId, Get-Process StartTime). A service that shares its svchost with others reports the
    host process's start, which is earlier than its own: a restart may then be repeated, never
    skipped.

    For RemoteAccess the sessions up just before the restart are counted
    (Get-RemoteAccessConnectionStatistics): a restart drops every VPN session on the server, and
    clients reconnect.

.PARAMETER Name
    The service name (not the display name), e.g. RemoteAccess.

.PARAMETER NotBefore
    ISO 8601 time (UTC, e.g. 2026-03-01T02:00:00Z); empty: restart in any case.

.OUTPUTS
    One compressed JSON document: name, changed, status, started_at, sessions_dropped.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string]$Name,
    [string]$NotBefore
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# fleetfix-include: time

function Get-ServiceStartTime {
    # When the service's process started (UTC); $null when it is not running.
    param([string]$ServiceName)
    $escaped = $ServiceName.Replace('\', '\\').Replace("'", "\'")
    $instance = Get-CimInstance -ClassName 'Win32_Service' -Filter "Name = '$escaped'"
    if ($null -eq $instance -or [int]$instance.ProcessId -eq 0) {
        return $null
    }
    $process = Get-Process -Id $instance.ProcessId -ErrorAction SilentlyContinue
    if ($null -eq $process) {
        return $null
    }
    return $process.StartTime.ToUniversalTime()
}

function Get-RemoteAccessSessionCount {
    # The VPN sessions a RemoteAccess restart drops; $null for other services or when unknown.
    param([string]$ServiceName)
    if ($ServiceName -ne 'RemoteAccess') {
        return $null
    }
    if ($null -eq (Get-Command -Name 'Get-RemoteAccessConnectionStatistics' -ErrorAction SilentlyContinue)) {
        return $null
    }
    try {
        return @(Get-RemoteAccessConnectionStatistics).Count
    }
    catch {
        return $null
    }
}

$notBeforeTime = ConvertFrom-IsoTime $NotBefore

# Stops with "Cannot find any service with service name '...'" for an unknown name.
$service = Get-Service -Name $Name
$serviceName = $service.Name
$startedAt = if ($service.Status -eq 'Running') { Get-ServiceStartTime -ServiceName $serviceName } else { $null }

# Strictly after: a start at the very time of the change may have read the old configuration.
$current = $null -ne $notBeforeTime -and $null -ne $startedAt -and $startedAt -gt $notBeforeTime
$sessions = $null
if (-not $current) {
    $sessions = Get-RemoteAccessSessionCount -ServiceName $serviceName
    Restart-Service -Name $serviceName
    $service = Get-Service -Name $serviceName
    $startedAt = if ($service.Status -eq 'Running') { Get-ServiceStartTime -ServiceName $serviceName } else { $null }
}

$result = [ordered]@{
    name             = $serviceName
    changed          = -not $current
    status           = [string]$service.Status
    started_at       = if ($null -eq $startedAt) { $null } else { ConvertTo-PreciseIsoTime $startedAt }
    sessions_dropped = $sessions
}
ConvertTo-Json -Compress -Depth 2 -InputObject $result
