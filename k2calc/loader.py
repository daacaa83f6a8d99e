"""The one CSV loader: a file of rows -> a tuple of frozen pydantic models, or one line naming the problem
(file, line, column).

Every table in ``data/`` (hardware, measurements, cost assumptions, API prices, the calibration tables,
the fine-tuning tables) can be read by :func:`load_csv` (a file) or :func:`parse_csv` (text already in
memory), and the same rules hold for all of them:

* UTF-8 (a byte-order mark is accepted); a byte that is not UTF-8 or a NUL byte (a binary file) is an
  error naming its line and column;
* the header names the model's fields (or their aliases), in any order: a missing required column, an
  unknown or a repeated column is an error on line 1 (a column whose field has a default may be left out);
* an empty cell is "not given" (the field's default applies; a required field reports it as missing);
  blank lines are skipped; a quoted cell may span lines (a row's line is the line where it starts);
* each row is validated by the model; the first problem is reported as
  ``<file> line <n>, column '<name>': <what is wrong> (got '<cell>')``;
* with ``key=``, a repeated key is an error naming the line of its first occurrence.

The result remembers where each row came from (:attr:`Rows.lines`) so later cross-row checks can name
the line and column too (:meth:`Rows.error`).

>>> from pydantic import BaseModel
>>> class Row(BaseModel, frozen=True, extra="forbid"):
...     key: str
...     value: float
>>> rows = parse_csv("key,value\\nalpha,1\\n\\nbeta,2\\n", Row, key="key", source="ex.csv")
>>> [(r.key, r.value) for r in rows], rows.lines
([('alpha', 1.0), ('beta', 2.0)], (2, 4))
>>> parse_csv("key,value\\nalpha,fast\\n", Row, key="key", source="ex.csv")
Traceback (most recent call last):
...
k2calc.errors.CatalogError: ex.csv line 2, column 'value': Input should be a valid number, unable to parse string as a number (got 'fast')
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from .errors import CatalogError, first_error

M = TypeVar("M")
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""The repository's data/ folder, beside k2calc/ (an editable install keeps it there)."""
DATE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$"
"""A price date: YYYY-MM or YYYY-MM-DD (a price carries the month it was true)."""
YEAR_OR_DATE_PATTERN = r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$"
"""An assumption's date: YYYY, YYYY-MM or YYYY-MM-DD."""


class Rows(tuple, Generic[M]):
    """The validated rows of one CSV file, in file order; ``lines[i]`` is the line where row i starts."""

    source: str
    lines: tuple[int, ...]

    def __new__(cls, rows: Sequence[M], lines: Sequence[int], source: str) -> "Rows[M]":
        self = super().__new__(cls, rows)
        self.lines, self.source = tuple(lines), source
        return self

    def error(self, index: int, column: str, message: str) -> CatalogError:
        """A CatalogError for row ``index``'s cell in ``column`` (for checks across rows or tables)."""
        return cell_error(self.source, self.lines[index], column, message)


def cell_error(source: str, line: int, column: str | None, message: str) -> CatalogError:
    """The one message shape: ``hardware.csv line 3, column 'kind': ...``."""
    where = f"{source} line {line}" + (f", column '{column}'" if column else "")
    return CatalogError(f"{where}: {message}")


def columns_of(model: type) -> tuple[str, ...]:
    """The CSV header a model expects: its fields' aliases (e.g. ``class``) or names, in field order."""
    fields = model.__pydantic_fields__  # BaseModel and pydantic dataclasses alike
    return tuple(f.alias or name for name, f in fields.items())


def required_columns_of(model: type) -> tuple[str, ...]:
    """The columns a file must have: fields without a default (a column of a field with a default may be
    left out of the file; its cells then take the default)."""
    return tuple(f.alias or name for name, f in model.__pydantic_fields__.items() if f.is_required())


def load_csv(path: str | Path, model: type[M], *, key: str | tuple[str, ...] | None = None,
             source: str | None = None) -> Rows[M]:
    """Read ``path`` into ``model`` rows (see the module docstring for the rules).

    Parameters
    ----------
    path : the CSV file
    model : a frozen pydantic model or pydantic dataclass whose fields (or aliases) are the columns
    key : the column (or columns) that must be unique across rows; None for no check
    source : the file's name in messages (default: the file name)

    Raises :class:`~k2calc.errors.CatalogError` (one line) for any problem, including an unreadable file.
    """
    path = Path(path)
    source = source or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{source}: cannot read ({path}: {exc.strerror or exc})") from None
    return parse_csv(data, model, key=key, source=source)


def parse_csv(data: str | bytes, model: type[M], *, key: str | tuple[str, ...] | None = None,
              source: str = "<csv>") -> Rows[M]:
    """:func:`load_csv` for text or bytes already in memory (an upload, a test)."""
    text = _decode(data, source) if isinstance(data, bytes) else data
    text = text.removeprefix("\ufeff")
    _reject_nul(text, source)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _header(reader, model, source)
    adapter = TypeAdapter(model)
    keys = (key,) if isinstance(key, str) else tuple(key or ())
    rows, lines, first_line = [], [], {}
    end = reader.line_num
    for cells in _rows(reader, source):
        line, end = end + 1, reader.line_num  # a quoted cell may span lines: report where the row starts
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            column = header[len(cells)] if len(cells) < len(header) else f"#{len(header) + 1} (beyond the header)"
            raise cell_error(source, line, column, f"expected {len(header)} cells, got {len(cells)}")
        raw = {col: cell.strip() for col, cell in zip(header, cells)}
        try:
            row = adapter.validate_python({col: v for col, v in raw.items() if v})
        except ValidationError as exc:
            raise _row_error(exc, raw, source, line) from None
        if keys:
            value = tuple(str(raw[k]) for k in keys)
            if value in first_line:
                shown = " / ".join(value)
                raise cell_error(source, line, keys[0], f"duplicate {' + '.join(keys)} '{shown}' "
                                 f"(first on line {first_line[value]})")
            first_line[value] = line
        rows.append(row)
        lines.append(line)
    return Rows(rows, lines, source)


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        header = data[: data.find(b"\n")].decode("utf-8", "replace") if line > 1 else ""
        column = _column_at(header, data[start:exc.start].decode("utf-8", "replace"))
        byte = data[exc.start:exc.start + 1].hex()
        raise cell_error(source, line, column, f"byte 0x{byte} is not UTF-8 (save the file as UTF-8; "
                         "is it a binary or Latin-1 file?)") from None


def _reject_nul(text: str, source: str) -> None:
    at = text.find("\0")
    if at >= 0:
        line = text.count("\n", 0, at) + 1
        start = text.rfind("\n", 0, at) + 1
        header = text[: text.find("\n")] if line > 1 else ""
        raise cell_error(source, line, _column_at(header, text[start:at]), "NUL byte (is this a binary file?)")


def _column_at(header: str, line_prefix: str) -> str | None:
    """Name of the column a position falls in, from the header text and the line up to the position."""
    names = next(csv.reader([header]), []) if header else []
    index = len(next(csv.reader([line_prefix]), [""])) - 1 if line_prefix else 0
    return names[index].strip() if index < len(names) else f"#{index + 1}"


def _rows(reader, source: str):
    try:
        yield from reader
    except csv.Error as exc:  # e.g. an unterminated quote
        raise cell_error(source, reader.line_num, None, f"malformed CSV ({exc})") from None


def _header(reader, model: type, source: str) -> list[str]:
    """The header names known columns, each once, and every required one [raises CatalogError]."""
    expected = columns_of(model)
    required = required_columns_of(model)
    header = [h.strip() for h in next(_rows(reader, source), [])]
    if not any(header):
        raise CatalogError(f"{source}: empty file, expected header {','.join(expected)}")
    missing = [c for c in required if c not in header]
    unknown = [h for h in header if h not in expected]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if missing or unknown or repeated:
        parts = [f"{label} column(s) {', '.join(repr(c) for c in cols)}" for label, cols in
                 (("missing", missing), ("unknown", unknown), ("repeated", repeated)) if cols]
        raise CatalogError(f"{source} line 1 (header): {'; '.join(parts)}")
    return header


def _row_error(exc: ValidationError, raw: dict[str, str], source: str, line: int) -> CatalogError:
    column, message, _ = first_error(exc)
    cell = raw.get(column or "", "")
    got = f" (got {cell!r})" if cell else " (cell is empty)" if column in raw else ""
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return cell_error(source, line, column, f"{message}{got}{more}")
