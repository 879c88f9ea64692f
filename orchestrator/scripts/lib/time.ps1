# fleetfix-fragment: time
# Times as fleetfix reads and writes them: ISO 8601 in UTC with a "Z", in the invariant culture.
# 5.1 would print a [datetime] as "\/Date(...)\/"; an explicit invariant format is the same on
# every host and in every locale.

function ConvertTo-IsoTime {
    # To the second: the times of the facts and of the action documents (docs/facts.md, "Times").
    param([datetime]$Value)
    $Value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}

function ConvertTo-PreciseIsoTime {
    # To the tick: rras.set-root-cert's changed_at and rras.restart-service's started_at are
    # compared with each other, and a restart in the same second as a change, but before it, must
    # not count. One function for both, so the two can never drift apart.
    param([datetime]$Value)
    $Value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
}

function ConvertFrom-IsoTime {
    # A NotBefore parameter as a UTC [datetime] (a time without an offset is UTC); $null for empty
    # text. Text that is not a time stops the script with .NET's own "not a valid DateTime" message.
    param([string]$Text)
    if ([string]::IsNullOrWhiteSpace($Text)) {
        return $null
    }
    $styles = [System.Globalization.DateTimeStyles]::AssumeUniversal -bor [System.Globalization.DateTimeStyles]::AdjustToUniversal
    return [datetime]::Parse($Text, [System.Globalization.CultureInfo]::InvariantCulture, $styles)
}
