"""The examples in the docstrings of the pure packages run, and say what they show.

Every module of ``privacy/`` and the pure modules of ``analytics/`` (no store, no OpenDP
plan of their own) carry at least one ``>>>`` example; an example that needs a temporary
folder or a network is marked ``# doctest: +SKIP``, no other.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE_ANALYTICS = [
    "analytics.analyses.names",
    "analytics.vocabulary",
    "analytics.bounds",
    "analytics.trends",
    "analytics.insights",
    "analytics.forecasts",
    "analytics.correlations",
]


def _privacy_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "privacy").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _privacy_modules() + PURE_ANALYTICS


def test_every_privacy_module_is_listed() -> None:
    assert {"privacy", "privacy.contract", "privacy.release.engine", "privacy.masking"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = finder.find(module, name)
    assert any(t.name == name and t.examples for t in tests), f"{name}: no example in its docstring"
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{name}: {results.failed} of {results.attempted} examples failed"


@pytest.mark.parametrize("name", MODULES)
def test_skips_only_what_needs_a_folder_or_a_network(name: str) -> None:
    module = importlib.import_module(name)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        for example in test.examples:
            if example.options.get(doctest.SKIP):
                source = example.source.lower()
                assert any(w in source for w in ("tmp", "path(", "http", "url")), (
                    f"{test.name}: a skipped example that needs neither a folder nor a network"
                )
