"""One loader for the typed CSV tables in ``data/``: every row is validated by a pydantic model, and any
problem (unreadable file, bytes that are not UTF-8, a wrong header, a short row, a bad cell) raises
:class:`~k2calc.errors.CatalogError` naming the file, the CSV line and, where there is one, the column.

>>> from pydantic import BaseModel, Field
>>> class Row(BaseModel):
...     name: str
...     value: float = Field(gt=0)
>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_text("name,value\\nmfu,0.35\\n")
>>> load_csv(path, Row)
(Row(name='mfu', value=0.35),)
>>> _ = path.write_text("name,value\\nmfu,0.35\\nbad,-1\\n")
>>> load_csv(path, Row)
Traceback (most recent call last):
...
k2calc.errors.CatalogError: t.csv line 3, column 'value': Input should be greater than 0
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from .errors import CatalogError

M = TypeVar("M", bound=BaseModel)


def load_csv(path: str | Path, model: type[M]) -> tuple[M, ...]:
    """Every row of the CSV file `path` as a `model` instance, in file order.

    The header must name only fields of `model` and every required one; an empty cell is left out
    (the field's default applies).

    Raises
    ------
    CatalogError : "<file> line <n>, column '<field>': <what is wrong>" for the first problem found.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path.name}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise CatalogError(f"{path.name} line {line}: not UTF-8 text ({exc.reason})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _check_header(path.name, tuple(reader.fieldnames or ()), model)
    return tuple(_row(path.name, reader.line_num, cells, model) for cells in reader)


def _check_header(name: str, header: tuple[str, ...], model: type[BaseModel]) -> None:
    """The header names known fields, each once, and every required field [raises CatalogError]."""
    fields = model.model_fields
    for column in header:
        if column not in fields:
            raise CatalogError(f"{name} line 1, column '{column}': not a column of this table; "
                               f"expected {', '.join(fields)}")
    if len(set(header)) != len(header):
        raise CatalogError(f"{name} line 1: a column is named twice")
    missing = [f for f, info in fields.items() if info.is_required() and f not in header]
    if missing:
        raise CatalogError(f"{name} line 1: missing column(s) {', '.join(missing)}")


def _row(name: str, line: int, cells: dict, model: type[M]) -> M:
    """One validated row; `line` is the CSV line it ends on."""
    if None in cells:
        raise CatalogError(f"{name} line {line}: more cells than columns")
    if any(v is None for v in cells.values()):
        raise CatalogError(f"{name} line {line}: fewer cells than columns")
    values = {k: v.strip() for k, v in cells.items() if v.strip()}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        column = err["loc"][0] if err["loc"] else "?"
        msg = err["msg"].removeprefix("Value error, ")
        raise CatalogError(f"{name} line {line}, column '{column}': {msg}") from None


__all__ = ["load_csv"]
