# fleetfix-script: endpoint.set-vpn-route
<#
.SYNOPSIS
    Replaces one split-tunnel route of a VPN connection, e.g. 172.21.12.0/21 with 172.21.8.0/21.

.DESCRIPTION
    Windows keeps a route whose prefix has host bits set in the profile but never plumbs it, so the
    network behind it is not reached through the tunnel. This script makes NewPrefix present and
    OldPrefix absent on the connection, with the old route's metric, and reports the route lists
    before and after. It is idempotent: with OldPrefix gone and NewPrefix there it changes nothing.
    An empty OldPrefix only adds NewPrefix, an empty NewPrefix only removes OldPrefix: what undoing
    a replacement needs when one of the two routes was there before.

    The new route is added before the old one is removed, so a failure in between leaves both
    (the network still routed) rather than neither.

    Over WinRM the session is not the signed-in user's: without -AllUserConnection the cmdlets see
    the phonebook of the account running this script. A profile Intune delivered is rewritten at
    the next MDM sync; the caller decides which connections to change this way.

.PARAMETER ConnectionName
    The VPN connection (phonebook entry) name, e.g. "Contoso Device Tunnel".

.PARAMETER OldPrefix
    The route to remove, exactly as the profile holds it; empty: remove nothing.

.PARAMETER NewPrefix
    The route to add in its place; empty: add nothing.

.PARAMETER AllUserConnection
    The connection is in the all-user phonebook (device tunnels are); default $true.

.OUTPUTS
    One compressed JSON document: connection, changed, routes_before, routes_after.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string]$ConnectionName,
    [Parameter(Mandatory = $true)]
    [AllowEmptyString()]
    [string]$OldPrefix,
    [Parameter(Mandatory = $true)]
    [AllowEmptyString()]
    [string]$NewPrefix,
    [Parameter(Mandatory = $false)]
    [bool]$AllUserConnection = $true
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# fleetfix-include: json

function Get-Connection {
    # Get-VpnConnection throws (ObjectNotFound) when the phonebook has no such entry.
    Get-VpnConnection -Name $ConnectionName -AllUserConnection:$AllUserConnection
}

function Get-ConnectionRoute {
    # The connection's routes in profile order, as one list (the comma keeps PowerShell from
    # unrolling it: an empty list would arrive as $null, one route as a bare object).
    param([object]$Connection)
    $routes = [System.Collections.Generic.List[object]]::new()
    foreach ($route in @($Connection.Routes)) {
        if ($null -ne $route) {
            $routes.Add($route)
        }
    }
    return , $routes
}

function Find-Route {
    param(
        [System.Collections.Generic.List[object]]$Routes,
        [string]$Prefix
    )
    foreach ($route in $Routes) {
        if ([string]$route.DestinationPrefix -eq $Prefix) {
            return $route
        }
    }
    return $null
}

function Get-PrefixList {
    param([System.Collections.Generic.List[object]]$Routes)
    $prefixes = [System.Collections.Generic.List[string]]::new()
    foreach ($route in $Routes) {
        $prefixes.Add([string]$route.DestinationPrefix)
    }
    return , $prefixes.ToArray()
}

if ($OldPrefix -eq $NewPrefix) {
    throw "OldPrefix and NewPrefix are both '$OldPrefix': there is nothing to replace"
}

$connection = Get-Connection
$before = Get-ConnectionRoute -Connection $connection
$oldRoute = $null
if ($OldPrefix -ne '') {
    $oldRoute = Find-Route -Routes $before -Prefix $OldPrefix
}
$changed = $false

if ($NewPrefix -ne '' -and $null -eq (Find-Route -Routes $before -Prefix $NewPrefix)) {
    $metric = 1
    if ($null -ne $oldRoute -and $null -ne $oldRoute.RouteMetric) {
        $metric = [uint32]$oldRoute.RouteMetric
    }
    $null = Add-VpnConnectionRoute -ConnectionName $ConnectionName -DestinationPrefix $NewPrefix -RouteMetric $metric -AllUserConnection:$AllUserConnection
    $changed = $true
}
if ($null -ne $oldRoute) {
    $null = Remove-VpnConnectionRoute -ConnectionName $ConnectionName -DestinationPrefix $OldPrefix -AllUserConnection:$AllUserConnection -Confirm:$false
    $changed = $true
}

$result = [ordered]@{
    connection    = [string]$connection.Name
    changed       = $changed
    routes_before = Get-PrefixList -Routes $before
    routes_after  = Get-PrefixList -Routes (Get-ConnectionRoute -Connection (Get-Connection))
}
ConvertTo-Json -Compress -Depth 3 -InputObject $result
