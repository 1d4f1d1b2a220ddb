"""privacy/ stands alone: it imports the standard library, its own modules and the few
libraries it is built on, never the other packages of the project or their services.

Parses every module under privacy/ (no import needed), lazy imports inside functions and
``TYPE_CHECKING`` blocks included.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PRIVACY = Path(__file__).resolve().parents[3] / "privacy"
MODULES = sorted(p for p in PRIVACY.rglob("*.py") if "__pycache__" not in p.parts)

#: the libraries privacy/ is built on
ALLOWED = {"privacy", "polars", "pydantic", "opendp", "great_expectations", "yaml", "numpy",
           "polars_hash"}
#: pandas only where Great Expectations needs it
PANDAS_ALLOWED = {"validation/expectations.py"}
#: never: the other packages of the project, and the services they talk to
FORBIDDEN = {"analytics", "flows", "dashboard", "prefect", "sqlalchemy", "minio", "dash"}


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "privacy/ imports absolutely (from privacy.x import y)"
            assert node.module is not None
            names.append(node.module)
    return names


def _where(path: Path) -> str:
    return path.relative_to(PRIVACY).as_posix()


def test_modules_found() -> None:
    names = {_where(p) for p in MODULES}
    assert {"__init__.py", "errors.py", "masking.py", "contract/__init__.py",
            "release/engine.py", "validation/expectations.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=_where)
def test_imports_stay_inside_the_boundary(path: Path) -> None:
    for name in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{_where(path)} imports {name}"
        if top == "pandas":
            assert _where(path) in PANDAS_ALLOWED, f"{_where(path)} imports pandas"
            continue
        assert top in ALLOWED or top in sys.stdlib_module_names, f"{_where(path)} imports {name}"


def test_boundary_test_catches_a_violation() -> None:
    bad = ast.parse("import analytics.store\nfrom flows.settings import Settings\n"
                    "def f():\n    import prefect\n    from sqlalchemy import text\n")
    tops = {n.split(".")[0] for n in _imports(bad)}
    assert tops & FORBIDDEN == {"analytics", "flows", "prefect", "sqlalchemy"}
    assert "boto3" not in ALLOWED and "boto3" not in sys.stdlib_module_names
