# fleetfix-script: ca.publish-crl
<#
.SYNOPSIS
    Publishes a new base and delta CRL on an AD CS certification authority (certutil -crl).

.DESCRIPTION
    The fix for CA-CRL-01 (an issuing CA's CRL expired or about to: every IKEv2 server that checks
    revocation refuses device certificates, error 13806). Written for Windows PowerShell 5.1 and
    PowerShell 7, run on the CA. certutil -crl signs a fresh base CRL (and a delta, when deltas are
    configured), writes them to every publication location of CRLPublicationURLs and restarts a
    stalled publication schedule; CertSvc is not restarted.

    Idempotent: when the CA's newest base CRL in CertEnroll has a thisUpdate at or after NotBefore,
    it was published since then, so nothing is published again and "changed" is false. An empty
    NotBefore always publishes. After publishing, the newest base CRL is read back and must be newer
    than NotBefore (and than the previous one).

    .NET Framework has no CRL class and certutil -dump prints localised labels, so the few fields
    reported (thisUpdate, nextUpdate, CRL Number, delta indicator) are read from the DER of each
    file (RFC 5280 TBSCertList). Only CRLs issued under the CA's current certificate count.

.PARAMETER NotBefore
    ISO 8601 time (UTC, e.g. 2026-03-01T02:00:00Z); empty: publish in any case.

.OUTPUTS
    One compressed JSON document: changed, previous_base, base, delta, published_to.
#>
[CmdletBinding()]
param(
    [string]$NotBefore
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# fleetfix-include: json
# fleetfix-include: time
# fleetfix-include: registry
# fleetfix-include: certificates

function Read-DerElement {
    # The DER element at Offset: its tag, where its content starts and where the next one starts.
    param(
        [byte[]]$Data,
        [int]$Offset
    )
    $length = [int]$Data[$Offset + 1]
    $start = $Offset + 2
    if ($length -ge 0x80) {
        $count = $length -band 0x7F
        $length = 0
        for ($index = 0; $index -lt $count; $index++) {
            $length = ($length * 256) + [int]$Data[$start + $index]
        }
        $start += $count
    }
    [pscustomobject]@{ Tag = [int]$Data[$Offset]; Offset = $Offset; Start = $start; End = $start + $length }
}

function ConvertFrom-DerTime {
    # UTCTime (tag 0x17, two-digit year) or GeneralizedTime (0x18), always UTC ("Z") in a CRL.
    param(
        [byte[]]$Data,
        [object]$Element
    )
    $text = [System.Text.Encoding]::ASCII.GetString($Data, $Element.Start, $Element.End - $Element.Start)
    $format = if ($Element.Tag -eq 0x17) { "yyMMddHHmmss'Z'" } else { "yyyyMMddHHmmss'Z'" }
    $styles = [System.Globalization.DateTimeStyles]::AssumeUniversal -bor [System.Globalization.DateTimeStyles]::AdjustToUniversal
    [datetime]::ParseExact($text, $format, [System.Globalization.CultureInfo]::InvariantCulture, $styles)
}

function Get-CrlSummary {
    # File name, issuer (DER name), thisUpdate, nextUpdate, CRL Number and whether it is a delta.
    param([System.IO.FileInfo]$File)
    $data = [System.IO.File]::ReadAllBytes($File.FullName)
    $list = Read-DerElement -Data $data -Offset 0
    $tbs = Read-DerElement -Data $data -Offset $list.Start
    $element = Read-DerElement -Data $data -Offset $tbs.Start
    if ($element.Tag -eq 0x02) {
        # version v2; the signature algorithm follows
        $element = Read-DerElement -Data $data -Offset $element.End
    }
    $issuer = Read-DerElement -Data $data -Offset $element.End
    $thisUpdate = Read-DerElement -Data $data -Offset $issuer.End
    $summary = [ordered]@{
        file        = $File.Name
        issuer      = [System.Convert]::ToBase64String($data, $issuer.Offset, $issuer.End - $issuer.Offset)
        this_update = ConvertFrom-DerTime -Data $data -Element $thisUpdate
        next_update = $null
        crl_number  = $null
        delta       = $false
    }
    $element = $thisUpdate
    while ($element.End -lt $tbs.End) {
        $element = Read-DerElement -Data $data -Offset $element.End
        if ($element.Tag -eq 0x17 -or $element.Tag -eq 0x18) {
            $summary['next_update'] = ConvertFrom-DerTime -Data $data -Element $element
        }
        elseif ($element.Tag -eq 0xA0) {
            # crlExtensions [0] EXPLICIT SEQUENCE OF Extension { extnID, critical, extnValue }
            $extensions = Read-DerElement -Data $data -Offset $element.Start
            $offset = $extensions.Start
            while ($offset -lt $extensions.End) {
                $extension = Read-DerElement -Data $data -Offset $offset
                $oid = Read-DerElement -Data $data -Offset $extension.Start
                $oidHex = [System.BitConverter]::ToString($data, $oid.Start, $oid.End - $oid.Start)
                $value = Read-DerElement -Data $data -Offset $oid.End
                if ($value.Tag -eq 0x01) {
                    $value = Read-DerElement -Data $data -Offset $value.End
                }
                if ($oidHex -eq '55-1D-14') {
                    # 2.5.29.20 CRL Number: an INTEGER inside the OCTET STRING
                    $integer = Read-DerElement -Data $data -Offset $value.Start
                    $number = [int64]0
                    for ($index = $integer.Start; $index -lt $integer.End; $index++) {
                        $number = ($number * 256) + [int64]$data[$index]
                    }
                    $summary['crl_number'] = $number
                }
                elseif ($oidHex -eq '55-1D-1B') {
                    # 2.5.29.27 Delta CRL Indicator
                    $summary['delta'] = $true
                }
                $offset = $extension.End
            }
        }
    }
    [pscustomobject]$summary
}

function Get-CaCrl {
    # The CRLs in CertEnroll issued under the CA's current certificate, newest first.
    param(
        [string]$Folder,
        [string]$IssuerName
    )
    $found = foreach ($file in @(Get-ChildItem -LiteralPath $Folder -Filter '*.crl' -File -ErrorAction SilentlyContinue)) {
        $summary = $null
        try {
            $summary = Get-CrlSummary -File $file
        }
        catch {
            Write-Warning -Message "Skipping $($file.Name): not a readable CRL ($($_.Exception.Message))"
        }
        if ($null -ne $summary -and ($null -eq $IssuerName -or $summary.issuer -eq $IssuerName)) {
            $summary
        }
    }
    @($found | Sort-Object -Property 'this_update' -Descending)
}

function ConvertTo-CrlDocument {
    param([object]$Summary)
    if ($null -eq $Summary) {
        return $null
    }
    [ordered]@{
        file        = $Summary.file
        crl_number  = $Summary.crl_number
        this_update = ConvertTo-IsoTime $Summary.this_update
        next_update = if ($null -eq $Summary.next_update) { $null } else { ConvertTo-IsoTime $Summary.next_update }
    }
}

function Get-PublicationTarget {
    # Where a CRL file went: CRLPublicationURLs entries are "flags:location" with %3%8%9 standing for
    # the file name. Flags: 1 publish base, 64 publish delta here; 2 (base) and 4 (delta) name the
    # URL in issued certificates, which is where clients fetch it.
    param(
        [string[]]$Entries,
        [string]$BaseFile,
        [string]$DeltaFile
    )
    foreach ($entry in $Entries) {
        $flags, $location = $entry -split ':', 2
        if ($null -eq $location -or $flags -notmatch '^\d+$') {
            continue
        }
        $flags = [int]$flags
        $isUrl = $location -match '^(?i)https?://'
        foreach ($pair in @(@($BaseFile, 1, 2), @($DeltaFile, 64, 4))) {
            $file, $publishFlag, $urlFlag = $pair
            if ([string]::IsNullOrEmpty($file)) {
                continue
            }
            $stem = [System.IO.Path]::GetFileNameWithoutExtension($file)
            if ($isUrl -and ($flags -band $urlFlag)) {
                $location.Replace('%3%8%9', $stem.Replace(' ', '%20'))
            }
            elseif (-not $isUrl -and ($flags -band $publishFlag)) {
                $location.Replace('%3%8%9', $stem)
            }
        }
    }
}

$notBeforeTime = ConvertFrom-IsoTime $NotBefore

$configRoot = 'HKLM:\SYSTEM\CurrentControlSet\Services\CertSvc\Configuration'
$caName = Get-RegistryValue -Path $configRoot -Name 'Active'
if ([string]::IsNullOrEmpty($caName)) {
    throw 'No certification authority is installed on this host (CertSvc\Configuration\Active is not set).'
}
$caConfig = Join-Path -Path $configRoot -ChildPath $caName

# The CA's current certificate is the last CACertHash entry; its subject is every CRL's issuer.
$issuerName = $null
$hashes = @(Get-RegistryValue -Path $caConfig -Name 'CACertHash' | Where-Object -FilterScript { $_ })
if ($hashes.Count -gt 0) {
    $caCertificate = Get-MachineCertificate -Store 'My' -Thumbprint $hashes[-1]
    if ($null -ne $caCertificate) {
        $issuerName = [System.Convert]::ToBase64String($caCertificate.SubjectName.RawData)
    }
}

$folder = Join-Path -Path $env:SystemRoot -ChildPath 'System32\CertSrv\CertEnroll'
$crls = Get-CaCrl -Folder $folder -IssuerName $issuerName
$previous = $crls | Where-Object -FilterScript { -not $_.delta } | Select-Object -First 1
$current = $null -ne $notBeforeTime -and $null -ne $previous -and $previous.this_update -ge $notBeforeTime

$publishedTo = @()
if (-not $current) {
    $certutil = Join-Path -Path $env:SystemRoot -ChildPath 'System32\certutil.exe'
    $output = & $certutil -crl 2>&1
    if ($LASTEXITCODE -ne 0) {
        # certutil prints several lines; the error record's message keeps them on one.
        $text = (($output | Out-String).Trim() -replace '\s*\r?\n\s*', ' ')
        throw ('certutil -crl failed (exit code {0}): {1}' -f $LASTEXITCODE, $text)
    }
    $crls = Get-CaCrl -Folder $folder -IssuerName $issuerName
}
$base = $crls | Where-Object -FilterScript { -not $_.delta } | Select-Object -First 1
$delta = $crls | Where-Object -FilterScript { $_.delta } | Select-Object -First 1
if ($null -eq $base) {
    throw "No base CRL of $caName in $folder after certutil -crl: check the local entry of CRLPublicationURLs."
}
if (-not $current) {
    $stale = ($null -ne $notBeforeTime -and $base.this_update -lt $notBeforeTime) -or ($null -ne $previous -and $base.this_update -le $previous.this_update)
    if ($stale) {
        throw "certutil -crl succeeded but the newest base CRL in $folder is still $($base.file) of $(ConvertTo-IsoTime $base.this_update): check the local entry of CRLPublicationURLs."
    }
    $entries = @(Get-RegistryValue -Path $caConfig -Name 'CRLPublicationURLs' | Where-Object -FilterScript { $_ } | ForEach-Object -Process { [string]$_ })
    $deltaFile = if ($null -ne $delta -and $delta.this_update -ge $base.this_update) { $delta.file } else { $null }
    $publishedTo = @(Get-PublicationTarget -Entries $entries -BaseFile $base.file -DeltaFile $deltaFile)
}

$result = [ordered]@{
    changed       = -not $current
    previous_base = ConvertTo-CrlDocument $previous
    base          = ConvertTo-CrlDocument $base
    delta         = ConvertTo-CrlDocument $delta
    published_to  = $publishedTo
}
ConvertTo-Json -Compress -Depth 4 -InputObject $result
