"""`privacy-analytics contract ...`: draft a contract from a file, check a file against one.

    privacy-analytics contract infer FILE --dataset NAME          # draft YAML on stdout
    privacy-analytics contract check FILE --dataset NAME [--contract PATH] [--json]
    privacy-analytics contract schema                             # the contract JSON Schema

``check`` prints a counts-only report (rows, rule names, columns, counts) and exits 2 when
the file breaks its contract; the one-line reason goes to stderr via ``flows.cli``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from privacy.errors import ContractViolation


def register(sub: Any) -> None:  # argparse._SubParsersAction
    contract = sub.add_parser("contract", help="draft, check and describe dataset contracts")
    csub = contract.add_subparsers(dest="contract_command", metavar="ACTION", required=True)

    infer = csub.add_parser(
        "infer",
        help="draft a contract for FILE (YAML on stdout) for a human to review",
        description="Propose roles (identifiers, quasi-identifiers, dimensions, measures, "
        "time), types and masking for each column of FILE. No value from the file is copied "
        "into the draft.",
    )
    infer.add_argument("file", type=Path, metavar="FILE")
    infer.add_argument("--dataset", required=True, help="dataset name of the draft")
    infer.add_argument(
        "--sample-rows", type=int, default=10_000, help="rows to look at (default 10000)"
    )
    infer.set_defaults(handler=_infer)

    check = csub.add_parser(
        "check",
        help="validate FILE against its dataset contract; counts-only report on stdout",
        description="Exit 0 if FILE satisfies the contract, 2 if it breaks it.",
    )
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--dataset", required=True, help="dataset whose contract applies")
    check.add_argument(
        "--contract",
        type=Path,
        default=None,
        help="contract file (default: <PA_CONTRACTS_DIR>/<dataset>.yaml)",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=_check)

    schema = csub.add_parser("schema", help="print the contract JSON Schema (for editors)")
    schema.set_defaults(handler=_schema)


def _settings() -> Any:
    from flows.settings import Settings

    return Settings()


def _infer(args: argparse.Namespace) -> int:
    from flows.loading import load_file
    from privacy.inference import infer_contract

    settings = _settings()
    lf = load_file(args.file, max_bytes=settings.max_file_bytes)
    sys.stdout.write(infer_contract(lf, args.dataset, sample_rows=args.sample_rows))
    return 0


def _check(args: argparse.Namespace) -> int:
    from flows.loading import load_file
    from privacy.contract import find_contract, load_contract
    from privacy.validation import check

    settings = _settings()
    if args.contract is not None:
        contract = load_contract(args.contract, args.dataset)
        contracts_dir = args.contract.parent
    else:
        contract = find_contract(settings.contracts_dir, args.dataset)
        contracts_dir = settings.contracts_dir
    lf = load_file(args.file, csv_options=contract.csv, max_bytes=settings.max_file_bytes)
    report = check(lf, contract, expectations_dir=contracts_dir)
    if args.json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(_render(report))
    if not report.ok:
        raise ContractViolation(report.reason())
    return 0


def _render(report: Any) -> str:
    lines = [
        f"dataset: {report.dataset} (contract v{report.contract_version})",
        f"rows: {report.rows}",
        f"result: {'ok' if report.ok else 'REJECTED'}",
        "rules:",
    ]
    width = max((len(r.rule) for r in report.rules), default=4)
    for r in report.rules:
        if r.failed_count == 0:
            status = "ok"
        elif r.rejects:
            status = f"FAILED {r.failed_count}"
        else:
            status = f"{r.failed_count} set to null (the file goes on)"
        lines.append(f"  {r.rule:<{width}}  {r.column or '-'}: {status}")
    clamped = {m: n for m, n in report.clamped.items() if n}
    if clamped:
        lines.append("clamped to contract bounds (not a failure):")
        lines += [f"  {m}: {n} rows" for m, n in clamped.items()]
    return "\n".join(lines) + "\n"


def _schema(args: argparse.Namespace) -> int:
    from privacy.contract import contract_json_schema

    sys.stdout.write(json.dumps(contract_json_schema(), indent=2) + "\n")
    return 0
