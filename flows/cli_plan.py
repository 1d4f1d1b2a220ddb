"""`privacy-analytics plan CONTRACT --people N`: what a contract will buy, before any file.

    privacy-analytics plan contracts/employees.yaml --people 2000
    privacy-analytics plan contracts/employees.yaml --people 2000 --rows-per-person 5 \\
        --expect efficiency=1.1 --target "summary=±5%" --json

Reads the contract and the command line only (``analytics.planner``): no data file, no
store, no settings. Exit 0; 2 when a ``--target`` is out of reach within the ε cap (the
plan is printed, the reason goes to stderr); 1 for other errors via ``flows.cli``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flows.cli_output import dump, indented, positive, table

EXIT_OK, EXIT_UNREACHABLE = 0, 2


def register(sub: Any) -> None:  # argparse._SubParsersAction
    p = sub.add_parser(
        "plan",
        help="predict what a contract's releases will show (interval widths, ε, releases)",
        description="From the contract and these numbers only (never a data file): every "
        "analysis's expected 95%% interval half-width, the ε per release and its split, and "
        "how many releases the ε cap allows. --target solves for the ε per release that "
        "reaches a half-width.",
    )
    p.add_argument("contract", type=Path, metavar="CONTRACT", help="the contract YAML file")
    p.add_argument("--people", type=positive, required=True, help="people in one file")
    p.add_argument(
        "--rows-per-person", type=positive, default=None, metavar="R",
        help="rows of each person (default: max_rows_per_unit, or 1 when rows_are_people)",
    )  # fmt: skip
    p.add_argument(
        "--expect", nargs="+", action="extend", default=[], metavar="MEASURE=VALUE",
        help="a measure's expected average (default: the midpoint of its bounds)",
    )  # fmt: skip
    p.add_argument(
        "--target", nargs="+", action="extend", default=[], metavar="ANALYSIS=±X%",
        help="solve for the ε per release giving ANALYSIS[.METRIC] a half-width of X%% "
        "(relative) or X (absolute), e.g. 'summary=±5%%'",
    )  # fmt: skip
    p.add_argument(
        "--files", type=positive, default=None, metavar="F",
        help="also plan a dataset release over F files of these people (each person's rows "
        "accumulate: F x R, of which release.max_rows_per_unit are kept)",
    )  # fmt: skip
    p.add_argument(
        "--releases", type=positive, default=None, metavar="N",
        help="compare pure-ε and zCDP accounting over N releases under the cap (default: "
        "the releases the cap allows at the contract's ε per release)",
    )  # fmt: skip
    p.add_argument("--runs", type=positive, default=5, help="engine runs to take the median of (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=_plan)


def _plan(args: argparse.Namespace) -> int:
    from analytics import planner
    from privacy.contract import load_contract

    expect = dict(parse_expect(e) for e in args.expect)
    targets = [parse_target(t) for t in args.target]
    contract = load_contract(args.contract)
    a = planner.assume(contract, args.people, args.rows_per_person, expect, args.runs)
    plan = planner.predict(contract, a)
    for t in targets:
        planner.target_rows(plan, t)  # an unknown analysis fails before any search
    solved = [planner.solve(contract, a, t) for t in targets]
    sources = {m: _source(contract, a, m, set(expect)) for m in a.expect}
    ds = None
    if args.files:
        from analytics.dataset_plan import plan_dataset_release

        ds = plan_dataset_release(contract, args.people, args.files, args.rows_per_person,
                                  expect, args.runs)
    from analytics.dataset_plan import compare_accounting

    b = contract.budget
    acc = compare_accounting(b.epsilon_cap, b.delta, args.releases or plan.releases_allowed)
    if args.json:
        dump({**_as_dict(plan, sources), "targets": [_solved(s) for s in solved],
              "dataset_release": None if ds is None else _dataset_dict(ds),
              "accounting": {**asdict(acc), "better": acc.better}})
    else:
        lines = list(_render(plan, sources, solved))
        if ds is not None:
            lines += ["", *_render_dataset(ds)]
        lines += ["", *_render_accounting(acc)]
        sys.stdout.write("\n".join(lines) + "\n")
    missed = [s for s in solved if not s.reached]
    for s in missed:
        print(f"unreachable: {_target_line(s)}", file=sys.stderr)
    return EXIT_UNREACHABLE if missed else EXIT_OK


def parse_target(text: str) -> Any:
    """``ANALYSIS[.METRIC]=±X%`` (relative) or ``=±X`` (absolute); ``+-`` or no sign too."""
    from analytics.planner import PlanError, Target

    name, sep, want = text.partition("=")
    want = want.strip().removeprefix("±").removeprefix("+-").strip()
    value = _number(want.removesuffix("%"))
    if not sep or not name.strip() or not math.isfinite(value) or value <= 0:
        raise PlanError(f"--target '{text}': write ANALYSIS=±X% or ANALYSIS=±X with X > 0")
    return Target(name.strip(), value, want.endswith("%"))


def parse_expect(text: str) -> tuple[str, float]:
    """``MEASURE=VALUE``: the value a measure is expected to average."""
    from analytics.planner import PlanError

    name, sep, raw = text.partition("=")
    value = _number(raw)
    if not sep or not name.strip() or not math.isfinite(value):
        raise PlanError(f"--expect '{text}': write MEASURE=NUMBER")
    return name.strip(), value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _source(contract: Any, a: Any, m: str, given: set[str]) -> str:
    if m in a.unpredictable:
        return "not predicted: bounds auto without within"
    if m in given:
        return "--expect"
    return "midpoint of within" if contract.columns[m].auto_bounds else "midpoint of bounds"


# --------------------------------------------------------------------------- text


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _width(x: float, relative: bool) -> str:
    return f"±{x * 100:.4g}%" if relative else f"±{x:.4g}"


def _label(v: Any) -> str:
    parts = [str(v.metric), v.column or "", f"per {v.per}" if v.per else ""]
    return " ".join(p for p in parts if p)


def _render(plan: Any, sources: dict[str, str], solved: list[Any]) -> Iterator[str]:
    a, c, b = plan.assumptions, plan.contract, plan.contract.budget
    rows = a.people * a.rows_per_person
    each = f"{a.rows_per_person} row" + ("s" if a.rows_per_person != 1 else "")
    yield f"dataset {c.dataset} (contract v{c.version}): a file of {a.people} people x {each} ({rows} rows)"
    if sources:
        yield "expected values: " + ", ".join(
            f"{m} {a.expect[m]:g} ({s})" if not s.startswith("not") else f"{m} ({s})"
            for m, s in sources.items()
        )
    yield from plan.notes
    yield f"95% intervals: median half-width over {a.runs} engine runs on a synthetic file of that shape"
    yield ""
    shown = [v for v in plan.values if v.half_width is not None]
    cells = [[v.analysis, _label(v), _num(v.expected), _num(v.half_width),
              "-" if v.relative is None else f"{v.relative * 100:.3g}%"] for v in shown]  # fmt: skip
    yield from table(["analysis", "value", "expected", "±", "relative ±"], cells)
    missing = [v for v in plan.values if v.half_width is None]
    if missing:
        yield "not predicted:"
        yield from indented(f"{v.analysis} {_label(v)}: {v.note}" for v in missing)
    yield ""
    unit = _unit(b)
    yield f"{unit} per release: {plan.epsilon:g} (δ {plan.delta:g}), split over the analyses:"
    yield from indented(table(["analysis", unit, "δ"], [
        [n, f"{e:.4g}" if e else "0 (post-processing)", f"{d:g}"] for n, e, d in plan.split
    ]))  # fmt: skip
    per = f" per {b.window}" if b.policy == "window" else ""
    how = "; zCDP: ρ adds up, converted by OpenDP" if b.accounting == "zcdp" else ""
    yield (f"budget: ε cap {b.epsilon_cap:g}{per} (policy {b.policy}{how}): "
           f"{plan.releases_allowed} releases{per} at {unit} {plan.epsilon:g} each")  # fmt: skip
    yield from (f"target {_target_line(s, per, unit)}" for s in solved)


def _render_dataset(ds: Any) -> Iterator[str]:
    plan, c = ds.plan, ds.plan.contract
    yield (f"dataset release over {ds.files} files ({c.files}): each person {ds.rows_per_person} "
           f"rows, at most {ds.bound} kept (release.max_rows_per_unit)"
           + (f": about {ds.rows_left_out:.0%} of rows left out" if ds.rows_left_out else
              ": none left out"))  # fmt: skip
    cells = [[v.analysis, _label(v), _num(v.expected), _num(v.half_width),
              "-" if v.relative is None else f"{v.relative * 100:.3g}%"]
             for v in plan.values if v.half_width is not None]  # fmt: skip
    yield from table(["analysis", "value", "expected", "±", "relative ±"], cells)
    line = (f"{_unit(c.budget)} per dataset release: {plan.epsilon:g}; the cap allows "
            f"{plan.releases_allowed}")
    if ds.per_year:
        line += (f"; release.schedule fires {ds.per_year} times a year, so the cap lasts "
                 f"{ds.years_of_budget:.2g} years of dataset releases (a release with no new "
                 "file spends nothing)")
    yield line


def _render_accounting(acc: Any) -> Iterator[str]:
    head = (f"accounting over {acc.releases} releases under the cap ε {acc.epsilon_cap:g}, "
            f"δ {acc.delta_cap:g}: pure ε gives each release Laplace noise of standard "
            f"deviation {acc.laplace_sd:.3g}× its sensitivity")
    if acc.gaussian_sd is None:
        yield head + "; zCDP needs δ > 0"
        return
    ratio = max(acc.laplace_sd, acc.gaussian_sd) / min(acc.laplace_sd, acc.gaussian_sd)
    yield (head + f"; zCDP (Gaussian noise, ρ {acc.rho_per_release:.3g} each, the δ cap spent "
           f"by OpenDP's conversion) {acc.gaussian_sd:.3g}×: "
           + (f"zCDP gives {ratio:.2g}× less noise" if acc.better == "zcdp" else
              f"pure ε gives {ratio:.2g}× less noise"))
    from analytics.planner import round_sig
    from privacy.budget import zcdp_rho_for

    rho = round_sig(zcdp_rho_for(acc.epsilon_cap, acc.delta_cap / 2) / acc.releases, up=False)
    yield (f"to release under zCDP: budget: {{accounting: zcdp, rho_per_release: "
           f"{rho:g}}} spreads the cap over {acc.releases} releases (half the δ cap "
           "for OpenDP's conversion, half for thresholds, as the ledger counts it)")


def _dataset_dict(ds: Any) -> dict[str, Any]:
    plan = ds.plan
    return {"files": ds.files, "rows_per_person": ds.rows_per_person, "bound": ds.bound,
            "rows_left_out": ds.rows_left_out, "epsilon": plan.epsilon,
            "releases_allowed": plan.releases_allowed, "per_year": ds.per_year,
            "values": [{**asdict(v), "relative": v.relative} for v in plan.values]}


def _unit(budget: Any) -> str:
    """What a release spends: ε, or ρ under zCDP accounting."""
    return "ρ" if budget.accounting == "zcdp" else "ε"


def _target_line(s: Any, per: str = "", unit: str = "ε") -> str:
    t = s.target
    head = f"{t.analysis}={_width(t.value / 100 if t.relative else t.value, t.relative)}"
    if not s.reached:
        return (f"{head}: out of reach; the best {unit} tried, the cap {s.epsilon:g}, gives "
                f"{_width(s.half_width, t.relative)}")  # fmt: skip
    line = f"{head}: {unit} {s.epsilon:g} per release reaches {_width(s.half_width, t.relative)}"
    if s.below is not None:
        line += f" ({unit} {s.below:g} gives {_width(s.below_half_width, t.relative)})"
    return line + f"; the cap then allows {s.releases_allowed} releases{per}"


def _as_dict(plan: Any, sources: dict[str, str]) -> dict[str, Any]:
    b, a = plan.contract.budget, plan.assumptions
    return {
        "dataset": plan.contract.dataset, "contract_version": plan.contract.version,
        "people": a.people, "rows_per_person": a.rows_per_person, "runs": a.runs,
        "expect": a.expect, "expect_source": sources,
        "values": [{**asdict(v), "relative": v.relative} for v in plan.values],
        "epsilon_per_release": plan.epsilon, "delta_per_release": plan.delta,
        "split": [{"analysis": n, "epsilon": e, "delta": d} for n, e, d in plan.split],
        "budget": {"epsilon_cap": b.epsilon_cap, "policy": b.policy, "window": b.window,
                   "releases_allowed": plan.releases_allowed},
        "notes": plan.notes,
    }  # fmt: skip


def _solved(s: Any) -> dict[str, Any]:
    t = s.target
    return {"target": t.analysis, "value": t.value, "relative": t.relative,
            "reached": s.reached, "epsilon": s.epsilon, "half_width": s.half_width,
            "below": s.below, "below_half_width": s.below_half_width,
            "releases_allowed": s.releases_allowed}  # fmt: skip
