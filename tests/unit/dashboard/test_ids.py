"""Component ids are defined once (``dashboard.ids``): each page's start with its name, the
shell's with ``app-``, the operator pages are the runs and upload pages, and no other
dashboard module spells an id itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from dashboard import ids

DASHBOARD = Path(__file__).resolve().parents[3] / "dashboard"
#: a string that looks like a component id but is not one (a download's file name part)
NOT_IDS = {"budget-terms"}


def _ids_of(page: ids.Page) -> list[str]:
    return [v for k, v in vars(type(page)).items()
            if not k.startswith("_") and k != "name" and isinstance(v, str)]


def test_every_id_starts_with_its_page_name() -> None:
    seen: set[str] = set()
    for page in (ids.SHELL, *ids.PAGES):
        found = _ids_of(page)
        assert found and all(i.startswith(f"{page.name}-") for i in found), page.name
        assert not seen & set(found), f"ids of {page.name} repeat another page's"
        seen |= set(found)
    assert ids.SHELL.name == "app" and ids.SHELL.marker == "app-marker"
    assert ids.BUDGET.of_dataset("employees").exhausted == "budget-employees-exhausted"


def test_the_pages_and_the_operator_pages() -> None:
    assert [p.name for p in ids.PAGES] == ["overview", "dataset", "budget", "pipeline", "upload",
                                          "planner"]
    assert [p.name for p in ids.OPERATOR_PAGES] == ["pipeline", "upload"]
    for page in ids.PAGES:
        assert (DASHBOARD / "pages" / f"{page.name}.py").is_file()


def test_no_module_spells_an_id_itself() -> None:
    prefixes = "|".join(p.name for p in (ids.SHELL, *ids.PAGES))
    looks_like_an_id = re.compile(rf"^({prefixes})-[a-z]")
    for path in sorted(DASHBOARD.rglob("*.py")):
        if path.name == "ids.py" or "__pycache__" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                assert not looks_like_an_id.match(text) or text in NOT_IDS, (
                    f"{path.name}:{node.lineno} spells the id {text!r}: use dashboard.ids")
