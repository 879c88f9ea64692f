# fleetfix-script: endpoint.facts
<#
.SYNOPSIS
    Gathers an Always On VPN endpoint's facts in one go and prints them as one JSON document.

.DESCRIPTION
    Read-only probe for Windows 10/11 endpoints, written for Windows PowerShell 5.1 and PowerShell 7.
    It reports raw facts; fleetfix judges them. Certificates are base64 DER (parsed by fleetfix),
    times are ISO 8601 UTC strings, enums are names. Each section runs on its own: a section that
    fails leaves its field null and adds an entry to "errors", the others are still reported.

    Over WinRM the session is not the user's and not SYSTEM, so per-user VPN connections are not
    visible to Get-VpnConnection; the probe lists the all-user connections in full, the entry
    names of every rasphone.pbk, and the ProfileXML Intune delivered (MDM NodeCache).

    The shape of the document is specified in docs/facts.md (schema_version 1).

.PARAMETER EventDays
    How many days of RasClient and MDM events to read (default 7).

.PARAMETER MaxEvents
    At most this many events of each log (newest first; default 200).

.OUTPUTS
    One compressed JSON document (see docs/facts.md, "endpoint.facts").
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $false)]
    [int]$EventDays = 7,
    [Parameter(Mandatory = $false)]
    [int]$MaxEvents = 200
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# fleetfix-include: json
# fleetfix-include: time
# fleetfix-include: registry
# fleetfix-include: values
# fleetfix-include: certificates
# fleetfix-include: host
# fleetfix-include: probe

function Get-EventRecord {
    # Events as raw data, newest first; "no events found" is an empty list, not an error.
    param(
        [hashtable]$Filter,
        [string]$MessagePattern
    )
    try {
        $events = @(Get-WinEvent -FilterHashtable $Filter -MaxEvents $MaxEvents -ErrorAction Stop)
    }
    catch {
        if ($_.FullyQualifiedErrorId -like 'NoMatchingEventsFound*') {
            return
        }
        throw
    }
    foreach ($event in $events) {
        $message = $event.Message
        if ($MessagePattern -and ($null -eq $message -or $message -notmatch $MessagePattern)) {
            continue
        }
        if ($null -ne $message -and $message.Length -gt 1024) {
            $message = $message.Substring(0, 1024)
        }
        [ordered]@{
            event_id = [int]$event.Id
            time     = ConvertTo-IsoTime $event.TimeCreated
            data     = @($event.Properties | ForEach-Object -Process { [string]$_.Value })
            message  = $message
        }
    }
}

function ConvertTo-VpnConnectionFact {
    param([object]$Connection)
    $policy = $null
    $custom = @(Get-PropertyValue -InputObject $Connection -Name 'IPsecCustomPolicy')
    if ($custom.Count -gt 0 -and $null -ne $custom[0]) {
        $policy = [ordered]@{
            authentication_transform_constants = ConvertTo-NullableString (Get-PropertyValue $custom[0] 'AuthenticationTransformConstants')
            cipher_transform_constants         = ConvertTo-NullableString (Get-PropertyValue $custom[0] 'CipherTransformConstants')
            encryption_method                  = ConvertTo-NullableString (Get-PropertyValue $custom[0] 'EncryptionMethod')
            integrity_check_method             = ConvertTo-NullableString (Get-PropertyValue $custom[0] 'IntegrityCheckMethod')
            pfs_group                          = ConvertTo-NullableString (Get-PropertyValue $custom[0] 'PfsGroup')
            dh_group                           = ConvertTo-NullableString (Get-PropertyValue $custom[0] 'DHGroup')
        }
    }
    # A list, not a collected foreach: @($null) would be an array holding one $null.
    $routes = [System.Collections.Generic.List[object]]::new()
    foreach ($route in @(Get-PropertyValue -InputObject $Connection -Name 'Routes')) {
        if ($null -ne $route) {
            $metric = Get-PropertyValue -InputObject $route -Name 'RouteMetric'
            $routes.Add([ordered]@{
                    destination_prefix = [string]$route.DestinationPrefix
                    route_metric       = if ($null -eq $metric) { $null } else { [int]$metric }
                })
        }
    }
    [ordered]@{
        name                           = [string]$Connection.Name
        guid                           = ConvertTo-NullableString (Get-PropertyValue $Connection 'Guid')
        all_user_connection            = [bool](Get-PropertyValue $Connection 'AllUserConnection')
        server_address                 = ConvertTo-NullableString (Get-PropertyValue $Connection 'ServerAddress')
        tunnel_type                    = ConvertTo-NullableString (Get-PropertyValue $Connection 'TunnelType')
        authentication_method          = @(@(Get-PropertyValue $Connection 'AuthenticationMethod') | Where-Object -FilterScript { $null -ne $_ } | ForEach-Object -Process { [string]$_ })
        split_tunneling                = [bool](Get-PropertyValue $Connection 'SplitTunneling')
        connection_status              = ConvertTo-NullableString (Get-PropertyValue $Connection 'ConnectionStatus')
        dns_suffix                     = ConvertTo-NullableString (Get-PropertyValue $Connection 'DnsSuffix')
        routes                         = $routes.ToArray()
        machine_certificate_eku_filter = @(@(Get-PropertyValue $Connection 'MachineCertificateEKUFilter') | Where-Object -FilterScript { $null -ne $_ } | ForEach-Object -Process { [string]$_ })
        ipsec_custom_policy            = $policy
        profile_type                   = ConvertTo-NullableString (Get-PropertyValue $Connection 'ProfileType')
    }
}

function Get-PhonebookEntry {
    # Entry names are the [section] headers of a rasphone.pbk.
    $books = [System.Collections.Generic.List[object]]::new()
    $allUsers = Join-Path -Path $env:ProgramData -ChildPath 'Microsoft\Network\Connections\Pbk\rasphone.pbk'
    if (Test-Path -LiteralPath $allUsers) {
        $books.Add(@{ scope = 'all_users'; user = $null; path = $allUsers })
    }
    $usersRoot = Join-Path -Path $env:SystemDrive -ChildPath 'Users'
    foreach ($profileDir in @(Get-ChildItem -LiteralPath $usersRoot -Directory -ErrorAction SilentlyContinue)) {
        $path = Join-Path -Path $profileDir.FullName -ChildPath 'AppData\Roaming\Microsoft\Network\Connections\Pbk\rasphone.pbk'
        if (Test-Path -LiteralPath $path) {
            $books.Add(@{ scope = 'user'; user = $profileDir.Name; path = $path })
        }
    }
    foreach ($book in $books) {
        foreach ($line in @(Get-Content -LiteralPath $book.path)) {
            if ($line -match '^\[(.+)\]\s*$') {
                [ordered]@{ scope = $book.scope; user = $book.user; name = $Matches[1] }
            }
        }
    }
}

function Get-MdmVpnProfile {
    # Intune's intended ProfileXML per VPNv2 node: NodeCache\CSP\<Device or user SID>\MS DM Server\Nodes\<n>.
    $cspRoot = 'HKLM:\SOFTWARE\Microsoft\Provisioning\NodeCache\CSP'
    foreach ($scopeKey in @(Get-ChildItem -LiteralPath $cspRoot -ErrorAction SilentlyContinue)) {
        $nodesPath = Join-Path -Path $scopeKey.PSPath -ChildPath 'MS DM Server\Nodes'
        foreach ($node in @(Get-ChildItem -LiteralPath $nodesPath -ErrorAction SilentlyContinue)) {
            $uri = [string](Get-RegistryValue -Path $node.PSPath -Name 'NodeUri')
            $match = [regex]::Match($uri, '/VPNv2/([^/]+)/ProfileXML$', 'IgnoreCase')
            if (-not $match.Success) {
                continue
            }
            $isDevice = $scopeKey.PSChildName -eq 'Device'
            [ordered]@{
                scope       = if ($isDevice) { 'device' } else { 'user' }
                sid         = if ($isDevice) { $null } else { [string]$scopeKey.PSChildName }
                name        = [System.Uri]::UnescapeDataString($match.Groups[1].Value)
                node_uri    = $uri
                profile_xml = ConvertTo-NullableString (Get-RegistryValue -Path $node.PSPath -Name 'ExpectedValue')
            }
        }
    }
}

$computerSystem = Get-CimInstance -ClassName 'Win32_ComputerSystem'
$fqdn = Get-HostFqdn
$since = (Get-Date).AddDays(-$EventDays)

$facts = [ordered]@{
    schema_version    = 1
    collected_at      = ConvertTo-IsoTime (Get-Date)
    computer_name     = $env:COMPUTERNAME
    fqdn              = $fqdn
    domain            = if ($computerSystem.PartOfDomain) { [string]$computerSystem.Domain } else { $null }
    part_of_domain    = [bool]$computerSystem.PartOfDomain
    os                = Get-OsInfo
    certificates      = $null
    vpn_connections   = $null
    phonebook_entries = $null
    mdm_vpn_profiles  = $null
    routes            = $null
    ras_events        = $null
    mdm_events        = $null
    rasman            = $null
    errors            = $null
}

Invoke-Section -Name 'certificates' -Body {
    $facts['certificates'] = @(Get-StoreCertificate -StoreName 'My', 'Root', 'CA')
}
Invoke-Section -Name 'vpn_connections' -Body {
    $facts['vpn_connections'] = @(Get-VpnConnection -AllUserConnection | ForEach-Object -Process { ConvertTo-VpnConnectionFact -Connection $_ })
}
Invoke-Section -Name 'phonebook_entries' -Body {
    $facts['phonebook_entries'] = @(Get-PhonebookEntry)
}
Invoke-Section -Name 'mdm_vpn_profiles' -Body {
    $facts['mdm_vpn_profiles'] = @(Get-MdmVpnProfile)
}
Invoke-Section -Name 'routes' -Body {
    $facts['routes'] = @(Get-NetRoute | ForEach-Object -Process {
            [ordered]@{
                destination_prefix = [string]$_.DestinationPrefix
                interface_alias    = [string]$_.InterfaceAlias
                interface_index    = [int]$_.InterfaceIndex
                next_hop           = [string]$_.NextHop
                route_metric       = [int]$_.RouteMetric
                address_family     = [string]$_.AddressFamily
            }
        })
}
Invoke-Section -Name 'ras_events' -Body {
    $filter = @{ LogName = 'Application'; ProviderName = 'RasClient'; Id = 20225, 20226, 20227; StartTime = $since }
    $facts['ras_events'] = @(Get-EventRecord -Filter $filter)
}
Invoke-Section -Name 'mdm_events' -Body {
    $filter = @{ LogName = 'Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin'; Id = 404; StartTime = $since }
    $facts['mdm_events'] = @(Get-EventRecord -Filter $filter -MessagePattern 'VPNv2')
}
Invoke-Section -Name 'rasman' -Body {
    $key = 'HKLM:\SYSTEM\CurrentControlSet\Services\RasMan\Config'
    $facts['rasman'] = [ordered]@{
        auto_trigger_disabled_profiles  = @(@(Get-RegistryValue -Path $key -Name 'AutoTriggerDisabledProfilesList') | Where-Object -FilterScript { $_ } | ForEach-Object -Process { [string]$_ })
        auto_trigger_profile_entry_name = ConvertTo-NullableString (Get-RegistryValue -Path $key -Name 'AutoTriggerProfileEntryName')
        user_sid                        = ConvertTo-NullableString (Get-RegistryValue -Path $key -Name 'UserSID')
    }
}

$facts['errors'] = $sectionErrors.ToArray()
# -Depth: the default of 2 would print nested objects as their type names.
ConvertTo-Json -Compress -Depth 8 -InputObject $facts
