"""What a script sent back -> its validated output model: pure functions over pypsrp's values.

A shipped script prints exactly one JSON document (``ConvertTo-Json -Compress``), which pypsrp
hands over as one ``str`` in ``PowerShell.output``.  Anything else -- no output, several outputs,
an object instead of text, text that is not JSON or does not match the schema -- is a
:class:`BadOutputError` that says what arrived, shortened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from xml.etree.ElementTree import Element

from pydantic import BaseModel, ValidationError

from orchestrator.errors import BadOutputError, OutputTooLargeError

Output = TypeVar("Output", bound=BaseModel)

EXCERPT_CHARS = 120
MAX_REPORTED_ERRORS = 3
_STREAM = "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}Stream"


def parse_output(model: type[Output], outputs: Sequence[object], *, host: str, script_id: str) -> Output:
    """The one JSON document in ``outputs``, validated against ``model``."""
    if len(outputs) != 1:
        raise BadOutputError(
            f"{script_id} must print exactly one JSON document, printed {len(outputs)} objects"
            + (f", the first {_excerpt(outputs[0])}" if outputs else ""),
            host=host,
        )
    (document,) = outputs
    if not isinstance(document, str):
        raise BadOutputError(
            f"{script_id} printed a {type(document).__name__} instead of JSON text: {_excerpt(document)}",
            host=host,
        )
    try:
        return model.model_validate_json(document)
    except ValidationError as exc:
        raise BadOutputError(
            f"{script_id} output does not match its schema ({_summary(exc)}): {_excerpt(document)}", host=host
        ) from None


def check_output_size(received: int, limit: int, *, host: str, script_id: str) -> None:
    """OutputTooLargeError once a script has sent more than ``limit`` bytes."""
    if received > limit:
        raise OutputTooLargeError(
            f"{script_id} sent more than {limit} bytes of output ({received} so far); stopped it", host=host
        )


def stream_bytes(receive_body: Element | None) -> int:
    """Decoded size of the PSRP data in one WS-Management ReceiveResponse body (base64 streams)."""
    if receive_body is None:
        return 0
    total = 0
    for stream in receive_body.iter(_STREAM):
        text = stream.text or ""
        total += len(text) * 3 // 4 - text.endswith("=") - text.endswith("==")
    return total


def _summary(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'document'}: {error['msg']}"
        for error in exc.errors()[:MAX_REPORTED_ERRORS]
    ]
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _excerpt(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= EXCERPT_CHARS:
        return repr(text)
    return f"{text[:EXCERPT_CHARS]!r}... ({len(text)} characters)"


__all__ = ["check_output_size", "parse_output", "stream_bytes"]
