# fleetfix-script: ca.facts
<#
.SYNOPSIS
    Gathers an AD CS certification authority's facts in one go and prints them as one JSON document.

.DESCRIPTION
    Read-only probe for an AD CS issuing or root CA, written for Windows PowerShell 5.1 and 7.
    It reports raw facts; fleetfix judges them. Certificates are base64 DER, times ISO 8601 UTC
    strings, enums names. Each section runs on its own: a section that fails leaves its field null
    and adds an entry to "errors".

    CRLs are read as files from the CA's local publication folder (CertEnroll); fleetfix fetches
    the HTTP distribution points itself. The schedule comes from the CA's registry configuration,
    which is what certutil -getreg reads, so no output has to be parsed in a locale.
    The helper functions are the same in every fleetfix probe: a probe is sent as one text, so it
    cannot share a module with the others.

    The shape of the document is specified in docs/facts.md (schema_version 1).

.OUTPUTS
    One compressed JSON document (see docs/facts.md, "ca.facts").
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# Windows PowerShell 5.1 adds an ETS Count property to arrays, and ConvertTo-Json then prints a
# wrapped array as {"value":[...],"Count":n}; removing the type data gives plain JSON arrays.
if ($PSVersionTable.PSVersion.Major -lt 6) {
    Remove-TypeData -TypeName 'System.Array' -ErrorAction SilentlyContinue
}

$sectionErrors = [System.Collections.Generic.List[object]]::new()

function Invoke-Section {
    # Runs one section; a failure is recorded and the section's field stays null.
    param(
        [string]$Name,
        [scriptblock]$Body
    )
    try {
        & $Body
    }
    catch {
        $sectionErrors.Add([ordered]@{ section = $Name; message = [string]$_.Exception.Message })
    }
}

function ConvertTo-IsoTime {
    # 5.1 would print "\/Date(...)\/"; an explicit invariant format is the same on every host.
    param([datetime]$Value)
    $Value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}

function Get-RegistryValue {
    # The value, or $null when the key or the value does not exist (StrictMode-safe).
    param(
        [string]$Path,
        [string]$Name
    )
    $item = Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction SilentlyContinue
    if ($null -eq $item) {
        return $null
    }
    return $item.$Name
}

function Get-PropertyValue {
    # A property of an object, or $null when the object lacks it (StrictMode-safe).
    param(
        [object]$InputObject,
        [string]$Name
    )
    if ($null -eq $InputObject) {
        return $null
    }
    $property = $InputObject.PSObject.Properties[$Name]
    if ($null -eq $property) {
        return $null
    }
    return $property.Value
}

function ConvertTo-NullableString {
    # Enums become their names; $null and empty text become $null.
    param([object]$Value)
    if ($null -eq $Value) {
        return $null
    }
    $text = [string]$Value
    if ($text -eq '') {
        return $null
    }
    return $text
}

function Get-StoreCertificate {
    param([string[]]$StoreName)
    foreach ($store in $StoreName) {
        foreach ($certificate in @(Get-ChildItem -Path "Cert:\LocalMachine\$store")) {
            [ordered]@{
                store           = $store
                der             = [System.Convert]::ToBase64String($certificate.RawData)
                has_private_key = [bool]$certificate.HasPrivateKey
            }
        }
    }
}

function Get-OsInfo {
    $key = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
    [ordered]@{
        caption         = [string](Get-CimInstance -ClassName 'Win32_OperatingSystem').Caption
        build           = [int](Get-RegistryValue -Path $key -Name 'CurrentBuildNumber')
        ubr             = [int](Get-RegistryValue -Path $key -Name 'UBR')
        display_version = ConvertTo-NullableString (Get-RegistryValue -Path $key -Name 'DisplayVersion')
        edition_id      = ConvertTo-NullableString (Get-RegistryValue -Path $key -Name 'EditionID')
    }
}

function ConvertTo-NullableInt {
    param([object]$Value)
    if ($null -eq $Value -or [string]$Value -eq '') {
        return $null
    }
    return [int64]$Value
}

function Get-ServiceState {
    param([string[]]$Name)
    foreach ($serviceName in $Name) {
        $service = Get-Service -Name $serviceName -ErrorAction SilentlyContinue
        if ($null -ne $service) {
            [ordered]@{
                name       = $serviceName
                status     = [string]$service.Status
                start_type = ConvertTo-NullableString (Get-PropertyValue -InputObject $service -Name 'StartType')
            }
        }
    }
}

function Get-CaSigningCertificate {
    # CACertHash lists the thumbprints of every renewal of the CA certificate (older forms have spaces).
    param([string]$ConfigPath)
    foreach ($hash in @(Get-RegistryValue -Path $ConfigPath -Name 'CACertHash')) {
        if ($null -eq $hash) {
            continue
        }
        $thumbprint = ([string]$hash -replace '[^0-9A-Fa-f]', '').ToUpperInvariant()
        $certificate = Get-Item -LiteralPath "Cert:\LocalMachine\My\$thumbprint" -ErrorAction SilentlyContinue
        if ($null -ne $certificate) {
            [System.Convert]::ToBase64String($certificate.RawData)
        }
    }
}

$ipProperties = [System.Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties()
$fqdn = $ipProperties.HostName
if (-not [string]::IsNullOrEmpty($ipProperties.DomainName)) {
    $fqdn = '{0}.{1}' -f $ipProperties.HostName, $ipProperties.DomainName
}
$configRoot = 'HKLM:\SYSTEM\CurrentControlSet\Services\CertSvc\Configuration'
$caName = ConvertTo-NullableString (Get-RegistryValue -Path $configRoot -Name 'Active')
$caConfig = if ($null -ne $caName) { Join-Path -Path $configRoot -ChildPath $caName } else { $null }

$facts = [ordered]@{
    schema_version   = 1
    collected_at     = ConvertTo-IsoTime (Get-Date)
    computer_name    = $env:COMPUTERNAME
    fqdn             = $fqdn.ToLowerInvariant()
    os               = Get-OsInfo
    ca_name          = $caName
    ca_certificates  = $null
    certificates     = $null
    crls             = $null
    crl_schedule     = $null
    publication_urls = $null
    services         = $null
    errors           = $null
}

Invoke-Section -Name 'ca_certificates' -Body {
    if ($null -ne $caConfig) {
        $facts['ca_certificates'] = @(Get-CaSigningCertificate -ConfigPath $caConfig)
    }
}
Invoke-Section -Name 'certificates' -Body {
    $facts['certificates'] = @(Get-StoreCertificate -StoreName 'Root', 'CA')
}
Invoke-Section -Name 'crls' -Body {
    $folder = Join-Path -Path $env:SystemRoot -ChildPath 'System32\CertSrv\CertEnroll'
    $facts['crls'] = @(Get-ChildItem -LiteralPath $folder -Filter '*.crl' -File -ErrorAction SilentlyContinue | ForEach-Object -Process {
            [ordered]@{
                file = $_.Name
                der  = [System.Convert]::ToBase64String([System.IO.File]::ReadAllBytes($_.FullName))
            }
        })
}
Invoke-Section -Name 'crl_schedule' -Body {
    if ($null -ne $caConfig) {
        $facts['crl_schedule'] = [ordered]@{
            crl_period_units       = ConvertTo-NullableInt (Get-RegistryValue -Path $caConfig -Name 'CRLPeriodUnits')
            crl_period             = ConvertTo-NullableString (Get-RegistryValue -Path $caConfig -Name 'CRLPeriod')
            crl_overlap_units      = ConvertTo-NullableInt (Get-RegistryValue -Path $caConfig -Name 'CRLOverlapUnits')
            crl_overlap_period     = ConvertTo-NullableString (Get-RegistryValue -Path $caConfig -Name 'CRLOverlapPeriod')
            crl_delta_period_units = ConvertTo-NullableInt (Get-RegistryValue -Path $caConfig -Name 'CRLDeltaPeriodUnits')
            crl_delta_period       = ConvertTo-NullableString (Get-RegistryValue -Path $caConfig -Name 'CRLDeltaPeriod')
        }
    }
}
Invoke-Section -Name 'publication_urls' -Body {
    if ($null -ne $caConfig) {
        $facts['publication_urls'] = @(@(Get-RegistryValue -Path $caConfig -Name 'CRLPublicationURLs') | Where-Object -FilterScript { $_ } | ForEach-Object -Process { [string]$_ })
    }
}
Invoke-Section -Name 'services' -Body {
    $facts['services'] = @(Get-ServiceState -Name 'CertSvc')
}

$facts['errors'] = $sectionErrors.ToArray()
# -Depth: the default of 2 would print nested objects as their type names.
ConvertTo-Json -Compress -Depth 8 -InputObject $facts
