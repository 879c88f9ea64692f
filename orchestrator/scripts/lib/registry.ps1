# fleetfix-fragment: registry
# Registry reads that neither stop the script nor trip StrictMode on a missing key or value.

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
