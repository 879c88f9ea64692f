"""``--param NAME=VALUE`` on the command line: text in, typed parameter values out.

The command line only has text, so each value is converted by the parameter's type:

* ``string``: as given (``--param root_thumbprint=`` gives the empty string);
* ``int``: a decimal integer, sign allowed;
* ``bool``: ``true``/``false``, ``yes``/``no``, ``on``/``off`` or ``1``/``0``, any case;
* ``string_list``: items separated by commas, spaces around them dropped; empty text is an empty list.

Then the parameter's own rules apply (pattern, choices, min, max).  Every problem is a
:class:`~orchestrator.errors.PlaybookError` naming the ``--param`` field and the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.actions.model import ArgType
from orchestrator.errors import PlaybookError
from orchestrator.playbook.model import PARAM_FIELD, Parameter, ParamValue, Playbook

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_param_overrides(items: Iterable[str], playbook: Playbook) -> dict[str, ParamValue]:
    """``["name=value", ...]`` as typed values for ``playbook``'s parameters (only those given)."""
    values: dict[str, ParamValue] = {}
    for item in items:
        name, separator, text = item.partition("=")
        name = name.strip()
        if not separator or not name:
            raise PlaybookError(f"expected NAME=VALUE, not {item!r}", field=PARAM_FIELD)
        parameter = playbook.parameter(name)
        if name in values:
            raise PlaybookError(f"parameter {name!r} is given twice", field=PARAM_FIELD)
        value = convert(text, parameter, name)
        problem = parameter.problem(value)
        if problem is not None:
            raise PlaybookError(f"parameter {name!r}: {problem}", field=PARAM_FIELD)
        values[name] = value
    return values


def convert(text: str, parameter: Parameter, name: str) -> ParamValue:
    """``text`` as a value of the parameter's type; PlaybookError when it is not one."""
    if parameter.type is ArgType.STRING:
        return text
    if parameter.type is ArgType.STRING_LIST:
        return tuple(part.strip() for part in text.split(",")) if text.strip() else ()
    word = text.strip().lower()
    if parameter.type is ArgType.BOOL:
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise PlaybookError(
            f"parameter {name!r} is a bool: use true or false, not {text!r}", field=PARAM_FIELD
        )
    try:
        return int(word, 10)
    except ValueError:
        raise PlaybookError(
            f"parameter {name!r} is an int: {text!r} is not an integer", field=PARAM_FIELD
        ) from None


__all__ = ["convert", "parse_param_overrides"]
