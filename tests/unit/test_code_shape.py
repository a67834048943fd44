"""The code stays readable in one sitting: no function in app.py, ui/ or backend/
longer than about 80 lines, no module over about 400 (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400


def _modules() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "backend").rglob("*.py")), *sorted((ROOT / "ui").rglob("*.py"))]


def test_no_module_is_longer_than_400_lines():
    long = {
        str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_longer_than_80_lines():
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_checks_see_the_code():
    # A walk that finds nothing would pass both tests above.
    assert len(_modules()) > 20


def test_no_test_module_imports_another():
    # Shared test code lives in tests/helpers/; a test module is read on its own.
    pattern = re.compile(r"^\s*(from|import)\s+tests\.(unit|app|browser)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").rglob("*.py"))
                 if pattern.search(p.read_text())]
    assert not offenders, f"test modules importing other test modules: {offenders}"
