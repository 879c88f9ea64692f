# fleetfix-script: endpoint.import-certificate
<#
.SYNOPSIS
    Imports a CA certificate into LocalMachine\Root or LocalMachine\CA.

.DESCRIPTION
    The fix for a root or intermediate CA certificate missing on a host (IKEv2 error 13806: the
    device cannot build its own or the VPN server's chain). The certificate arrives as base64 DER,
    is written to a temporary .cer file and imported with Import-Certificate, which works the same
    on Windows PowerShell 5.1 and PowerShell 7. Importing into the LocalMachine stores needs no
    confirmation (only CurrentUser\Root prompts).

    Idempotent: when the store already holds a certificate with the same thumbprint, nothing is
    imported and "changed" is false.

.PARAMETER Store
    Root (trusted root CAs) or CA (intermediate CAs).

.PARAMETER CertificateBase64
    The certificate, DER encoded, as base64 without line breaks.

.OUTPUTS
    One compressed JSON document: store, thumbprint, subject, changed.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateSet('Root', 'CA')]
    [string]$Store,
    [Parameter(Mandatory = $true)]
    [string]$CertificateBase64
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# ValidateSet ignores case; the store is reported as Windows names it.
$storeName = if ($Store -eq 'Root') { 'Root' } else { 'CA' }
$storePath = "Cert:\LocalMachine\$storeName"

try {
    $bytes = [System.Convert]::FromBase64String($CertificateBase64)
    $certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($bytes)
}
catch {
    throw "CertificateBase64 is not a base64 DER certificate: $($_.Exception.Message)"
}

$changed = $false
if (-not (Test-Path -LiteralPath (Join-Path -Path $storePath -ChildPath $certificate.Thumbprint))) {
    $file = Join-Path -Path ([System.IO.Path]::GetTempPath()) -ChildPath ('fleetfix-{0}.cer' -f [guid]::NewGuid())
    try {
        [System.IO.File]::WriteAllBytes($file, $bytes)
        $null = Import-Certificate -FilePath $file -CertStoreLocation $storePath
    }
    finally {
        Remove-Item -LiteralPath $file -Force -ErrorAction SilentlyContinue
    }
    $changed = $true
}

$result = [ordered]@{
    store      = $storeName
    thumbprint = $certificate.Thumbprint.ToUpperInvariant()
    subject    = $certificate.Subject
    changed    = $changed
}
ConvertTo-Json -Compress -Depth 2 -InputObject $result
