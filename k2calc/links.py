"""A scenario is a link: the URL codec of :class:`~k2calc.scenario.Scenario` and of the session's
:class:`~k2calc.scenario.Catalogs` (imported models and custom devices, one compressed parameter).

:func:`to_query` writes only the fields that differ from the defaults; :func:`from_query` reads them
back never raising (what it cannot use it names and leaves at the default); :func:`share_query` is
everything a link needs.
"""

from __future__ import annotations

import base64
import json
import typing
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic import ValidationError

from .engines import get_engine
from .errors import K2CalcError, first_error, shorten, validation_message
from .hardware import Hardware, get_hardware, load_hardware
from .models import ModelArch, get_model, load_models
from .scenario import COST_FIELDS, CUSTOM_SUFFIX, Catalogs, Scenario

NONE_TOKEN = "none"
ESCAPE = "~"  # before a text value that would read as NONE_TOKEN (an API provider named "none"), or starts with it
MAX_CUSTOM_CHARS = 200_000  # a link's custom models and devices, compressed: a few KB each
MAX_CUSTOM_ITEMS = 50
CUSTOM_PARAM = "custom"  # query parameter carrying imported models and custom devices (catalogs_param)
BASELINE_PARAM = "baseline"  # query parameter carrying a pinned baseline scenario (baseline_param)


def to_query(s: Scenario) -> dict[str, str]:
    """The scenario as URL query parameters: only the fields that differ from the defaults, each as
    text that :func:`from_query` reads back to the identical value (floats via repr)."""
    defaults = Scenario()
    out: dict[str, str] = {}
    for name in Scenario.model_fields:
        value = getattr(s, name)
        if value == getattr(defaults, name):
            continue
        if value is None:
            out[name] = NONE_TOKEN
        elif isinstance(value, bool):
            out[name] = "1" if value else "0"
        elif isinstance(value, str) and (value == NONE_TOKEN or value.startswith(ESCAPE)):
            out[name] = ESCAPE + value
        else:
            out[name] = repr(value) if isinstance(value, float) else str(value)
    return out


def from_query(params: Mapping[str, str | Sequence[str]], catalogs: Catalogs | None = None) -> tuple[Scenario, list[str]]:
    """A scenario from URL query parameters, never raising: unknown names, values that fail validation
    and ids not in the catalogs are left out (the defaults stand) and named in the returned list."""
    catalogs = catalogs or Catalogs()
    values: dict[str, Any] = {}
    ignored: list[str] = []
    for name, raw in params.items():
        text = raw[-1] if isinstance(raw, (list, tuple)) else raw
        if name in (CUSTOM_PARAM, BASELINE_PARAM):
            continue
        if name not in Scenario.model_fields:
            ignored.append(f"'{name}' (not a scenario setting)")
            continue
        if isinstance(text, str) and text.startswith(ESCAPE):
            values[name] = text[len(ESCAPE):]
            continue
        if text == NONE_TOKEN and not _nullable(name):
            ignored.append(f"{name}='none' ({name} cannot be none; the default stands)")
            continue
        values[name] = None if text == NONE_TOKEN else text
    id_checks = {"model": lambda v: get_model(v, catalogs.models),
                 "hardware": lambda v: v is None or get_hardware(v, catalogs.hardware_catalog()),
                 "cpu": lambda v: v is None or get_hardware(v, catalogs.hardware_catalog()),
                 "engine": lambda v: v is None or get_engine(v)}
    for name, check in id_checks.items():
        if name in values:
            try:
                check(values[name])
            except K2CalcError as exc:
                ignored.append(f"{name}={shorten(repr(values.pop(name)))} ({exc})")
    while True:
        try:
            return Scenario(**values), ignored
        except ValidationError as exc:
            name, message, _ = first_error(exc)
            if name not in values:  # not attributable to one parameter: drop them all
                ignored.extend(f"{k}={shorten(repr(v))}" for k, v in values.items())
                return Scenario(), ignored
            msg = validation_message(exc, model=Scenario).split(": ", 1)[-1].split(" (got ")[0]
            ignored.append(f"{name}={shorten(repr(values.pop(name)))} ({msg})")


def _nullable(name: str) -> bool:
    """True when the scenario field `name` may be None (written as 'none' in a link)."""
    return type(None) in typing.get_args(Scenario.model_fields[name].annotation)


def physics_query(s: Scenario) -> dict[str, str]:
    """:func:`to_query` without the cost fields (:data:`~k2calc.scenario.COST_FIELDS`): two scenarios
    with the same physics query have the same deployment, memory and speed."""
    return {k: v for k, v in to_query(s).items() if k not in COST_FIELDS}


def share_query(s: Scenario, catalogs: Catalogs | None = None, baseline: Scenario | None = None) -> dict[str, str]:
    """Everything a link needs: the scenario's non-default fields, the session's custom models and
    devices (one compressed parameter) and, when one is pinned, the baseline scenario (another)."""
    query = to_query(s)
    custom = catalogs_param(catalogs) if catalogs else None
    if custom:
        query[CUSTOM_PARAM] = custom
    if baseline is not None:
        query[BASELINE_PARAM] = baseline_param(baseline)
    return query


def baseline_param(s: Scenario) -> str:
    """A scenario as one URL-safe text: its :func:`to_query` URL-encoded (``name=value&...``),
    compressed and base64url-encoded (unpadded). The default scenario is the empty text.

    >>> baseline_param(Scenario(concurrency=4))
    'eNpLzs9LLi0qSs1LrrQ1AQAl1AUd'
    """
    query = to_query(s)
    if not query:
        return ""
    text = urlencode(query)
    return base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")


def baseline_from_param(text: str | None, catalogs: Catalogs | None = None) -> tuple[Scenario | None, list[str]]:
    """Inverse of :func:`baseline_param`, never raising: (None, []) when there is no baseline; a damaged
    text gives (None, [why]); settings that cannot be used are named and left at the defaults, as in
    :func:`from_query`."""
    if text is None:
        return None, []
    if text == "":
        return Scenario(), []
    if len(text) > MAX_CUSTOM_CHARS:
        return None, [f"the link's baseline is {len(text):,} characters (at most {MAX_CUSTOM_CHARS:,})"]
    try:
        raw = _inflate(text).decode()
        pairs = dict(parse_qsl(raw, keep_blank_values=True, strict_parsing=True))
    except (ValueError, TypeError, zlib.error, UnicodeDecodeError) as exc:
        return None, [f"the link's baseline could not be read ({type(exc).__name__})"]
    scenario, ignored = from_query(pairs, catalogs)
    return scenario, [f"baseline {i}" for i in ignored]


def catalogs_param(catalogs: Catalogs) -> str | None:
    """The session's additions as one URL-safe text (compressed JSON), or None when there are none."""
    if not catalogs.models and not catalogs.hardware:
        return None
    payload = {"models": [_as_written(m) for m in catalogs.models.values()],
               "hardware": [_as_written(h) for h in catalogs.hardware.values()]}
    raw = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 9)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _as_written(item) -> dict:
    """A custom model or device as its author wrote it: the name without the ' (custom)' mark the
    Catalogs add for display (so a name at its maximum length still fits when the link is read)."""
    d = item.model_dump(mode="json")
    d["name"] = d["name"].removesuffix(CUSTOM_SUFFIX) or d["name"]
    return d


def catalogs_from_param(text: str | None) -> Catalogs:
    """Inverse of :func:`catalogs_param`; a damaged text raises K2CalcError (one line naming what failed).

    A custom model or device must have an id of its own: one that names a catalog entry would silently
    replace it while the page still shows the catalog's name, so it is rejected.
    """
    if not text:
        return Catalogs()
    if len(text) > MAX_CUSTOM_CHARS:
        raise K2CalcError(f"the link's custom models/devices are {len(text):,} characters (at most "
                          f"{MAX_CUSTOM_CHARS:,}); add them again on the Catalog page")
    try:
        payload = json.loads(_inflate(text))
    except (ValueError, TypeError, zlib.error, RecursionError) as exc:
        raise K2CalcError(f"the link's custom models/devices could not be read (not a k2calc custom "
                          f"parameter: {type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise K2CalcError("the link's custom models/devices could not be read (not a JSON object)")
    models = [_custom(ModelArch, "model", i, m) for i, m in enumerate(_items(payload, "models"))]
    hardware = [_custom(Hardware, "device", i, h) for i, h in enumerate(_items(payload, "hardware"))]
    for kind, items, catalog in (("model", models, load_models()), ("device", hardware, load_hardware())):
        for item in items:
            if item.id in catalog:
                raise K2CalcError(f"the link's custom {kind} '{item.id}' has the id of a catalog {kind}; "
                                  "a custom one needs an id of its own (the catalog's stands)")
    return Catalogs(models={m.id: m for m in models}, hardware={h.id: h for h in hardware})


def _inflate(text: str) -> bytes:
    """A link parameter's compressed bytes, inflated to at most 20 x MAX_CUSTOM_CHARS (no zip bombs);
    zlib.error when the text is not a whole compressed stream."""
    inflater = zlib.decompressobj()
    raw = inflater.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), 20 * MAX_CUSTOM_CHARS)
    if not inflater.eof:
        raise zlib.error("incomplete or oversized stream")
    return raw


def _items(payload: dict, key: str) -> list:
    items = payload.get(key, [])
    if not isinstance(items, list) or len(items) > MAX_CUSTOM_ITEMS:
        raise K2CalcError(f"the link's custom '{key}' could not be read (a list of at most {MAX_CUSTOM_ITEMS})")
    return items


def _custom(cls, kind: str, index: int, data: Any):
    """One custom model or device from a link, or one line naming the field that failed."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        ident = data.get("id") if isinstance(data, dict) else None
        text = " ".join(str(ident).split()) or repr(ident)  # an id of line breaks stays on one line
        label = f"'{shorten(text, 40)}'" if ident else f"number {index + 1}"
        raise K2CalcError(f"the link's custom {kind} {label} could not be read: "
                          f"{validation_message(exc, model=cls, quote=True)}") from None


__all__ = ["to_query", "from_query", "share_query", "physics_query", "catalogs_param", "catalogs_from_param",
           "baseline_param", "baseline_from_param", "CUSTOM_PARAM", "BASELINE_PARAM", "NONE_TOKEN"]
