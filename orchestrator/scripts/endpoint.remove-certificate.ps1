# fleetfix-script: endpoint.remove-certificate
<#
.SYNOPSIS
    Removes a certificate from LocalMachine\Root or LocalMachine\CA by thumbprint.

.DESCRIPTION
    The rollback of endpoint.import-certificate: it removes exactly the certificate an import
    added, named by its thumbprint. Idempotent: a certificate that is not in the store is not an
    error, "changed" is then false.

.PARAMETER Store
    Root (trusted root CAs) or CA (intermediate CAs).

.PARAMETER Thumbprint
    The SHA-1 thumbprint, 40 hexadecimal digits (spaces are ignored, as Windows shows them).

.OUTPUTS
    One compressed JSON document: store, thumbprint, changed.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateSet('Root', 'CA')]
    [string]$Store,
    [Parameter(Mandatory = $true)]
    [string]$Thumbprint
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$storeName = if ($Store -eq 'Root') { 'Root' } else { 'CA' }
$normalized = ($Thumbprint -replace '\s', '').ToUpperInvariant()
if ($normalized -notmatch '^[0-9A-F]{40}$') {
    throw "Thumbprint '$Thumbprint' is not a certificate thumbprint (40 hexadecimal digits)"
}

$path = Join-Path -Path "Cert:\LocalMachine\$storeName" -ChildPath $normalized
$changed = $false
if (Test-Path -LiteralPath $path) {
    Remove-Item -LiteralPath $path
    $changed = $true
}

$result = [ordered]@{
    store      = $storeName
    thumbprint = $normalized
    changed    = $changed
}
ConvertTo-Json -Compress -Depth 2 -InputObject $result
