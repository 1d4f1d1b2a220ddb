"""Helpers of the browser tests: store data published through the real write API, a
served dashboard and its users, screenshots, console-log checks and waiting."""

from __future__ import annotations

import base64
import math
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from analytics.store import AggregateStore, ObjectVersion, RunRecord, utcnow
from analytics.store.records import Coverage
from analytics.vocabulary import BIN, WITH, Kind, Metric, quantile_metric, versus
from dashboard.app import create_app
from dashboard.passwords import MIN_ITERATIONS, hash_password
from dashboard.settings import DashboardSettings
from privacy.budget import PrivacyLoss
from privacy.contract import Contract, load_contract, parse_contract
from privacy.results import PublishedValue, Release, ReleaseSet

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TEAMS = ("Atlas", "Borealis", "Cygnus", "Draco")
WINDOW = (1280, 1000)
MAX_SHOT_HEIGHT = 6000
HOSTILE_KEYS = ("<script>alert('pwned')</script>", '=HYPERLINK("http://evil.example","x")')


# ----------------------------------------------------------------------------- store data


def employees_contract() -> Contract:
    return load_contract(ROOT / "contracts" / "employees.yaml")


def hostile_contract() -> Contract:
    text = (ROOT / "contracts" / "employees.yaml").read_text()
    return parse_contract(text.replace("dataset: employees", "dataset: hostile"), "hostile")


def _v(metric: str, value: float, half: float | None, *, column: str | None = None,
       group: dict[str, str] | None = None, scale: float | None = None) -> PublishedValue:
    lower = None if half is None else value - half
    upper = None if half is None else value + half
    if scale is None and half is not None:
        scale = half / 1.96
    return PublishedValue(metric, value, lower, upper, scale, column, group or {})


def employee_release_set(shift: float = 0.0, count: float = 1183.0,
                         teams: tuple[str, ...] = TEAMS) -> ReleaseSet:
    """A release set of all six analysis kinds, shaped like analytics.analyses' output
    (metrics, columns and group keys), with made-up numbers."""
    days = "project_completion_days"
    eff_means = [1.12 + shift, 0.94, 1.02, 0.97]
    summary = Release(Kind.SUMMARY, "summary", "laplace", PrivacyLoss(0.2, 0.0), [
        _v(Metric.COUNT, count, 6.0),
        _v(Metric.UNITS, 214.0, 3.0),
        _v(Metric.SUM, 14670.0, 400.0, column=days),
        _v(Metric.MEAN, 12.4 + shift, 0.5, column=days),
        _v(Metric.MEAN, 1.01, 0.03, column="efficiency"),
    ], [f"Average project completion days: {12.4 + shift:.1f} (95% CI {11.9 + shift:.1f}–"
        f"{12.9 + shift:.1f})."])
    per_team = []
    for i, (t, m) in enumerate(zip(teams, eff_means, strict=False)):
        n = 290.0 + 7 * i
        per_team += [_v(Metric.COUNT, n, 5.0, column="efficiency", group={"team": t}),
                     _v(Metric.SUM, m * n, 20.0, column="efficiency", group={"team": t}),
                     _v(Metric.MEAN, m, 0.06, column="efficiency", group={"team": t})]
    comparison = Release(
        Kind.COMPARISON, "comparison:efficiency:team", "laplace", PrivacyLoss(0.2, 0.0),
        [*per_team,
         _v(Metric.DIFFERENCE, 0.18 + shift, 0.08, column="efficiency",
            group={"team": teams[0], versus("team"): teams[1]}),
         _v(Metric.RATIO, 1.19, 0.09, column="efficiency",
            group={"team": teams[0], versus("team"): teams[1]})],
        [f"{teams[0]}'s average efficiency is 19% higher than {teams[1]}'s (95% CI 10–28%).",
         f"No clear difference in average efficiency between {teams[2]} and {teams[3]}."],
    )
    comparison_days = Release(
        Kind.COMPARISON, f"comparison:{days}:team", "laplace", PrivacyLoss(0.1, 0.0),
        [_v(Metric.MEAN, m, 0.9, column=days, group={"team": t})
         for t, m in zip(teams, [11.2, 13.5, 12.1, 12.9], strict=False)],
        ["No clear difference in average project completion days between team groups."],
    )
    edges = [0, 5, 10, 15, 20, 30, 45, 60]
    heights = [95.0, 260.0, 330.0, 240.0, 170.0, 70.0, 18.0]
    distribution = Release(
        Kind.DISTRIBUTION, f"distribution:{days}", "laplace+exponential", PrivacyLoss(0.1, 0.0),
        [_v(Metric.HISTOGRAM, h, 9.0, column=days, group={BIN: f"[{lo}, {hi})"})
         for lo, hi, h in zip(edges, edges[1:], heights, strict=False)]
        # quantiles as the engine publishes them: a rough range in days, no noise scale
        + [PublishedValue(quantile_metric(q), v, lo, hi, None, days)
           for q, v, lo, hi in ((0.25, 8.0, 7.1, 9.2), (0.5, 12.0, 10.9, 13.2),
                                (0.75, 18.0, 16.4, 19.9))],
        ["About half of the values of project completion days are at or below roughly 12.0 "
         "(likely between 10.9 and 13.2); a differentially private estimate whose range is a "
         "rough guide, not a 95% interval.",
         "The middle half of project completion days lies roughly between 8.00 and 18.0."],
    )
    months = [f"2024-{m:02d}" for m in range(1, 13)]
    trend_vals = [11.0 + 0.25 * i + 0.6 * math.sin(i) for i in range(12)]
    trend = Release(
        Kind.TREND, "trend:finish_date", "laplace+threshold", PrivacyLoss(0.2, 1e-7),
        [_v(Metric.COUNT, 90.0 + 4 * i, 6.0, group={"finish_date": mo}) for i, mo in enumerate(months)]
        + [_v(Metric.MEAN, v + shift, 0.8, column=days, group={"finish_date": mo})
           for mo, v in zip(months, trend_vals, strict=False)],
        ["Rows per month rose over 2024."],
    )
    forecast = Release(
        Kind.FORECAST, "forecast:finish_date", "post-processing", None,
        [PublishedValue(Metric.FORECAST, 138.0 + 4 * i, 128.0, 148.0 + 8 * i, None, None,
                        {"finish_date": f"2025-{i + 1:02d}"}) for i in range(3)],
        ["Forecast of rows per month for the next 3 months: about 138–146 (wide interval)."],
    )
    correlation = Release(
        Kind.CORRELATION, f"correlation:{days},efficiency", "laplace", PrivacyLoss(0.1, 0.0),
        [_v(Metric.PEARSON_R, -0.42, 0.07, column=days, group={WITH: "efficiency"})],
        ["Longer projects tend to have lower efficiency (r = −0.42, 95% CI −0.49 to −0.35)."],
    )
    releases = [summary, comparison, comparison_days, distribution, trend, forecast, correlation,
                quality_release(days)]
    return ReleaseSet("employees", 1, PrivacyLoss(1.0, 1e-7), releases)


def quality_release(days: str = "project_completion_days") -> Release:
    """The quality release as the engine publishes it: shares in [0, 1] with 95% intervals
    (clipped at 0), and a warning for each share large enough to bias a number."""
    def share(metric: str, value: float, half: float, column: str | None = None
              ) -> PublishedValue:
        return PublishedValue(metric, value, max(value - half, 0.0), min(value + half, 1.0),
                              half / 1.96, column, {})

    return Release(Kind.QUALITY, "quality", "laplace", PrivacyLoss(0.1, 0.0), [
        share(Metric.MISSING_SHARE, 0.12, 0.015, days),
        share(Metric.CLAMPED_LOW_SHARE, 0.0, 0.012, days),
        share(Metric.CLAMPED_HIGH_SHARE, 0.13, 0.016, days),
        share(Metric.MISSING_SHARE, 0.004, 0.01, "efficiency"),
        share(Metric.CLAMPED_LOW_SHARE, 0.0, 0.01, "efficiency"),
        share(Metric.CLAMPED_HIGH_SHARE, 0.02, 0.012, "efficiency"),
        share(Metric.OVER_BOUND_SHARE, 0.06, 0.03),
        share(Metric.TRUNCATED_SHARE, 0.03, 0.02),
    ], [
        "About 12% of project completion days values are missing and are left out: sums and "
        "averages use the values that are there.",
        "About 13% of project completion days values were above the contract's upper bound of "
        "60 and count as 60: the average of project completion days is biased low; raise the "
        "bound if such values are real.",
        "About 6% of people have more than 12 rows in this file; rows beyond 12 per person "
        "were left out at random, so that no person weighs more than that: raise "
        "max_rows_per_unit to keep more (the noise grows with it).",
    ])


def publish(store: AggregateStore, contract: Contract, release_set: ReleaseSet,
            filename: str = "projects.csv") -> RunRecord:
    """Publish ``release_set`` as the pipeline would: reserve, publish (values + run)."""
    run_id = str(uuid.uuid4())
    obj = ObjectVersion("local", f"landing/{contract.dataset}/{filename}", uuid.uuid4().hex,
                        1024)
    reservation = store.reserve(contract, release_set.loss, obj=obj, run_id=run_id)
    run = RunRecord(run_id=run_id, dataset=contract.dataset, obj=obj, status="running",
                    rows_in=1200, rows_out=1183, rows_suppressed=17, columns_dropped=2,
                    columns_pseudonymized=1, columns_generalized=1,
                    flow_run_url=f"http://127.0.0.1:4200/runs/flow-run/{run_id}",
                    started_at=utcnow())
    assert store.publish(reservation, release_set, run)
    return run


def publish_dataset_release(store: AggregateStore, contract: Contract, release_set: ReleaseSet,
                            rows_per_person: int = 24) -> RunRecord:
    """Publish ``release_set`` as a dataset release over every file the store knows for the
    contract's dataset (the ``release-dataset`` flow's reserve and publish)."""
    files = tuple(f.obj for f in store.dataset_files(contract.dataset))
    coverage = Coverage(contract.dataset, "append", files, rows_per_person)
    run_id = str(uuid.uuid4())
    reservation = store.reserve(contract, release_set.loss, obj=coverage.obj, run_id=run_id)
    run = RunRecord(run_id=run_id, dataset=contract.dataset, obj=coverage.obj, status="running",
                    rows_in=1200 * len(files), started_at=utcnow())
    assert store.publish(reservation, release_set, run, coverage)
    return run


def record_rejected_run(store: AggregateStore, dataset: str = "employees") -> RunRecord:
    run = RunRecord(
        run_id=str(uuid.uuid4()), dataset=dataset,
        obj=ObjectVersion("local", f"landing/{dataset}/broken.csv", uuid.uuid4().hex, 99),
        status="rejected", rows_in=40,
        reason="column 'efficiency': 3 of 40 values are not numbers (rule: type float)",
        started_at=utcnow(), finished_at=utcnow(),
    )
    store.record_run(run)
    return run


@dataclass
class Stack:
    """A store with data and a served dashboard."""

    url: str
    store: AggregateStore
    settings: DashboardSettings
    landing: Path


@contextmanager
def served(settings: DashboardSettings) -> Iterator[str]:
    """A new dashboard app for ``settings``, served by werkzeug in a thread until the block
    ends; yields its base URL once it answers."""
    server = make_server("127.0.0.1", 0, create_app(settings).server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        wait_for(lambda: _answers(base), timeout=20, what=f"the dashboard at {base}")
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _answers(base: str) -> bool:
    """The server answers: 200, or 401 when a users file asks for a login first."""
    try:
        with urllib.request.urlopen(base + "/", timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code == 401


def users_file(path: Path, viewers: tuple[str, ...] = (),
               operators: dict[str, list[str]] | None = None) -> Path:
    """A users file at ``path``: each person's password is ``<name>-pw`` (see ``log_in``);
    operators upload to the datasets listed for them."""
    lines = ["users:"]
    people = [(n, "viewer", None) for n in viewers]
    people += [(n, "operator", d) for n, d in (operators or {}).items()]
    for name, role, datasets in people:
        lines += [f"  - name: {name}", f"    role: {role}",
                  f"    password_hash: {hash_password(f'{name}-pw', MIN_ITERATIONS)}"]
        if datasets is not None:
            lines.append(f"    upload_datasets: [{', '.join(datasets)}]")
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def served_with_users(store_url: str, folder: Path, *, refresh_seconds: float,
                      viewers: tuple[str, ...] = (),
                      operators: dict[str, list[str]] | None = None) -> Iterator[str]:
    """``served``: the dashboard on ``store_url`` with a users file of ``viewers`` and
    ``operators`` in ``folder`` (``users_file``), so every request needs a login."""
    users = users_file(folder / "users.yaml", viewers, operators)
    settings = DashboardSettings(store_url=store_url, users_file=users,
                                 refresh_seconds=refresh_seconds)
    with served(settings) as base:
        yield base


@contextmanager
def logged_in(driver: Any, name: str) -> Iterator[Any]:
    """The browser sending ``name``'s login (``log_in``) until the block ends."""
    log_in(driver, name)
    yield driver
    log_in(driver, None)


def log_in(driver: object, name: str | None) -> None:
    """Send ``name``'s basic-auth header (password ``<name>-pw``) with every request (None:
    stop sending it)."""
    driver.get("about:blank")  # type: ignore[attr-defined]  # no page still loading meanwhile
    driver.execute_cdp_cmd("Network.enable", {})  # type: ignore[attr-defined]
    headers = {}
    if name:
        token = base64.b64encode(f"{name}:{name}-pw".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",  # type: ignore[attr-defined]
                           {"headers": headers})


def severe_console_errors(drv: object) -> list[dict[str, object]]:
    logs = drv.get_log("browser")  # type: ignore[attr-defined]
    return [e for e in logs if e.get("level") == "SEVERE"]


def screenshot(drv, name: str, also_docs: bool = False) -> Path:
    """Save the whole page (up to MAX_SHOT_HEIGHT px) as test-output/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = int(drv.execute_script("return document.documentElement.scrollHeight"))
    drv.set_window_size(WINDOW[0], max(WINDOW[1], min(height + 40, MAX_SHOT_HEIGHT)))
    time.sleep(0.6)  # responsive charts redraw
    try:
        drv.save_screenshot(str(path))
    finally:
        drv.set_window_size(*WINDOW)
    if also_docs:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")
    return path


def wait_for(predicate: Callable[[], object], timeout: float = 15.0,
             what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:
            last_exc = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f": {last_exc}" if last_exc else ""))
