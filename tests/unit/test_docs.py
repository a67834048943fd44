"""The docs must not drift from the code.

- Every environment variable the code reads (STUDIO_*, FAL_KEY) is in docs/configuration.md,
  and each default written there matches the `Settings` defaults where it is a simple value.
- Every relative link in README.md and docs/*.md points to a file that exists.
- Every test file the README names (tests/...) exists.
- docs/architecture.md has a line for every module in backend/ and ui/.

Fast and offline: it reads source files and imports only backend.settings.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
ARCHITECTURE = DOCS / "architecture.md"
SETTINGS_SOURCE = ROOT / "backend" / "settings.py"
ENV_NAME = re.compile(r"(STUDIO_[A-Z0-9_]*[A-Z0-9]|FAL_KEY)")
# Settings whose default is worked out at start-up (what the machine has), so the docs
# describe it in words rather than as one value.
COMPUTED_DEFAULTS = {"STUDIO_BACKENDS"}


def _string_literals(path: Path) -> list[str]:
    """Every string constant in a Python file, f-string parts included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def _env_names(path: Path) -> set[str]:
    return {name for text in _string_literals(path) for name in ENV_NAME.findall(text)}


def _settings_env_names() -> set[str]:
    names = _env_names(SETTINGS_SOURCE)
    assert names, "found no STUDIO_*/FAL_KEY names in backend/settings.py: has the parsing broken?"
    return names


def _code_env_names() -> set[str]:
    """The names the settings read, plus any the app, backend or UI mention (messages such as
    'set STUDIO_LORA_DIR' send people to the docs too)."""
    files = [ROOT / "app.py", *sorted((ROOT / "backend").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]
    return _settings_env_names().union(*(_env_names(f) for f in files))


def _doc_table_rows(path: Path) -> dict[str, list[str]]:
    """Rows of the doc's tables whose first cell is one `NAME`: NAME -> the other cells."""
    rows: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        match = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        if match and len(cells) >= 2:
            rows[match.group(1)] = cells[1:]
    return rows


def _field_for_env() -> dict[str, str]:
    """Which Settings field each variable sets, read from `Settings.from_env`'s source.

    A keyword of the final `cls(...)` call takes its value from the variables named in its
    expression and in the assignments of the local names it uses (followed through).
    A variable maps to a field when that field depends on that variable alone.
    """
    tree = ast.parse(SETTINGS_SOURCE.read_text(encoding="utf-8"))
    from_env = next(
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "from_env"
    )
    assigned: dict[str, list[ast.AST]] = {}
    for node in ast.walk(from_env):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)

    def names_in(expr: ast.AST, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for node in ast.walk(expr):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found |= set(ENV_NAME.findall(node.value))
            elif isinstance(node, ast.Name) and node.id in assigned and node.id not in seen:
                for value in assigned[node.id]:
                    found |= names_in(value, seen | {node.id})
        return found

    call = next(
        node for node in ast.walk(from_env)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "cls"
    )
    mapping: dict[str, str] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            continue
        found = names_in(keyword.value, set())
        if len(found) == 1:
            mapping[found.pop()] = keyword.arg
    return mapping


def _as_doc_text(value: Any) -> str | None:
    """A default as the docs write it; None where it is not a simple value."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float, str, Path)):
        return str(value)
    if isinstance(value, tuple) and all(isinstance(v, (int, str)) for v in value):
        return ",".join(str(v) for v in value)
    return None


def _same(documented: str, expected: str) -> bool:
    try:
        return math.isclose(float(documented), float(expected))
    except ValueError:
        return documented == expected


def _documented_default(cell: str) -> str | None:
    """`value` or unset; None for a default written in words."""
    cell = cell.strip()
    if cell.lower() == "unset":
        return "unset"
    match = re.fullmatch(r"`([^`]*)`", cell)
    return match.group(1) if match else None


# -- (a) settings ---------------------------------------------------------------------------


def test_every_variable_the_code_reads_is_in_the_configuration_doc():
    text = CONFIGURATION.read_text(encoding="utf-8")
    missing = sorted(name for name in _code_env_names() if f"`{name}`" not in text)
    assert not missing, f"docs/configuration.md does not document {missing}"


def test_every_setting_has_a_row_in_a_configuration_table():
    rows = _doc_table_rows(CONFIGURATION)
    missing = sorted(_settings_env_names() - set(rows))
    assert not missing, f"docs/configuration.md has no table row (| `NAME` | default | ... |) for {missing}"


def test_documented_defaults_match_the_settings_defaults():
    from backend.settings import Settings

    rows = _doc_table_rows(CONFIGURATION)
    defaults = {f.name: f.default for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}
    mapping = _field_for_env()
    assert mapping, "could not read which field each variable sets from Settings.from_env"
    checked, wrong = [], []
    for env_name, field_name in sorted(mapping.items()):
        if env_name in COMPUTED_DEFAULTS or env_name not in rows or field_name not in defaults:
            continue
        expected = _as_doc_text(defaults[field_name])
        if expected is None:
            continue
        documented = _documented_default(rows[env_name][0])
        if documented is None:
            wrong.append(f"{env_name}: write the default as `{expected}` (or unset), not {rows[env_name][0]!r}")
        elif not _same(documented, expected):
            wrong.append(f"{env_name}: docs say {documented!r}, Settings.{field_name} defaults to {expected!r}")
        checked.append(env_name)
    assert not wrong, "docs/configuration.md defaults disagree with backend/settings.py:\n" + "\n".join(wrong)
    # The mapping must keep finding the plain settings; if it finds almost none, the parsing broke.
    assert {"FAL_KEY", "STUDIO_RUN_TIMEOUT", "STUDIO_MEMORY", "STUDIO_MODEL"} <= set(checked), checked


def test_the_settings_defaults_are_what_an_empty_environment_gives():
    """The documented defaults are the dataclass's; they must also be what `from_env` picks."""
    from backend.settings import Settings

    from_env = Settings.from_env({})
    mapping = _field_for_env()
    differ = [
        field for env_name, field in mapping.items()
        if env_name not in COMPUTED_DEFAULTS and hasattr(from_env, field)
        and getattr(from_env, field) != getattr(Settings(), field)
    ]
    assert not differ, f"Settings defaults and Settings.from_env({{}}) disagree for {differ}"


# -- (b) links ------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _relative_links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold code, not links
    links = []
    for target in LINK.findall(text):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "//")):
            continue  # https:, mailto:, in-page anchors
        links.append(target)
    return links


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files_that_exist(path: Path):
    broken = []
    for target in _relative_links(path):
        file = target.split("#", 1)[0].split("?", 1)[0]
        if file and not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {broken}"


def test_the_docs_are_linked_from_the_readme():
    links = set(_relative_links(ROOT / "README.md"))
    for doc in ("docs/architecture.md", "docs/configuration.md", "docs/troubleshooting.md"):
        assert doc in links, f"README.md does not link {doc}"


TEST_PATH = re.compile(r"`((?:tests/)?(?:unit|app|browser|helpers)/[^`\s]*|tests/[^`\s]*)`")


def test_the_test_files_the_readme_names_exist():
    """`tests/...` paths (and `unit/...`, `app/...`, `browser/...`, `helpers/...` ones, which are
    under tests/), globs included; `<test name>` placeholders are not paths."""
    named = [p for p in TEST_PATH.findall((ROOT / "README.md").read_text(encoding="utf-8")) if "<" not in p]
    assert len(named) > 10, named
    missing = [p for p in named if not list(ROOT.glob(p if p.startswith("tests/") else f"tests/{p}"))]
    assert not missing, f"README.md names test files that do not exist: {missing}"


# -- (c) module map -------------------------------------------------------------------------


def _module_map() -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    match = re.search(r"^##+ Module map\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, "docs/architecture.md has no '## Module map' section"
    return match.group(1)


def test_the_module_map_names_every_module():
    section = _module_map()
    modules = [
        str(file.relative_to(ROOT))
        for package in ("backend", "ui")
        for file in sorted((ROOT / package).rglob("*.py"))
        if file.name != "__init__.py"
    ]
    assert modules
    missing = [m for m in modules if f"`{m}`" not in section]
    assert not missing, f"docs/architecture.md's module map has no line for {missing}"


def test_the_module_map_names_no_module_that_is_gone():
    section = _module_map()
    named = set(re.findall(r"`((?:backend|ui)/[a-z_0-9/]+\.py)`", section))
    gone = sorted(m for m in named if not (ROOT / m).is_file())
    assert not gone, f"docs/architecture.md's module map names modules that do not exist: {gone}"
