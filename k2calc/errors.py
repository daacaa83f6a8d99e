"""Errors the user can cause, each with one clear message.

Every error the command line and the app show to a person derives from :class:`K2CalcError`;
anything else escaping is a bug.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class K2CalcError(ValueError):
    """A problem with the user's input or data: shown as one line, never as a traceback."""


MAX_SHOWN_CHARS = 80  # a value quoted back in a message is cut to this many characters


def shorten(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """`value` as text of at most `limit` characters (the end replaced by '...').

    >>> shorten("x" * 100, 10)
    'xxxxxxx...'
    """
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class UnknownIdError(K2CalcError):
    """An id that is not in a catalog; the message names up to three close known ids."""

    def __init__(self, kind: str, given: object, known: Iterable[str]):
        known = sorted(known)
        given = "" if given is None else str(given)
        low = given.lower()[:200]
        # ids that start with or contain what was typed come first ("h200" -> "h200-sxm"), then
        # spelling neighbours ("kimi-k2-thinkng" -> "kimi-k2-thinking").
        prefix = [k for k in known if k.startswith(low)] + [k for k in known if low in k and not k.startswith(low)]
        fuzzy = difflib.get_close_matches(low, known, n=3, cutoff=0.5)
        close = list(dict.fromkeys(prefix + fuzzy))[:3] if low else []
        listing = ", ".join(known[:12]) + (f" and {len(known) - 12} more" if len(known) > 12 else "")
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {listing}"
        super().__init__(f"unknown {kind} '{shorten(given)}'{hint}")
        self.kind = kind
        self.given = given
        self.close_matches = close


class CatalogError(K2CalcError):
    """A malformed data file (CSV row, config.json): names the file, line and field."""


def allowed_range(field: Any) -> str | None:
    """The bounds of a pydantic field as words ('from 1 to 1000', 'at least 0.001'), or None."""
    lo = hi = None
    for m in getattr(field, "metadata", ()):
        if getattr(m, "ge", None) is not None:
            lo = f"{m.ge:g}" if isinstance(m.ge, float) else f"{m.ge}"
        elif getattr(m, "gt", None) is not None:
            lo = f"above {m.gt:g}"
        if getattr(m, "le", None) is not None:
            hi = f"{m.le:g}" if isinstance(m.le, float) else f"{m.le}"
        elif getattr(m, "lt", None) is not None:
            hi = f"below {m.lt:g}"
    if lo and hi:
        return f"from {lo} to {hi}" if not lo.startswith("above") else f"{lo} and at most {hi}"
    if lo:
        return lo if lo.startswith("above") else f"at least {lo}"
    if hi:
        return f"at most {hi}"
    return None


class FlagNames(dict):
    """Field name -> command-line flag as typed: ``bits_per_weight`` -> ``--bits-per-weight`` (entries
    given override the rule), for :func:`validation_message`'s `names`."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __getitem__(self, key: str) -> str:
        return dict.get(self, key) or "--" + key.replace("_", "-")


def finite_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps(obj, allow_nan=False)``: a result holding NaN or an infinity raises K2CalcError naming
    the first key that does, instead of printing text that is not JSON.

    >>> finite_json({"a": [1, 2.5]})
    '{"a": [1, 2.5]}'
    >>> finite_json({"cost": {"usd": float("inf")}})
    Traceback (most recent call last):
    ...
    k2calc.errors.K2CalcError: the result is not finite at cost.usd (inf); please report this scenario
    """
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        path, value = _first_non_finite(obj)
        raise K2CalcError(f"the result is not finite at {path} ({value}); please report this scenario") from None


def _first_non_finite(obj: Any, path: str = "") -> tuple[str, float] | tuple[None, None]:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path or "top", obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = _first_non_finite(value, f"{path}.{key}" if path else str(key))
        if found[0] is not None:
            return found
    return None, None


def _first_raw(exc: Exception) -> dict | None:
    """The first error of a pydantic ValidationError as pydantic gives it, or None for another exception:
    the one place that reads ``exc.errors()``."""
    errors = exc.errors() if hasattr(exc, "errors") else []
    return errors[0] if errors else None


def first_error(exc: Exception) -> tuple[str | None, str, object]:
    """The first error of a pydantic ValidationError as (field, message, offending value).

    ``field`` is the dotted location (None when the error is not attributable to one field), ``message``
    is pydantic's text without its "Value error, " prefix, ``value`` is the input that failed, or
    :data:`NO_VALUE` when there is none worth showing (a missing field, a whole object). Any other
    exception gives (None, str(exc), NO_VALUE).
    """
    err = _first_raw(exc)
    if err is None:
        return None, str(exc), NO_VALUE
    field = ".".join(str(p) for p in err["loc"]) or None
    value = err.get("input", NO_VALUE)
    if err["type"] == "missing" or isinstance(value, dict):
        value = NO_VALUE
    return field, err["msg"].removeprefix("Value error, "), value


NO_VALUE = object()
"""``first_error``'s value when no single input value failed."""

_BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def validation_message(exc: Exception, names: Mapping[str, str] | None = None,
                       model: Any = None, quote: bool = False) -> str:
    """One line for the first error of a pydantic ValidationError: ``count: Input should be greater
    than or equal to 1 (got 0)``.

    `names` maps a field to what the user typed (``{"bits_per_weight": "--bits-per-weight"}``, or a
    :class:`FlagNames`); with the pydantic `model` class a bound error says the field's whole allowed
    range; `quote` puts the field name in quotes. The value quoted back is cut to
    :data:`MAX_SHOWN_CHARS` characters.

    >>> from pydantic import BaseModel, Field, ValidationError
    >>> class Users(BaseModel):
    ...     count: int = Field(ge=1, le=1024)
    >>> try:
    ...     Users(count=0)
    ... except ValidationError as exc:
    ...     print(validation_message(exc))
    ...     print(validation_message(exc, names=FlagNames(), model=Users))
    count: Input should be greater than or equal to 1 (got 0)
    --count: must be from 1 to 1024 (got 0)
    """
    err = _first_raw(exc)
    if err is None:
        return shorten(str(exc), 200)
    field, msg, value = first_error(exc)
    loc = [str(p) for p in err["loc"]]
    if loc and names is not None and loc[0] in names:
        loc[0] = names[loc[0]]
    where = ".".join(loc) or "input"
    if quote and loc:
        where = f"'{where}'"
    fields = getattr(model, "model_fields", {})
    if len(err["loc"]) == 1 and err["loc"][0] in fields:
        span = allowed_range(fields[err["loc"][0]])
        if span and err["type"] in _BOUND_ERRORS:
            msg = f"must be {span}"
        elif span:
            msg += f"; allowed: {span}"
    given = "" if value is NO_VALUE or not err["loc"] else f" (got {shorten(repr(value))})"
    return f"{where}: {msg}{given}"


def validated(model: type[T], names: Mapping[str, str] | None = None, **values: Any) -> T:
    """``model(**values)``, with a pydantic ValidationError turned into one :class:`K2CalcError` line
    (:func:`validation_message`, naming fields as `names` maps them and giving the allowed range):
    how user input becomes a typed object everywhere in k2calc."""
    try:
        return model(**values)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        if not hasattr(exc, "errors"):
            raise
        raise K2CalcError(validation_message(exc, names=names, model=model)) from None
