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

    The shape of the document is specified in docs/facts.md (schema_version 1).

.OUTPUTS
    One compressed JSON document (see docs/facts.md, "ca.facts").
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# fleetfix-include: json
# fleetfix-include: time
# fleetfix-include: registry
# fleetfix-include: values
# fleetfix-include: certificates
# fleetfix-include: host
# fleetfix-include: probe

function Get-CaSigningCertificate {
    # CACertHash lists the thumbprints of every renewal of the CA certificate (older forms have spaces).
    param([string]$ConfigPath)
    foreach ($hash in @(Get-RegistryValue -Path $ConfigPath -Name 'CACertHash')) {
        if ($null -eq $hash) {
            continue
        }
        $certificate = Get-MachineCertificate -Store 'My' -Thumbprint $hash
        if ($null -ne $certificate) {
            [System.Convert]::ToBase64String($certificate.RawData)
        }
    }
}

$fqdn = Get-HostFqdn
$configRoot = 'HKLM:\SYSTEM\CurrentControlSet\Services\CertSvc\Configuration'
$caName = ConvertTo-NullableString (Get-RegistryValue -Path $configRoot -Name 'Active')
$caConfig = if ($null -ne $caName) { Join-Path -Path $configRoot -ChildPath $caName } else { $null }

$facts = [ordered]@{
    schema_version   = 1
    collected_at     = ConvertTo-IsoTime (Get-Date)
    computer_name    = $env:COMPUTERNAME
    fqdn             = $fqdn
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
