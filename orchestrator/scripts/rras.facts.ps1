# fleetfix-script: rras.facts
<#
.SYNOPSIS
    Gathers an RRAS VPN server's facts in one go and prints them as one JSON document.

.DESCRIPTION
    Read-only probe for Windows Server RRAS, written for Windows PowerShell 5.1 and PowerShell 7.
    It reports raw facts; fleetfix judges them. Certificates are base64 DER, times ISO 8601 UTC
    strings, enums names. Each section runs on its own: a section that fails leaves its field null
    and adds an entry to "errors".

    Get-VpnAuthProtocol surfaces RootCertificateNameToAccept and CertificateAdvertised as
    X509Certificate2 objects in 5.1 and may surface byte arrays elsewhere; both are printed as DER.

    The shape of the document is specified in docs/facts.md (schema_version 1).

.OUTPUTS
    One compressed JSON document (see docs/facts.md, "rras.facts").
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

function ConvertTo-DerBase64 {
    # An X509Certificate2 (5.1) or the CIM uint8[] (elsewhere) as base64 DER; $null stays $null.
    param([object]$Value)
    if ($null -eq $Value) {
        return $null
    }
    if ($Value -is [System.Security.Cryptography.X509Certificates.X509Certificate]) {
        return [System.Convert]::ToBase64String($Value.GetRawCertData())
    }
    $bytes = [byte[]]@($Value)
    if ($bytes.Length -eq 0) {
        return $null
    }
    return [System.Convert]::ToBase64String($bytes)
}

function ConvertTo-TextList {
    # Always an array of strings: no $null element, no unrolled single value.
    param([object]$Value)
    return , [string[]]@(@($Value) | Where-Object -FilterScript { $null -ne $_ -and [string]$_ -ne '' } | ForEach-Object -Process { [string]$_ })
}

$fqdn = Get-HostFqdn

$facts = [ordered]@{
    schema_version       = 1
    collected_at         = ConvertTo-IsoTime (Get-Date)
    computer_name        = $env:COMPUTERNAME
    fqdn                 = $fqdn
    os                   = Get-OsInfo
    certificates         = $null
    auth_protocol        = $null
    ikev2_policy         = $null
    registry             = $null
    sstp_certificate_der = $null
    services             = $null
    errors               = $null
}

Invoke-Section -Name 'certificates' -Body {
    $facts['certificates'] = @(Get-StoreCertificate -StoreName 'My', 'Root', 'CA')
}
Invoke-Section -Name 'auth_protocol' -Body {
    $protocol = Get-VpnAuthProtocol
    $facts['auth_protocol'] = [ordered]@{
        user_auth_protocol_accepted      = ConvertTo-TextList (Get-PropertyValue $protocol 'UserAuthProtocolAccepted')
        tunnel_auth_protocols_advertised = ConvertTo-NullableString (Get-PropertyValue $protocol 'TunnelAuthProtocolsAdvertised')
        root_certificate_der             = ConvertTo-DerBase64 (Get-PropertyValue $protocol 'RootCertificateNameToAccept')
        certificate_advertised_der       = ConvertTo-DerBase64 (Get-PropertyValue $protocol 'CertificateAdvertised')
        certificate_ekus_to_accept       = ConvertTo-TextList (Get-PropertyValue $protocol 'CertificateEKUsToAccept')
    }
}
Invoke-Section -Name 'ikev2_policy' -Body {
    $configuration = Get-VpnServerConfiguration -TunnelType 'IKEv2'
    $custom = Get-PropertyValue $configuration 'CustomPolicy'
    $facts['ikev2_policy'] = [ordered]@{
        custom_policy                      = if ($null -eq $custom) { $null } else { [bool]$custom }
        authentication_transform_constants = ConvertTo-NullableString (Get-PropertyValue $configuration 'AuthenticationTransformConstants')
        cipher_transform_constants         = ConvertTo-NullableString (Get-PropertyValue $configuration 'CipherTransformConstants')
        encryption_method                  = ConvertTo-NullableString (Get-PropertyValue $configuration 'EncryptionMethod')
        integrity_check_method             = ConvertTo-NullableString (Get-PropertyValue $configuration 'IntegrityCheckMethod')
        pfs_group                          = ConvertTo-NullableString (Get-PropertyValue $configuration 'PfsGroup')
        dh_group                           = ConvertTo-NullableString (Get-PropertyValue $configuration 'DHGroup')
        sa_lifetime_seconds                = ConvertTo-NullableInt (Get-PropertyValue $configuration 'SALifeTimeSeconds')
        mm_sa_lifetime_seconds             = ConvertTo-NullableInt (Get-PropertyValue $configuration 'MMSALifeTimeSeconds')
        sa_data_size_kilobytes             = ConvertTo-NullableInt (Get-PropertyValue $configuration 'SADataSizeForRenegotiationKilobytes')
    }
}
Invoke-Section -Name 'registry' -Body {
    $ikev2 = 'HKLM:\SYSTEM\CurrentControlSet\Services\RemoteAccess\Parameters\Ikev2'
    $facts['registry'] = [ordered]@{
        cert_auth_flags                       = ConvertTo-NullableInt (Get-RegistryValue -Path $ikev2 -Name 'CertAuthFlags')
        enable_server_fragmentation           = ConvertTo-NullableInt (Get-RegistryValue -Path $ikev2 -Name 'EnableServerFragmentation')
        ike_num_established_for_initial_query = ConvertTo-NullableInt (Get-RegistryValue -Path 'HKLM:\SYSTEM\CurrentControlSet\Services\IKEEXT\Parameters' -Name 'IkeNumEstablishedForInitialQuery')
        ipv6_disabled_components              = ConvertTo-NullableInt (Get-RegistryValue -Path 'HKLM:\SYSTEM\CurrentControlSet\Services\Tcpip6\Parameters' -Name 'DisabledComponents')
    }
}
Invoke-Section -Name 'sstp_certificate_der' -Body {
    $facts['sstp_certificate_der'] = ConvertTo-DerBase64 (Get-PropertyValue (Get-RemoteAccess) 'SslCertificate')
}
Invoke-Section -Name 'services' -Body {
    $facts['services'] = @(Get-ServiceState -Name 'RemoteAccess', 'IKEEXT')
}

$facts['errors'] = $sectionErrors.ToArray()
# -Depth: the default of 2 would print nested objects as their type names.
ConvertTo-Json -Compress -Depth 8 -InputObject $facts
