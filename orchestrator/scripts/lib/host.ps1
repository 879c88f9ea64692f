# fleetfix-fragment: host
# Who the host is, the same way in every script that names it.

function Get-HostFqdn {
    # The host name and the primary DNS suffix, lower case: the name fleetfix's inventory uses.
    $ipProperties = [System.Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties()
    $fqdn = $ipProperties.HostName
    if (-not [string]::IsNullOrEmpty($ipProperties.DomainName)) {
        $fqdn = '{0}.{1}' -f $ipProperties.HostName, $ipProperties.DomainName
    }
    $fqdn.ToLowerInvariant()
}
