"""`privacy-analytics budget`: each dataset's privacy budget, ledger and pinned terms; and
`budget set`, the one operator action that changes pinned terms (read-write, logged).

    privacy-analytics budget [--dataset NAME] [--limit N] [--json]
    privacy-analytics budget set NAME --reason "..." [--epsilon-cap X] [--delta-cap X]
        [--policy lifetime|window] [--window W] [--privacy-unit COLUMN | --rows-are-people]
        [--max-rows-per-unit N] [--force] [--actor NAME]
"""

from __future__ import annotations

import argparse
import getpass
import math
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from analytics.store import BudgetStatus, LedgerEntry, StoreNotCreated, TermsChange
from analytics.store.spend import WINDOWS
from analytics.store.terms import ROWS_ARE_PEOPLE, effect_of, format_number
from flows.cli_output import (
    EXIT_OK,
    dump,
    indented,
    listing_command,
    nothing_yet,
    num,
    open_reader,
    positive,
    table,
    when,
)
from flows.settings import Settings
from privacy.errors import TermsChangeRefused

#: the pinned terms `budget set` changes: its options, and `set_terms` keywords
TERMS = ("epsilon_cap", "delta_cap", "policy", "window", "privacy_unit", "rows_are_people",
         "max_rows_per_unit")


def register(sub: Any) -> None:  # argparse._SubParsersAction
    bud = listing_command(
        sub,
        "budget",
        _budget,
        dataset="only this dataset",
        limit=50,
        what="ledger entries and terms changes per dataset",
        help="print privacy budgets: cap, spent, remaining, the ledger and the pinned terms; "
        "'budget set' changes pinned terms",
        description="Print each dataset's privacy budget (or one with --dataset) in its "
        "current window: cap, spent (committed), reserved by runs in progress, remaining "
        "(cap - spent), the ledger entries, newest first, its pinned budget terms and their "
        "recent changes. 'privacy-analytics budget set DATASET ...' changes pinned terms.",
    )
    _register_budget_set(bud.add_subparsers(dest="budget_action", metavar="ACTION"))


def _register_budget_set(actions: Any) -> None:
    bset = actions.add_parser(
        "set",
        help="change a dataset's pinned budget terms (logged; weakening needs --force)",
        description="Change the budget terms pinned for DATASET at its first registration: "
        "ε cap, δ cap, policy, window, privacy unit, rows per unit. Lowering a cap is always "
        "allowed (below what is spent, the dataset is then exhausted); raising a cap and any "
        "policy, window or privacy unit change weaken the guarantee and need --force. Every "
        "change is appended to the dataset's terms log with --actor and --reason. Afterwards "
        "the pipeline accepts a contract with the new terms. Exit 0 when changed, 2 when "
        "refused (needs --force, unknown dataset, nothing to change), 1 on other errors.",
    )
    bset.add_argument("set_dataset", metavar="DATASET", help="dataset name")
    bset.add_argument("--epsilon-cap", type=_cap, default=None, metavar="X", help="new ε cap")
    bset.add_argument("--delta-cap", type=_delta, default=None, metavar="X",
                      help="new δ cap, in [0, 1)")
    bset.add_argument("--policy", choices=("lifetime", "window"), default=None,
                      help="lifetime: spend adds up forever; window: resets every window")
    bset.add_argument("--window", choices=WINDOWS, default=None,
                      help="calendar period of policy window")
    unit = bset.add_mutually_exclusive_group()
    unit.add_argument("--privacy-unit", default=None, metavar="COLUMN",
                      help="the column naming the person each row belongs to")
    unit.add_argument("--rows-are-people", action="store_true",
                      help="every row is a different person (one row per person)")
    bset.add_argument("--max-rows-per-unit", type=positive, default=None, metavar="N",
                      help="rows one person may contribute to a file")
    bset.add_argument("--reason", required=True,
                      help="why the terms change (required; kept in the terms log)")
    bset.add_argument("--force", action="store_true",
                      help="apply changes that weaken the guarantee")
    bset.add_argument("--actor", default=None, metavar="NAME",
                      help="who makes the change (default: the OS user name)")
    bset.set_defaults(handler=_budget_set)


def _number_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


def _cap(text: str) -> float:
    value = _number_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _delta(text: str) -> float:
    value = _number_arg(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be at least 0 and below 1")
    return value


# --------------------------------------------------------------------------- budget


def _unit_text(privacy_unit: str | None, max_rows: int | None) -> str:
    if max_rows is None:
        return "privacy unit not pinned yet (the next contract seen pins it)"
    if privacy_unit is None:
        return f"privacy unit: {ROWS_ARE_PEOPLE} (one row per person)"
    return f"privacy unit {privacy_unit}, at most {max_rows} row(s) per person in a file"


def _change_text(c: TermsChange) -> str:
    return c.new if c.old is None else f"{c.old} -> {c.new}"


def _change_effect(c: TermsChange) -> str:
    if c.old is None:
        return "pinned"
    effect = effect_of(c.setting, c.weakens)
    if c.weakens and "weakens" not in effect:
        effect += ": weakens the guarantee"
    return effect + (" (forced)" if c.forced else "")


def _entries(n: int) -> str:
    return f"{n} newest entr{'y' if n == 1 else 'ies'}"


def _status_lines(b: BudgetStatus) -> Iterator[str]:
    """The dataset's window, its cap, spent, reserved and remaining, and its pinned terms."""
    scope = (
        "lifetime" if b.window_start is None else f"window: {b.window} starting {when(b.window_start)}"
    )
    yield f"dataset {b.dataset} ({scope}){'  EXHAUSTED' if b.exhausted else ''}"
    spend = [
        ["ε", num(b.epsilon_cap), num(b.epsilon_spent), num(b.epsilon_reserved),
         num(b.epsilon_remaining)],
        ["δ", num(b.delta_cap), num(b.delta_spent), num(b.delta_reserved),
         num(b.delta_remaining)],
    ]  # fmt: skip
    if b.accounting == "zcdp":
        spend.insert(0, ["ρ", "-", num(b.rho_spent or 0.0), num(b.rho_reserved or 0.0), "-"])
    yield from indented(table(["", "cap", "spent", "reserved", "remaining"], spend))
    if b.accounting == "zcdp":
        yield ("    accounting zcdp: ρ adds up; ε is OpenDP's conversion of the ρ spent at the δ "
               f"the thresholds leave; ρ {num(b.rho_per_release or 0.0)} per release")
    if b.releases_remaining is not None:
        line = f"    releases remaining: {b.releases_remaining} at the current size"
        if b.runs_out_on is not None and b.releases_per_day:
            line += (f"; at {b.releases_per_day:.3g} a day so far, the budget runs out about "
                     f"{b.runs_out_on.isoformat()}")
        yield line
    policy = b.policy if b.window is None else f"{b.policy} ({b.window})"
    yield (
        f"    pinned terms: ε cap {format_number(b.epsilon_cap)}, δ cap "
        f"{format_number(b.delta_cap)}, policy {policy}, "
        f"{_unit_text(b.privacy_unit, b.max_rows_per_unit)}"
    )


def _ledger_lines(entries: list[LedgerEntry]) -> Iterator[str]:
    yield f"    ledger ({_entries(len(entries))}):"
    rho = any(e.rho is not None for e in entries)
    rows = [
        [str(e.id), e.state, *([num(e.rho or 0.0)] if rho else []), num(e.epsilon), num(e.delta),
         when(e.created_at), e.run_id, f"{e.key} ({e.etag})"]
        for e in entries
    ]  # fmt: skip
    head = ["id", "state", *(["ρ", "ε alone"] if rho else ["ε"]), "δ", "time", "run", "object"]
    yield from indented(table(head, rows))


def _terms_log_lines(changes: list[TermsChange]) -> Iterator[str]:
    yield f"    pinned terms log ({_entries(len(changes))}):"
    rows = [
        [str(c.id), when(c.changed_at), c.setting, _change_text(c), _change_effect(c), c.actor,
         c.reason]
        for c in changes
    ]  # fmt: skip
    header = ["id", "time", "setting", "value", "effect", "actor", "reason"]
    yield from indented(table(header, rows))


def _budget(args: argparse.Namespace) -> int:
    try:
        with open_reader() as store:
            names = [args.dataset] if args.dataset else [d.name for d in store.datasets()]
            statuses = [
                (
                    store.budget(n),
                    store.ledger(n, limit=args.limit),
                    store.terms_changes(n, limit=args.limit),
                )
                for n in names
            ]
    except StoreNotCreated:
        return nothing_yet(args, {"datasets": []})
    if args.json:
        dump({"datasets": [
            {**asdict(b), "rows_are_people": b.rows_are_people,
             "ledger": [asdict(e) for e in entries],
             "terms_changes": [asdict(c) for c in changes]}
            for b, entries, changes in statuses
        ]})  # fmt: skip
        return EXIT_OK
    if not statuses:
        print("no datasets yet: a dataset appears after its first file is processed")
        return EXIT_OK
    for i, (b, entries, changes) in enumerate(statuses):
        if i:
            print()
        for lines in (_status_lines(b), _ledger_lines(entries), _terms_log_lines(changes)):
            for line in lines:
                print(line)
    return EXIT_OK


# --------------------------------------------------------------------------- budget set


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "unknown"


def _set_terms(args: argparse.Namespace) -> list[TermsChange]:
    from analytics.store import AggregateStore  # the writer (and Alembic) only when needed

    try:
        store = AggregateStore(Settings().aggregate_store_url, create=False)
    except StoreNotCreated:
        raise TermsChangeRefused(
            f"no dataset '{args.set_dataset}': nothing has been published yet (the aggregate "
            "store does not exist); a dataset appears after its first file is processed"
        ) from None
    with store:
        return store.set_terms(
            args.set_dataset,
            reason=args.reason,
            actor=args.actor if args.actor is not None else _os_user(),
            force=args.force,
            **{term: getattr(args, term) for term in TERMS},
        )


def _budget_set(args: argparse.Namespace) -> int:
    dataset = args.set_dataset
    changes = _set_terms(args)
    first, last = changes[0], changes[-1]
    entries = f"entry {first.id}" if first is last else f"entries {first.id}-{last.id}"
    print(
        f"dataset {dataset}: pinned budget terms changed by {first.actor} "
        f"({len(changes)} change{'' if first is last else 's'}, terms log {entries})"
    )
    rows = [[c.setting, _change_text(c), _change_effect(c)] for c in changes]
    for line in indented(table(["setting", "old -> new", "effect"], rows)):
        print(line)
    weakening = [c.setting for c in changes if c.weakens]
    if weakening:
        print(f"these changes weaken the guarantee: {', '.join(weakening)}")
    else:
        print("none of these changes weakens the guarantee")
    with open_reader() as reader:
        b = reader.budget(dataset)
    print(
        f"now: ε cap {format_number(b.epsilon_cap)}, spent {num(b.epsilon_spent)}, remaining "
        f"{num(b.epsilon_remaining)}{'  EXHAUSTED' if b.exhausted else ''}; contracts of "
        f"{dataset} must carry the new terms"
    )
    return EXIT_OK
