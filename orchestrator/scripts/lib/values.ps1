# fleetfix-fragment: values
# Shaping values for the JSON document: absent is $null (never "" or a StrictMode error), enums are
# their names, numbers are numbers.

function Get-PropertyValue {
    # A property of an object, or $null when the object lacks it (StrictMode-safe).
    param(
        [object]$InputObject,
        [string]$Name
    )
    if ($null -eq $InputObject) {
        return $null
    }
    $property = $InputObject.PSObject.Properties[$Name]
    if ($null -eq $property) {
        return $null
    }
    return $property.Value
}

function ConvertTo-NullableString {
    # Enums become their names; $null and empty text become $null.
    param([object]$Value)
    if ($null -eq $Value) {
        return $null
    }
    $text = [string]$Value
    if ($text -eq '') {
        return $null
    }
    return $text
}

function ConvertTo-NullableInt {
    # A number as [int64] (a registry DWORD or a CIM uint32 alike); $null and empty text become $null.
    param([object]$Value)
    if ($null -eq $Value -or [string]$Value -eq '') {
        return $null
    }
    return [int64]$Value
}
