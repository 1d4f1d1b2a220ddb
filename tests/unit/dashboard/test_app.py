"""The app factory, login, the read-only store connection, and what pages say when the
store is empty, unreachable or out of budget (rendered server-side, no browser)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dash
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from analytics.store import AggregateStore
from dashboard.app import UNAVAILABLE, create_app, read_marker
from dashboard.ids import BUDGET, DATASET, SHELL, UPLOAD
from dashboard.pages import budget, dataset, overview, pipeline, upload
from dashboard.services import Services
from dashboard.settings import DashboardSettings
from dashboard.users import LOCAL_OPERATOR
from privacy.contract import parse_contract
from privacy.results import ReleaseSet
from tests.browser.support import (
    HOSTILE_KEYS,
    ROOT,
    employee_release_set,
    employees_contract,
    hostile_contract,
    publish,
)


def walk(component: Any) -> Iterator[Any]:
    if isinstance(component, list | tuple):
        for c in component:
            yield from walk(c)
        return
    if component is None or isinstance(component, str | int | float):
        return
    yield component
    yield from walk(getattr(component, "children", None))


def ids(component: Any) -> set[str]:
    return {str(c.id) for c in walk(component) if getattr(c, "id", None) is not None}


def texts(component: Any) -> str:
    out: list[str] = []
    for c in walk(component):
        kids = getattr(c, "children", None)
        if isinstance(kids, str | int | float):
            out.append(str(kids))
        elif isinstance(kids, list):
            out.extend(str(k) for k in kids if isinstance(k, str | int | float))
    return " ".join(out)


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'aggregates.db'}"
    with AggregateStore(url) as store:
        publish(store, employees_contract(), employee_release_set())
        hostile = employee_release_set(teams=(*HOSTILE_KEYS, "Cygnus", "Draco"))
        publish(store, hostile_contract(), ReleaseSet("hostile", 1, hostile.loss,
                                                      hostile.releases))
    yield url


@pytest.fixture
def services(store_url: str, tmp_path: Path) -> Iterator[Services]:
    s = Services.from_settings(DashboardSettings(store_url=store_url,
                                                 landing_dir=tmp_path / "landing"))
    yield s
    s.close()


def test_create_app_registers_every_page(services: Services) -> None:
    app = create_app(services=services)
    paths = {p["path_template"] or p["path"] for p in dash.page_registry.values()}
    assert {"/", "/dataset/<name>", "/budget", "/pipeline", "/upload"} <= paths
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert SHELL.marker in layout and SHELL.refresh in layout
    create_app(services=services)  # a second app in the same process works too


def test_login_is_required_off_loopback(services: Services, tmp_path: Path) -> None:
    from tests.unit.dashboard.test_roles import users_file

    settings = DashboardSettings(store_url=services.settings.store_url, host="0.0.0.0",
                                 users_file=users_file(tmp_path))
    client = create_app(settings).server.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/_dash-layout").status_code == 401
    wrong = base64.b64encode(b"ana:nope").decode()
    assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    right = base64.b64encode(b"ana:ana-password").decode()
    assert client.get("/", headers={"Authorization": f"Basic {right}"}).status_code == 200


def test_the_read_only_connection_refuses_a_write(services: Services) -> None:
    store = services.store()
    assert store.datasets()  # it reads
    with pytest.raises(sa_exc.OperationalError, match="readonly"), \
            store._engine.begin() as conn:
        conn.execute(text("DELETE FROM published_values"))
    assert store.latest_values("employees")  # nothing was deleted


def test_change_marker_moves_when_a_release_is_published(services: Services,
                                                         store_url: str) -> None:
    before = read_marker(services)
    with AggregateStore(store_url) as store:
        publish(store, employees_contract(), employee_release_set(shift=1.0), "second.csv")
    assert read_marker(services) not in (before, UNAVAILABLE)


def test_pages_render_from_the_store(services: Services) -> None:
    assert "employees" in texts(overview.render(services))
    page = dataset.render(services, "employees")
    found = ids(page)
    assert DATASET.kpis in found and DATASET.how_to_read in found
    words = texts(page)
    assert "19% higher" in words and "95% CI" in words
    assert "Budget and ledger" in texts(budget.render(services))
    assert "projects.csv" in texts(pipeline.render(services, LOCAL_OPERATOR))


def test_unknown_dataset_says_what_to_do(services: Services) -> None:
    words = texts(dataset.render(services, "employes"))
    assert "no dataset 'employes'" in words and "known: employees, hostile" in words


def test_store_unreachable_says_what_to_do(tmp_path: Path) -> None:
    services = Services.from_settings(DashboardSettings(
        store_url=f"sqlite:///{tmp_path / 'missing.db'}"))
    assert read_marker(services) == UNAVAILABLE
    for page in (overview.render(services), budget.render(services),
                 pipeline.render(services, LOCAL_OPERATOR),
                 dataset.render(services, "employees")):
        words = texts(page)
        assert "cannot be reached" in words and "What to do" in words
        assert "Traceback" not in words


def test_no_datasets_yet(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    AggregateStore(url).close()
    services = Services.from_settings(DashboardSettings(store_url=url))
    assert "No datasets yet" in texts(overview.render(services))
    assert "No datasets yet" in texts(budget.render(services))
    assert "No runs yet" in texts(pipeline.render(services, LOCAL_OPERATOR))


def test_exhausted_budget_is_explained(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tight.db'}"
    yaml = (ROOT / "contracts" / "employees.yaml").read_text().replace(
        "epsilon_cap: 50.0", "epsilon_cap: 1.0")
    contract = parse_contract(yaml, "tight")
    with AggregateStore(url) as store:
        publish(store, contract, employee_release_set())
    services = Services.from_settings(DashboardSettings(store_url=url))
    assert DATASET.exhausted in ids(dataset.render(services, "employees"))
    assert BUDGET.of_dataset("employees").exhausted in ids(budget.render(services))
    assert "budget exhausted" in texts(overview.render(services))


def test_export_csv_is_neutralised(services: Services) -> None:
    sent = dataset.export_csv(services, "hostile", "comparison:efficiency:team")
    assert sent["filename"] == "hostile-comparison_efficiency_team.csv"
    content = sent["content"]
    assert "'" + HOSTILE_KEYS[1].replace('"', '""') in content
    assert "\n=" not in content and ",=" not in content


def test_upload_put_and_run_lookup(services: Services, tmp_path: Path) -> None:
    data = base64.b64encode(b"a,b\n1,2\n").decode()
    result, pending = upload.put(services, LOCAL_OPERATOR, "employees", "new.csv",
                                 f"data:text/csv;base64,{data}")
    assert UPLOAD.done in ids(result)
    assert pending is not None and pending["key"] == "landing/employees/new.csv"
    assert (tmp_path / "landing" / "employees" / "new.csv").read_bytes() == b"a,b\n1,2\n"
    assert UPLOAD.waiting in ids(upload.run_status(services, LOCAL_OPERATOR, pending))
    refused, none = upload.put(services, LOCAL_OPERATOR, "employees", "../x.csv",
                               f"data:,{data}")
    assert none is None and "not allowed" in texts(refused)


def test_make_server_serves_and_stops(services: Services) -> None:
    import threading
    import urllib.request

    from dashboard import make_server

    server = make_server(DashboardSettings(store_url=services.settings.store_url, port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/_dash-layout"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_a_malformed_store_url_is_explained_not_crashed() -> None:
    services = Services.from_settings(DashboardSettings(store_url="not a url"))
    assert read_marker(services) == UNAVAILABLE
    words = texts(overview.render(services))
    assert "not a SQLAlchemy URL" in words
    client = create_app(services=services).server.test_client()
    assert client.get("/_dash-layout").status_code == 200
