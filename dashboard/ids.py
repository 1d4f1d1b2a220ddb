"""Component ids, defined once for layouts, callbacks, the role check and tests.

Every id of a page starts with the page's name (``dataset-kpis``); the shell's start with
``app-``. ``dashboard.auth`` refuses a viewer's callback whose outputs start with the name
of an operator page (:data:`OPERATOR_PAGES`). Ids that name one item of many (a chart, a
dataset's gauge) are pattern ids, ``{"type": ..., "name": ...}``:

    >>> DATASET.kpis, pattern(DATASET.disclosure, "summary:mean:salary")
    ('dataset-kpis', {'type': 'dataset-disclosure', 'name': 'summary:mean:salary'})
    >>> BUDGET.of_dataset("employees").exhausted
    'budget-employees-exhausted'
"""

from __future__ import annotations

from dataclasses import dataclass


def pattern(kind: str, name: str) -> dict[str, str]:
    """The pattern id of item ``name`` of the components of type ``kind``."""
    return {"type": kind, "name": name}


class Page:
    """A page's ids. Each page spells the ones it has; the shared components use these:
    ``root`` (the layout), ``content`` (what its render callback fills), ``footer``,
    ``error``, ``empty``, and the pattern types ``export`` (a card's "Download CSV") and
    ``insights`` (a card's sentences)."""

    name: str
    root: str
    content: str
    download: str
    footer: str
    error: str
    empty: str
    export: str
    insights: str
    exhausted: str
    forbidden: str
    operator_banner: str

    def id(self, part: str) -> str:
        """``<page>-<part>``: for ids made from data (``Budget.of_dataset``)."""
        return f"{self.name}-{part}"


class Shell(Page):
    """The navbar, the refresh interval and the store's change marker."""

    name = "app"
    brand = "app-brand"
    role = "app-role"
    user = "app-user"
    datasets = "app-datasets"
    main = "app-main"
    refresh = "app-refresh"
    marker = "app-marker"
    nav = "app-nav"  # the navbar's links: app-nav-0, app-nav-1, …


class Overview(Page):
    name = "overview"
    root = "overview-page"
    content = "overview-content"
    footer = "overview-footer"
    error = "overview-error"
    empty = "overview-empty"
    #: pattern types, one per dataset card
    count = "overview-count"
    dataset_link = "overview-dataset-link"
    quality_warnings = "overview-quality-warnings"


class Dataset(Page):
    name = "dataset"
    root = "dataset-page"
    dataset = "dataset-name"  # a dcc.Store holding the dataset's name
    content = "dataset-content"
    download = "dataset-download"
    footer = "dataset-footer"
    error = "dataset-error"
    empty = "dataset-empty"
    exhausted = "dataset-exhausted"
    title = "dataset-title"
    kpis = "dataset-kpis"
    quality_warnings = "dataset-quality-warnings"
    quality_table = "dataset-quality-table"
    how_to_read = "dataset-how-to-read"
    how_interval = "dataset-how-interval"
    how_quantiles = "dataset-how-quantiles"
    how_badges = "dataset-how-badges"
    #: the release set shown: a dcc.Store (the choice) and the dropdown that sets it
    chosen = "dataset-chosen"
    release_set = "dataset-release-set"
    release_selector = "dataset-release-selector"
    shown = "dataset-shown"
    history = "dataset-history"
    history_table = "dataset-history-table"
    #: pattern types, one per card or note
    export = "dataset-export"
    insights = "dataset-insights"
    graph = "dataset-graph"
    disclosure = "dataset-disclosure"
    contrasts = "dataset-contrasts"
    quantiles = "dataset-quantiles"


@dataclass(frozen=True)
class BudgetSection:
    """The alerts of one dataset's section of the budget page."""

    exhausted: str
    weakened: str


class Budget(Page):
    name = "budget"
    root = "budget-page"
    content = "budget-content"
    download = "budget-download"
    footer = "budget-footer"
    error = "budget-error"
    empty = "budget-empty"
    #: pattern types, one per dataset (or per change of its terms)
    export = "budget-export"
    insights = "budget-insights"
    gauge = "budget-gauge"
    terms = "budget-terms"
    terms_change = "budget-terms-change"

    def of_dataset(self, dataset: str) -> BudgetSection:
        """``budget-<dataset>-exhausted`` and ``budget-<dataset>-weakened``."""
        return BudgetSection(self.id(f"{dataset}-exhausted"), self.id(f"{dataset}-weakened"))


class Pipeline(Page):
    name = "pipeline"
    root = "pipeline-page"
    content = "pipeline-content"
    download = "pipeline-download"
    footer = "pipeline-footer"
    error = "pipeline-error"
    empty = "pipeline-empty"
    forbidden = "pipeline-forbidden"
    operator_banner = "pipeline-operator-banner"
    runs = "pipeline-runs"
    #: pattern types: the runs' "Download CSV", and a run's row ({"type": run, "run": id})
    export = "pipeline-export"
    insights = "pipeline-insights"
    run = "pipeline-run"


class Upload(Page):
    name = "upload"
    root = "upload-page"
    footer = "upload-footer"
    error = "upload-error"
    forbidden = "upload-forbidden"
    operator_banner = "upload-operator-banner"
    disabled = "upload-disabled"
    no_datasets = "upload-no-datasets"
    dataset = "upload-dataset"
    dataset_options = "upload-dataset-options"
    allowed = "upload-allowed"
    file = "upload-file"
    chosen = "upload-chosen"
    submit = "upload-submit"
    result = "upload-result"
    done = "upload-done"
    key = "upload-key"
    pending = "upload-pending"
    run = "upload-run"
    waiting = "upload-waiting"
    run_status = "upload-run-status"


class Planner(Page):
    name = "planner"
    root = "planner-page"
    content = "planner-content"
    footer = "planner-footer"
    error = "planner-error"
    empty = "planner-empty"
    upload = "planner-upload"
    #: a dcc.Store holding the dropped contract's text
    contract = "planner-contract"
    form = "planner-form"
    dataset = "planner-dataset"
    people = "planner-people"
    rows = "planner-rows"
    epsilon = "planner-epsilon"
    files = "planner-files"
    result = "planner-result"
    split = "planner-split"
    #: pattern type: one ε weight per analysis ({"type": weight, "name": its index})
    weight = "planner-weight"


SHELL = Shell()
OVERVIEW = Overview()
DATASET = Dataset()
BUDGET = Budget()
PIPELINE = Pipeline()
UPLOAD = Upload()
PLANNER = Planner()
#: the pages, in the order of their modules under dashboard/pages/
PAGES: tuple[Page, ...] = (OVERVIEW, DATASET, BUDGET, PIPELINE, UPLOAD, PLANNER)
#: pages whose data is exact operator information
OPERATOR_PAGES: tuple[Page, ...] = (PIPELINE, UPLOAD)
