# fleetfix-script: rras.set-root-cert
<#
.SYNOPSIS
    Sets the root CA certificate RRAS accepts for IKEv2 machine certificates and reads it back.

.DESCRIPTION
    The fix for RRAS-AUTH-01 (IKEv2 error 13806: RootCertificateNameToAccept names a root the
    device certificates do not chain to, e.g. the old root after a PKI migration). Written for
    Windows PowerShell 5.1 and PowerShell 7 on Windows Server RRAS.

    The certificate must already be in Cert:\LocalMachine\Root: nothing is imported here, and a
    missing certificate is a terminating error.

    Idempotent: when Get-VpnAuthProtocol already shows the certificate, nothing is changed and
    "changed" is false. Otherwise Set-VpnAuthProtocol stores it and Get-VpnAuthProtocol is read
    back; a read-back naming another certificate is a terminating error (with several roots of the
    same subject in the store, RRAS may keep another one than the one given).

    Set-VpnAuthProtocol changes the stored configuration only: the RemoteAccess service keeps
    using the root it read at its start until it restarts (it warns "Configuration parameters will
    be modified after the Remote Access service is restarted."). "pending_restart" is true when
    that restart is needed (RemoteAccess is running), and null when this call changed nothing,
    because Windows cannot tell whether an earlier change still waits for a restart.
    "changed_at" is the host time right after the change: a RemoteAccess start at or after it
    runs with the new root (rras.restart-service -NotBefore).

.PARAMETER Thumbprint
    SHA-1 thumbprint of the root CA certificate (40 hex digits; spaces are ignored).

.OUTPUTS
    One compressed JSON document: changed, before_thumbprint, after_thumbprint, pending_restart,
    changed_at.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string]$Thumbprint
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# fleetfix-include: time
# fleetfix-include: values
# fleetfix-include: certificates

function Get-AcceptedRootThumbprint {
    # RootCertificateNameToAccept of Get-VpnAuthProtocol: an X509Certificate2 in 5.1, possibly the
    # DER bytes elsewhere; $null when unset.
    $value = Get-PropertyValue -InputObject (Get-VpnAuthProtocol) -Name 'RootCertificateNameToAccept'
    if ($null -eq $value) {
        return $null
    }
    if ($value -is [System.Security.Cryptography.X509Certificates.X509Certificate2]) {
        return $value.Thumbprint.ToUpperInvariant()
    }
    $bytes = [byte[]]@($value)
    if ($bytes.Length -eq 0) {
        return $null
    }
    return [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($bytes).Thumbprint.ToUpperInvariant()
}

$wanted = ($Thumbprint -replace '\s', '').ToUpperInvariant()
if ($wanted -notmatch '^[0-9A-F]{40}$') {
    throw "Thumbprint '$Thumbprint' is not a certificate thumbprint (40 hexadecimal digits)."
}
$certificate = Get-MachineCertificate -Store 'Root' -Thumbprint $wanted
if ($null -eq $certificate) {
    throw "No certificate with thumbprint $wanted in Cert:\LocalMachine\Root. Import the root CA certificate first."
}

$before = Get-AcceptedRootThumbprint
if ($before -eq $wanted) {
    $result = [ordered]@{
        changed           = $false
        before_thumbprint = $before
        after_thumbprint  = $before
        pending_restart   = $null
        changed_at        = $null
    }
}
else {
    $null = Set-VpnAuthProtocol -RootCertificateNameToAccept $certificate -PassThru
    # to the tick: a restart in the same second as the change, but before it, must not count
    $changedAt = ConvertTo-PreciseIsoTime (Get-Date)
    $after = Get-AcceptedRootThumbprint
    if ($after -ne $wanted) {
        $shown = if ($null -eq $after) { 'nothing' } else { $after }
        throw "Set-VpnAuthProtocol did not take: RootCertificateNameToAccept reads back $shown, not $wanted. Check Cert:\LocalMachine\Root for several roots with the subject '$($certificate.Subject)'."
    }
    $service = Get-Service -Name 'RemoteAccess' -ErrorAction SilentlyContinue
    $result = [ordered]@{
        changed           = $true
        before_thumbprint = $before
        after_thumbprint  = $after
        pending_restart   = ($null -ne $service -and $service.Status -eq 'Running')
        changed_at        = $changedAt
    }
}
ConvertTo-Json -Compress -Depth 2 -InputObject $result
