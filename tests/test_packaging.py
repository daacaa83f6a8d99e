"""Packaging and the core/app boundary: pyproject.toml is the one list of dependencies, the package is
k2calc alone, the `k2calc` command is `python -m k2calc`, and the core (and its tests) never import
streamlit."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

from k2calc.cli import main

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_core_imports_without_streamlit():
    code = ("import pkgutil, importlib, sys, k2calc\n"
            "for m in pkgutil.walk_packages(k2calc.__path__, 'k2calc.'): importlib.import_module(m.name)\n"
            "import k2calc.scenario, k2calc.cli\n"
            "assert 'streamlit' not in sys.modules, 'streamlit imported by the core'\n"
            "print(len(sys.modules))")
    run = _python(code)
    assert run.returncode == 0, run.stderr


def test_core_tests_run_without_streamlit():
    """The app fixtures live in tests/app/conftest.py: a core test file collects and passes with
    streamlit never imported."""
    code = ("import sys, pytest\n"
            "rc = pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/test_models.py'])\n"
            "assert 'streamlit' not in sys.modules, 'streamlit imported while running core tests'\n"
            "sys.exit(rc)")
    run = _python(code)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]  # 0: collected and passed (5: none ran)


def test_dependencies_are_pinned_in_pyproject_and_requirements_point_at_it():
    deps = PYPROJECT["project"]["dependencies"]
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    # fpdf2 and matplotlib write the PDF report without a browser (issue 11); pypdfium2 reads it in a test
    assert {d.split("==")[0] for d in deps} == {"streamlit", "pandas", "plotly", "pydantic", "fpdf2", "matplotlib"}
    assert {d.split("==")[0] for d in dev} == {"pytest", "hypothesis", "playwright", "pypdfium2"}
    assert all(d.count("==") == 1 for d in deps + dev), "every dependency pinned exactly"
    lines = lambda name: [x for x in (ROOT / name).read_text().splitlines() if x and not x.startswith("#")]  # noqa: E731
    assert lines("requirements.txt") == ["-e ."]
    assert lines("requirements-dev.txt") == ["-e .[dev]"]


def test_only_k2calc_is_packaged():
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    found = find_packages(where=str(ROOT), include=include)
    assert found and all(p == "k2calc" or p.startswith("k2calc.") for p in found), found


def test_console_command_is_python_m_k2calc(capsys):
    assert PYPROJECT["project"]["scripts"] == {"k2calc": "k2calc.cli:main"}
    assert main(["models"]) == 0
    via_function = capsys.readouterr().out
    run = subprocess.run([sys.executable, "-m", "k2calc", "models"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == via_function and "kimi-k2-thinking" in via_function
