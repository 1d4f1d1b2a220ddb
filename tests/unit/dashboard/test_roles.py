"""Two audiences, enforced on the server (Flask test client, no browser): a viewer gets
DP releases only, whichever endpoint it calls; an operator also gets the runs and the
upload page, and uploads only where the users file allows."""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics.store import AggregateStore
from dashboard import auth
from dashboard.app import create_app
from dashboard.components import DP_CLAIM, EXACT_CLAIM
from dashboard.ids import (
    BUDGET,
    DATASET,
    OPERATOR_PAGES,
    OVERVIEW,
    PIPELINE,
    SHELL,
    UPLOAD,
    Page,
    pattern,
)
from dashboard.pages import pipeline, upload
from dashboard.passwords import MIN_ITERATIONS, hash_password
from dashboard.services import Services
from dashboard.settings import DashboardSettings
from dashboard.users import User
from tests.browser.support import (
    employee_release_set,
    employees_contract,
    publish,
    record_rejected_run,
)

#: exact operator counts of the runs support.publish and record_rejected_run record
EXACT = ("1,200", "17 suppressed", "3 of 40 values")
VIEWER = User("ana", "viewer")


@functools.cache
def _hash(password: str) -> str:
    return hash_password(password, MIN_ITERATIONS)


def users_file(folder: Path) -> Path:
    """ana (viewer), olu (operator, may upload to employees), root (operator, anywhere)."""
    path = folder / "users.yaml"
    path.write_text(
        "users:\n"
        f"  - {{name: ana, role: viewer, password_hash: '{_hash('ana-password')}'}}\n"
        f"  - {{name: olu, role: operator, password_hash: '{_hash('olu-password')}',\n"
        "     upload_datasets: [employees]}\n"
        f"  - {{name: root, role: operator, password_hash: '{_hash('root-password')}',\n"
        "     upload_datasets: '*'}\n"
    )
    return path


def login(name: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{name}-password".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    url = f"sqlite:///{tmp_path / 'aggregates.db'}"
    with AggregateStore(url) as store:
        publish(store, employees_contract(), employee_release_set())
        record_rejected_run(store)
    landing = tmp_path / "landing"
    settings = DashboardSettings(store_url=url, landing_dir=landing,
                                 users_file=users_file(tmp_path))
    app = create_app(settings)
    yield app.server.test_client(), landing
    app.server.extensions["privacy_analytics_dashboard"].close()


def _flat(items: list[Any]) -> list[dict[str, Any]]:
    return [x for i in items for x in (_flat(i) if isinstance(i, list) else [i])]


def _prop_id(item: dict[str, Any]) -> str:
    cid = item["id"]
    if isinstance(cid, dict):
        cid = json.dumps(cid, sort_keys=True, separators=(",", ":"))
    return f"{cid}.{item['property']}"


def call(client: Any, user: str, outputs: list[str], inputs: list[dict[str, Any]],
         state: list[dict[str, Any]] | None = None) -> Any:
    """POST /_dash-update-component as the browser does for one callback."""
    outs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]} for o in outputs]
    body = {
        "output": outputs[0] if len(outputs) == 1 else ".." + "...".join(outputs) + "..",
        "outputs": outs[0] if len(outs) == 1 else outs,
        "inputs": inputs,
        "state": state or [],
        "changedPropIds": [_prop_id(i) for i in _flat(inputs)],
    }
    return client.post("/_dash-update-component", data=json.dumps(body),
                       content_type="application/json", headers=login(user))


def open_page(client: Any, user: str, path: str) -> Any:
    """What the page router returns for ``path`` (the layout the browser gets)."""
    return call(client, user, ["_pages_content.children", "_pages_store.data"],
                [{"id": "_pages_location", "property": "pathname", "value": path},
                 {"id": "_pages_location", "property": "search", "value": ""}])


MARKER = {"id": SHELL.marker, "property": "data", "value": "x"}


def render(client: Any, user: str, page: Page, state: list[dict[str, Any]] | None = None) -> Any:
    inputs = [MARKER]
    if page is DATASET:  # the dataset page also re-renders when a release set is chosen
        inputs.append({"id": DATASET.chosen, "property": "data", "value": None})
    return call(client, user, [f"{page.content}.children"], inputs, state)


def upload_call(client: Any, user: str, dataset: str) -> Any:
    data = base64.b64encode(b"a,b\n1,2\n").decode()
    return call(client, user, [f"{UPLOAD.result}.children", f"{UPLOAD.pending}.data"],
                [{"id": UPLOAD.submit, "property": "n_clicks", "value": 1}],
                [{"id": UPLOAD.dataset, "property": "value", "value": dataset},
                 {"id": UPLOAD.file, "property": "filename", "value": "new.csv"},
                 {"id": UPLOAD.file, "property": "contents",
                  "value": f"data:text/csv;base64,{data}"}])


def export_call(client: Any, user: str, page: Page, name: str,
                state: list[dict[str, Any]] | None = None) -> Any:
    trigger = {"id": pattern(page.export, name), "property": "n_clicks", "value": 1}
    resp = call(client, user, [f"{page.download}.data"], [[trigger]], state)
    return resp


def downloaded(resp: Any, page: Page) -> dict[str, Any]:
    """The file an export callback sent."""
    data: dict[str, Any] = resp.get_json()["response"][page.download]["data"]
    return data


@pytest.fixture
def no_outer_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take away auth's 403 on operator outputs: the callbacks must refuse on their own."""
    monkeypatch.setattr(auth, "OPERATOR_PAGES", ())


# ----------------------------------------------------------------------------- navigation


def hrefs(tree: Any) -> set[str]:
    if isinstance(tree, list):
        return {h for t in tree for h in hrefs(t)}
    if not isinstance(tree, dict):
        return set()
    found = {tree["href"]} if isinstance(tree.get("href"), str) else set()
    return found | {h for v in tree.values() for h in hrefs(v)}


def test_the_viewer_navigation_has_no_operator_pages(app_client) -> None:
    client, _ = app_client
    viewer = client.get("/_dash-layout", headers=login("ana"))
    assert hrefs(viewer.get_json()) == {"/", "/budget"}
    text = viewer.get_data(as_text=True)
    assert "viewer: DP releases only" in text and "ana (viewer)" in text
    operator = client.get("/_dash-layout", headers=login("olu")).get_json()
    assert hrefs(operator) == {"/", "/budget", "/pipeline", "/upload", "/planner"}


def test_the_marker_says_that_the_store_changed_not_how(app_client) -> None:
    client, _ = app_client
    layout = client.get("/_dash-layout", headers=login("ana")).get_json()
    marker = json.dumps(layout)
    assert f'"{SHELL.marker}"' in marker
    # a hash, not the (release, ledger, runs, ...) tuple with its run count
    assert "(" not in next(
        c["props"]["data"] for c in layout["props"]["children"]
        if c.get("props", {}).get("id") == SHELL.marker)


# ----------------------------------------------------------------------------- operator pages


@pytest.mark.parametrize("page", OPERATOR_PAGES, ids=lambda p: p.name)
def test_a_viewer_opening_an_operator_page_gets_no_data(app_client, page: Page) -> None:
    client, _ = app_client
    path = f"/{page.name}"
    resp = open_page(client, "ana", path)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Not available to your role" in text
    assert page.forbidden in text and page.id("content") not in text
    assert UPLOAD.file not in text and DP_CLAIM in text and EXACT_CLAIM not in text
    operator = open_page(client, "olu", path).get_data(as_text=True)
    assert page.operator_banner in operator and EXACT_CLAIM in operator


def test_a_viewer_calling_the_runs_callback_is_refused(app_client) -> None:
    client, _ = app_client
    resp = render(client, "ana", PIPELINE)
    assert resp.status_code == 403
    assert not any(n in resp.get_data(as_text=True) for n in EXACT)
    operator = render(client, "olu", PIPELINE).get_data(as_text=True)
    assert all(n in operator for n in EXACT)


def test_without_the_outer_lock_the_runs_callback_still_refuses(app_client,
                                                                 no_outer_lock) -> None:
    client, _ = app_client
    resp = render(client, "ana", PIPELINE)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Not available to your role" in text
    assert not any(n in text for n in EXACT)


def test_a_viewer_cannot_export_the_runs(app_client) -> None:
    client, _ = app_client
    assert export_call(client, "ana", PIPELINE, "runs").status_code == 403
    resp = export_call(client, "olu", PIPELINE, "runs")
    content = downloaded(resp, PIPELINE)["content"]
    rows = list(csv.DictReader(io.StringIO(content)))
    assert {r["rows_in"] for r in rows} == {"1200", "40"}


def test_without_the_outer_lock_the_runs_export_still_refuses(app_client,
                                                               no_outer_lock) -> None:
    client, _ = app_client
    resp = export_call(client, "ana", PIPELINE, "runs")
    assert resp.status_code == 204 and not resp.get_data()  # no update, no file


def test_a_viewer_cannot_upload(app_client, no_outer_lock) -> None:
    client, landing = app_client
    text = upload_call(client, "ana", "employees").get_data(as_text=True)
    assert "Not available to your role" in text
    assert not landing.exists()


def test_a_viewer_upload_is_refused_by_the_outer_lock_too(app_client) -> None:
    client, landing = app_client
    assert upload_call(client, "ana", "employees").status_code == 403
    assert not landing.exists()


def test_uploads_only_to_the_datasets_of_the_users_file(app_client) -> None:
    client, landing = app_client
    refused = upload_call(client, "olu", "payroll").get_data(as_text=True)
    assert "may not upload to dataset 'payroll'" in refused
    assert not (landing / "payroll").exists()
    done = upload_call(client, "olu", "employees").get_json()["response"]
    assert done[UPLOAD.pending]["data"]["key"] == "landing/employees/new.csv"
    assert (landing / "employees" / "new.csv").read_bytes() == b"a,b\n1,2\n"
    anywhere = upload_call(client, "root", "payroll").get_json()["response"]
    assert anywhere[UPLOAD.pending]["data"]["key"] == "landing/payroll/new.csv"


def test_the_upload_page_offers_only_the_allowed_datasets(app_client) -> None:
    client, _ = app_client
    text = open_page(client, "olu", "/upload").get_data(as_text=True)
    assert "You may upload to these datasets: employees" in text


def test_a_viewer_cannot_follow_an_upload_run(app_client, no_outer_lock) -> None:
    client, _ = app_client
    pending = {"key": "landing/employees/broken.csv", "dataset": "employees",
               "at": "2000-01-01T00:00:00+00:00"}
    resp = call(client, "ana", [f"{UPLOAD.run}.children"],
                [MARKER, {"id": UPLOAD.pending, "property": "data", "value": pending}])
    text = resp.get_data(as_text=True)
    assert "Not available to your role" in text and "40" not in text


def test_role_checks_of_the_page_functions(tmp_path: Path) -> None:
    services = Services.from_settings(DashboardSettings(store_url=f"sqlite:///{tmp_path}/x.db",
                                                        landing_dir=tmp_path / "landing"))
    assert pipeline.render(services, VIEWER).id == PIPELINE.forbidden
    assert upload.run_status(services, VIEWER, {"key": "k"}).id == UPLOAD.forbidden
    result, pending = upload.put(services, VIEWER, "employees", "a.csv", "data:,YQ==")
    assert result.id == UPLOAD.forbidden and pending is None
    assert not (tmp_path / "landing").exists()


# ----------------------------------------------------------------------------- viewer pages


@pytest.mark.parametrize("page", [OVERVIEW, BUDGET], ids=lambda p: p.name)
def test_viewer_pages_show_no_exact_counts(app_client, page: Page) -> None:
    client, _ = app_client
    resp = render(client, "ana", page)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert not any(n in text for n in EXACT)
    assert "suppressed" not in text.lower() and "rows processed" not in text.lower()
    assert "projects.csv" not in text, "object names are operator information"


def test_viewer_page_layouts_carry_the_dp_claim(app_client) -> None:
    client, _ = app_client
    for path in ("/", "/budget", "/dataset/employees"):
        text = open_page(client, "ana", path).get_data(as_text=True)
        assert DP_CLAIM in text and EXACT_CLAIM not in text, path


def test_the_overview_shows_the_dp_counts_of_the_summary(app_client) -> None:
    client, _ = app_client
    text = render(client, "ana", OVERVIEW).get_data(as_text=True)
    assert "Rows (DP)" in text and "People (DP)" in text
    assert "1,183" in text and "95% CI 1,177 to 1,189" in text  # the published count
    assert "214" in text  # the published people count


def test_the_dataset_page_of_a_viewer(app_client) -> None:
    client, _ = app_client
    state = [{"id": DATASET.dataset, "property": "data", "value": "employees"}]
    text = render(client, "ana", DATASET, state).get_data(as_text=True)
    assert "19% higher" in text
    assert not any(n in text for n in EXACT) and "suppressed" not in text.lower()


def test_budget_exports_keep_object_names_for_operators(app_client) -> None:
    client, _ = app_client

    def ledger(user: str) -> list[dict[str, str]]:
        resp = export_call(client, user, BUDGET, "employees")
        return list(csv.DictReader(io.StringIO(downloaded(resp, BUDGET)["content"])))

    viewer = ledger("ana")
    assert viewer and "object_key" not in viewer[0] and "run_id" not in viewer[0]
    operator = ledger("olu")
    assert operator[0]["object_key"] == "landing/employees/projects.csv"


def test_the_terms_history_is_on_the_budget_page_and_exported(app_client) -> None:
    client, _ = app_client
    text = render(client, "ana", BUDGET).get_data(as_text=True)
    assert "Changes to the guarantee" in text and "initial terms" in text
    data = downloaded(export_call(client, "ana", BUDGET, "employees:terms"), BUDGET)
    assert data["filename"] == "employees-budget-terms.csv"
    rows = list(csv.DictReader(io.StringIO(data["content"])))
    assert {"epsilon_cap", "privacy_unit"} <= {r["setting"] for r in rows}


def test_a_weakening_change_is_shown_as_one(app_client, tmp_path: Path) -> None:
    client, _ = app_client
    with AggregateStore(f"sqlite:///{tmp_path / 'aggregates.db'}") as store:
        store.set_terms("employees", reason="new survey wave", actor="olu", force=True,
                        epsilon_cap=60.0)
        store.set_terms("employees", reason="tighter", actor="olu", epsilon_cap=55.0)
    response = render(client, "ana", BUDGET).get_json()["response"]
    text = json.dumps(response, ensure_ascii=False)
    assert "The guarantee was weakened" in text
    assert BUDGET.of_dataset("employees").weakened in text
    assert "ε cap 50 → 60" in text and "new survey wave" in text and "olu" in text
    assert "weakens the guarantee" in text and "forced" in text
    assert "keeps or strengthens it" in text  # the lowered cap
    assert text.count("table-danger") == 1


# ----------------------------------------------------------------------------- no users file


def test_the_local_user_on_loopback_is_the_operator(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'aggregates.db'}"
    with AggregateStore(url) as store:
        publish(store, employees_contract(), employee_release_set())
    client = create_app(DashboardSettings(store_url=url)).server.test_client()
    layout = client.get("/_dash-layout")
    assert "/pipeline" in hrefs(layout.get_json())
    assert "local operator" in layout.get_data(as_text=True)
    body = {"output": f"{PIPELINE.content}.children",
            "outputs": {"id": PIPELINE.content, "property": "children"},
            "inputs": [MARKER], "changedPropIds": [f"{SHELL.marker}.data"], "state": []}
    resp = client.post("/_dash-update-component", json=body)
    assert resp.status_code == 200 and "1,200" in resp.get_data(as_text=True)


def test_operator_outputs_are_recognised() -> None:
    assert auth.operator_outputs({"output": f"{PIPELINE.content}.children"}) == [
        PIPELINE.content]
    assert auth.operator_outputs(
        {"output": f"..{UPLOAD.result}.children...{UPLOAD.pending}.data.."}) == [
        UPLOAD.result, UPLOAD.pending]
    assert auth.operator_outputs(
        {"outputs": {"id": pattern(PIPELINE.export, "x"), "property": "n"}})
    assert not auth.operator_outputs({"output": f"{OVERVIEW.content}.children"})
    assert not auth.operator_outputs(
        {"outputs": {"id": pattern(BUDGET.export, PIPELINE.id("x")), "property": "n"}})
    assert not auth.operator_outputs(None)
