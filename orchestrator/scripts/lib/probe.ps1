# fleetfix-fragment: probe
# What every fact probe shares (docs/facts.md): sections that fail on their own, and the common
# objects of the document head. Uses Get-RegistryValue (include registry) and Get-PropertyValue and
# ConvertTo-NullableString (include values).
#
# Invoke-Section records a failure in $sectionErrors, defined here; the probe prints
# $sectionErrors.ToArray() as "errors".
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

function Get-ServiceState {
    # A service that does not exist is left out.
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
