# fleetfix-fragment: json
# Plain JSON arrays on every host, for scripts that print lists. It runs where it is included, so
# include it before anything is printed.
#
# Windows PowerShell 5.1 adds an ETS Count property to arrays, and ConvertTo-Json then prints a
# wrapped array as {"value":[...],"Count":n}; removing the type data gives plain JSON arrays.
if ($PSVersionTable.PSVersion.Major -lt 6) {
    Remove-TypeData -TypeName 'System.Array' -ErrorAction SilentlyContinue
}
