"""Opening the app in AppTest the way every app test does: app.py with a link's query, run once, no
exception."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def open_app(query: dict | None = None) -> AppTest:
    """app.py run once with `query` as the link's parameters; fails on an exception box."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at
