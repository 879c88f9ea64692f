"""``ConvertTo-Json -Compress`` as Windows PowerShell 5.1 writes it, for handler output.

5.1 serialises through .NET's ``JavaScriptSerializer``, which escapes ``<``, ``>``, ``&`` and
``'`` as ``\\u003c``-style sequences and control characters as ``\\uXXXX`` (except ``\\b \\t \\n
\\f \\r``).  Handlers print with this so the product's parser sees what a real host prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_UNICODE = frozenset("<>&'")


def _string(value: str) -> str:
    parts = ['"']
    for char in value:
        if char in _SHORT:
            parts.append(_SHORT[char])
        elif char in _UNICODE or ord(char) < 0x20:
            parts.append(f"\\u{ord(char):04x}")
        else:
            parts.append(char)
    parts.append('"')
    return "".join(parts)


def to_json(value: object) -> str:
    """Compressed JSON of dicts, lists, strings, numbers, booleans and ``None``, 5.1-style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_string(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")
