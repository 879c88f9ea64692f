# fleetfix-fragment: certificates
# Reading the LocalMachine certificate stores.

function Get-StoreCertificate {
    # Every certificate of the named stores, store by store, as certificate entries (docs/facts.md):
    # the store, the base64 DER and whether the host holds the private key.
    param([string[]]$StoreName)
    foreach ($store in $StoreName) {
        foreach ($certificate in @(Get-ChildItem -Path "Cert:\LocalMachine\$store")) {
            [ordered]@{
                store           = $store
                der             = [System.Convert]::ToBase64String($certificate.RawData)
                has_private_key = [bool]$certificate.HasPrivateKey
            }
        }
    }
}

function Get-MachineCertificate {
    # The certificate with this thumbprint in Cert:\LocalMachine\<Store>, or $null. Everything but
    # hex digits is dropped first: the CACertHash entries of older CAs carry spaces.
    param(
        [string]$Store,
        [string]$Thumbprint
    )
    $normalized = ($Thumbprint -replace '[^0-9A-Fa-f]', '').ToUpperInvariant()
    Get-Item -LiteralPath "Cert:\LocalMachine\$Store\$normalized" -ErrorAction SilentlyContinue
}
