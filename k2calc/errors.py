"""Errors the user can cause, each with one clear message.

Every error the command line and the app show to a person derives from :class:`K2CalcError`;
anything else escaping is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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
