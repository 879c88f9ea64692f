# fleetfix-script: endpoint.cert-pulse
<#
.SYNOPSIS
    Triggers machine certificate autoenrollment and waits for a new device certificate.

.DESCRIPTION
    The fix for a device certificate that is missing, unfit (EKU, name, expired, no private key)
    or revoked: autoenrollment requests a new certificate from the enterprise CA for this computer
    (Client Authentication, subject = the computer's FQDN) and archives the certificates it
    supersedes. The machine autoenrollment task (Certificate Services Client\SystemTask, what
    "certutil -pulse" starts) is started, then LocalMachine\My is polled for a bounded time.

    A suitable certificate is one with a private key, Client Authentication, the computer's FQDN as
    a DNS name, not expired, and issued at or after NotBefore. AD CS backdates a certificate's
    NotBefore by its clock-skew allowance (ClockSkewMinutes, 10 by default), so the comparison
    allows that much.

    Idempotent: when a suitable certificate issued since NotBefore is already there, the task is
    not started again and "changed" is false.

.PARAMETER NotBefore
    ISO 8601 time (UTC when no offset is given) from which a certificate counts as new: when the
    remediation was planned.

.OUTPUTS
    One compressed JSON document: triggered, certificate (thumbprint, subject, not_after, der) or
    null when none arrived in time, changed.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string]$NotBefore
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# fleetfix-include: time
# fleetfix-include: host

$clientAuthentication = '1.3.6.1.5.5.7.3.2'
$clockSkew = [System.TimeSpan]::FromMinutes(10)
$waitSeconds = 30
$pollSeconds = 2

# Not ConvertFrom-IsoTime (time fragment): NotBefore is required here, and text that is not a
# time gets this script's own message.
$since = [datetime]::MinValue
$styles = [System.Globalization.DateTimeStyles]::AssumeUniversal -bor [System.Globalization.DateTimeStyles]::AdjustToUniversal
if (-not [datetime]::TryParse($NotBefore, [System.Globalization.CultureInfo]::InvariantCulture, $styles, [ref]$since)) {
    throw "NotBefore '$NotBefore' is not a time (ISO 8601, e.g. 2026-03-01T02:00:00Z)"
}
$earliest = $since.Subtract($clockSkew)

$fqdn = Get-HostFqdn

function Test-NewDeviceCertificate {
    # Fit for the device tunnel and issued since NotBefore (less the CA's clock skew).
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)
    if (-not $Certificate.HasPrivateKey) {
        return $false
    }
    if ($Certificate.NotAfter.ToUniversalTime() -le [datetime]::UtcNow) {
        return $false
    }
    if ($Certificate.NotBefore.ToUniversalTime() -lt $earliest) {
        return $false
    }
    $usages = @($Certificate.Extensions |
            Where-Object -FilterScript { $_ -is [System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension] } |
            ForEach-Object -Process { $_.EnhancedKeyUsages } |
            ForEach-Object -Process { $_.Value })
    if ($usages -notcontains $clientAuthentication) {
        return $false
    }
    $names = @($Certificate.DnsNameList | ForEach-Object -Process { ([string]$_.Unicode).ToLowerInvariant() })
    return ($names -contains $fqdn)
}

function Find-NewDeviceCertificate {
    # The newest suitable certificate, or $null.
    $mine = @(Get-ChildItem -Path 'Cert:\LocalMachine\My' | Sort-Object -Property NotBefore -Descending)
    foreach ($certificate in $mine) {
        if (Test-NewDeviceCertificate -Certificate $certificate) {
            return $certificate
        }
    }
    return $null
}

$found = Find-NewDeviceCertificate
$triggered = $false
if ($null -eq $found) {
    $null = Start-ScheduledTask -TaskPath '\Microsoft\Windows\CertificateServicesClient\' -TaskName 'SystemTask'
    $triggered = $true
    $deadline = [datetime]::UtcNow.AddSeconds($waitSeconds)
    while ($null -eq $found -and [datetime]::UtcNow -lt $deadline) {
        Start-Sleep -Seconds $pollSeconds
        $found = Find-NewDeviceCertificate
    }
}

$certificate = $null
if ($null -ne $found) {
    $certificate = [ordered]@{
        thumbprint = $found.Thumbprint.ToUpperInvariant()
        subject    = $found.Subject
        not_after  = ConvertTo-IsoTime $found.NotAfter
        der        = [System.Convert]::ToBase64String($found.RawData)
    }
}

$result = [ordered]@{
    triggered   = $triggered
    certificate = $certificate
    changed     = ($triggered -and $null -ne $found)
}
ConvertTo-Json -Compress -Depth 3 -InputObject $result
