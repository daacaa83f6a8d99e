"""Errors the user can cause, each with one clear message.

Every error the command line and the app show to a person derives from :class:`K2CalcError`;
anything else escaping is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class K2CalcError(ValueError):
    """A problem with the user's input or data: shown as one line, never as a traceback."""


class UnknownIdError(K2CalcError):
    """An id that is not in a catalog; the message names the closest known ids."""

    def __init__(self, kind: str, given: str, known: Iterable[str]):
        known = sorted(known)
        low = given.lower()
        # ids that start with or contain what was typed come first ("h200" -> "h200-sxm"), then
        # spelling neighbours ("kimi-k2-thinkng" -> "kimi-k2-thinking").
        prefix = [k for k in known if k.startswith(low)] + [k for k in known if low in k and not k.startswith(low)]
        fuzzy = difflib.get_close_matches(low, known, n=3, cutoff=0.5)
        close = list(dict.fromkeys(prefix + fuzzy))[:3] if low else []
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
        super().__init__(f"unknown {kind} '{given}'{hint}")
        self.kind = kind
        self.given = given
        self.close_matches = close


class CatalogError(K2CalcError):
    """A malformed data file (CSV row, config.json): names the file, line and field."""


def first_error(exc: Exception) -> tuple[str | None, str, object]:
    """The first error of a pydantic ValidationError as (field, message, offending value).

    ``field`` is the dotted location (None when the error is not attributable to one field), ``message``
    is pydantic's text without its "Value error, " prefix, ``value`` is the input that failed, or
    :data:`NO_VALUE` when there is none worth showing (a missing field, a whole object). Any other
    exception gives (None, str(exc), NO_VALUE). The one place that reads ``exc.errors()``.
    """
    errors = exc.errors() if hasattr(exc, "errors") else []
    if not errors:
        return None, str(exc), NO_VALUE
    err = errors[0]
    field = ".".join(str(p) for p in err["loc"]) or None
    value = err.get("input", NO_VALUE)
    if err["type"] == "missing" or isinstance(value, dict):
        value = NO_VALUE
    return field, err["msg"].removeprefix("Value error, "), value


NO_VALUE = object()
"""``first_error``'s value when no single input value failed."""


def validation_message(exc: Exception) -> str:
    """One line for the first error of a pydantic ValidationError: ``count: Input should be greater
    than or equal to 1 (got 0)``.

    >>> from pydantic import BaseModel, Field, ValidationError
    >>> class Users(BaseModel):
    ...     count: int = Field(ge=1)
    >>> try:
    ...     Users(count=0)
    ... except ValidationError as exc:
    ...     print(validation_message(exc))
    count: Input should be greater than or equal to 1 (got 0)
    """
    field, message, value = first_error(exc)
    if field is None and value is NO_VALUE and message == str(exc):  # not a pydantic error
        return message
    given = "" if value is NO_VALUE else f" (got {value!r})"
    return f"{field or 'input'}: {message}{given}"


def validated(model: type[T], **values: Any) -> T:
    """``model(**values)``, with a pydantic ValidationError turned into one :class:`K2CalcError` line
    (:func:`validation_message`): how user input becomes a typed object everywhere in k2calc."""
    try:
        return model(**values)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        if not hasattr(exc, "errors"):
            raise
        raise K2CalcError(validation_message(exc)) from None
