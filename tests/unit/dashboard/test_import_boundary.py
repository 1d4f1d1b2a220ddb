"""Invariant 1: the dashboard sees aggregates only.

Parses every module under dashboard/ (no import needed) and fails on imports of the
pipeline, object-store clients or raw-data readers, on file reads, on environment reads
outside the settings class, and on raw-HTML rendering.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[3] / "dashboard"
MODULES = sorted(p for p in DASHBOARD.rglob("*.py") if "__pycache__" not in p.parts)

#: top-level packages the dashboard must never import
FORBIDDEN = {
    "flows", "boto3", "botocore", "s3fs", "aiobotocore", "polars", "pandas", "pyarrow",
    "duckdb", "great_expectations", "opendp", "fastparquet", "openpyxl", "xlrd", "csv_reader",
    "prefect", "minio", "numpy", "sqlite3", "psycopg", "sqlalchemy",
}
#: the one exception: the write-only uploader puts objects with the minio SDK
ALLOWED_EXCEPTIONS = {("uploader.py", "minio")}
#: the one file the dashboard reads: its users file (PA_DASHBOARD_USERS_FILE), at start-up
ALLOWED_READS = {("users.py", "read_text")}
#: the planner page plans from a contract an operator drops on it, and nothing else: the
#: contract model parses it, the planner runs the engine on a synthetic file of its public
#: shape (analytics.planner's tests show it reads nothing but the contract)
PLANNER_PROJECT = {"privacy.contract", "analytics.planner", "analytics.dataset_plan"}
#: from the other packages, only the read-only query API, its row types and error types
#: (and the name rules and strict YAML loader the users file shares with contracts)
ALLOWED_PROJECT = {
    "analytics.store.queries", "analytics.store.rows", "analytics.vocabulary", "privacy.errors",
    "privacy.names", "privacy.strict_yaml",
}
#: the store's writer side, which the dashboard must never import (the package itself
#: names the writer too)
WRITER = {"analytics.store", "analytics.store.writer", "analytics.store.pinning",
          "analytics.store.runs", "analytics.store.release_sets", "analytics.store.migrations"}
#: calls that read files or data
READ_CALLS = {"open", "read_text", "read_bytes", "read_csv", "read_parquet", "read_json",
              "read_ndjson", "read_excel", "scan_csv", "scan_parquet", "scan_ndjson",
              "read_table", "listdir", "iterdir", "glob", "rglob", "scandir", "walk",
              "get_object", "fget_object", "list_objects"}


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_modules_found() -> None:
    names = {p.name for p in MODULES}
    assert {"app.py", "settings.py", "uploader.py", "overview.py", "dataset.py", "budget.py",
            "pipeline.py", "upload.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(DASHBOARD)))
def test_imports_stay_inside_the_boundary(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for name in _imports(tree):
        top = name.split(".")[0]
        if (path.name, top) in ALLOWED_EXCEPTIONS:
            continue
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if top in ("analytics", "privacy"):
            allowed = ALLOWED_PROJECT | (PLANNER_PROJECT if path.name == "planner.py" else set())
            assert name in allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(DASHBOARD)))
def test_no_file_reads_env_reads_or_raw_html(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else "")
            if (path.name, name) not in ALLOWED_READS:
                assert name not in READ_CALLS, f"{path.name}:{node.lineno} calls {name}()"
            assert name != "print", f"{path.name}:{node.lineno} prints"
            assert name != "getenv", f"{path.name}:{node.lineno} reads the environment"
        if isinstance(node, ast.Attribute):
            assert node.attr != "environ", f"{path.name}:{node.lineno} reads os.environ"
            assert node.attr != "Markdown", f"{path.name}:{node.lineno} renders Markdown"
        if isinstance(node, ast.keyword):
            assert node.arg != "dangerously_allow_html", f"{path.name}:{node.lineno}"
        if isinstance(node, ast.ExceptHandler):
            assert node.type is not None, f"{path.name}:{node.lineno} bare except"
            caught = ast.unparse(node.type)
            reraises = any(isinstance(n, ast.Raise) and n.exc is None for n in node.body)
            assert reraises or caught not in ("Exception", "BaseException"), (
                f"{path.name}:{node.lineno} catches everything"
            )


def test_boundary_test_catches_a_violation(tmp_path: Path) -> None:
    bad = ast.parse("import flows.settings\nfrom polars import read_csv\nimport minio\n")
    tops = {n.split(".")[0] for n in _imports(bad)}
    assert tops & FORBIDDEN == {"flows", "polars", "minio"}


def test_the_store_writer_stays_outside_the_boundary() -> None:
    bad = ast.parse("from analytics.store import AggregateStore\n"
                    "from analytics.store.writer import AggregateStore\n"
                    "import analytics.store.pinning\n")
    assert set(_imports(bad)) <= WRITER
    assert not WRITER & ALLOWED_PROJECT
