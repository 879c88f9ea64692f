# fleetfix-script: host.info
<#
.SYNOPSIS
    Reports who the host is: names, operating system build and PowerShell version.

.DESCRIPTION
    Read-only probe. The build number and update build revision (UBR) come from the registry key
    HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion, which is what winver shows; the caption
    comes from Win32_OperatingSystem.

.OUTPUTS
    One compressed JSON document with computer_name, fqdn, os_caption, os_build, os_ubr and
    ps_version.
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

# fleetfix-include: host

$currentVersion = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' -Name 'CurrentBuildNumber', 'UBR'
$operatingSystem = Get-CimInstance -ClassName 'Win32_OperatingSystem'
$fqdn = Get-HostFqdn

[ordered]@{
    computer_name = $env:COMPUTERNAME
    fqdn          = $fqdn
    os_caption    = $operatingSystem.Caption
    os_build      = [int]$currentVersion.CurrentBuildNumber
    os_ubr        = [int]$currentVersion.UBR
    ps_version    = $PSVersionTable.PSVersion.ToString()
} | ConvertTo-Json -Compress
