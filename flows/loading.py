"""Readers: a file on disk becomes a polars LazyFrame, with size, format and encoding guards.

CSV, JSON and JSON Lines are read with every value as text (a JSON number becomes its
digits, a nested value its JSON text); the contract's types are applied later by
``privacy.validation.conform`` so that a bad value is counted and set to null, not fatal:
no row's value decides another row's type or the fate of the file. Every refusal is an
``InputRejected`` whose message holds counts, column names and hints, never a value: polars'
own error messages can quote cell contents, so they are never passed on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from pathlib import Path

import polars as pl

from privacy.contract import CsvOptions
from privacy.errors import InputRejected
from privacy.names import FORMAT_BY_SUFFIX

SNIFF_BYTES = 64 * 1024
_PY_CODEC = {
    "utf8": "utf-8",
    "utf8-lossy": "utf-8",
    "latin1": "latin-1",
    "cp1252": "cp1252",
    "utf16": "utf-16",
}


def format_of(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    fmt = FORMAT_BY_SUFFIX.get(suffix)
    if fmt is None:
        raise InputRejected(
            f"file type '{suffix or '(none)'}' is not supported: use .csv, .tsv, .json, "
            ".jsonl/.ndjson or .parquet"
        )
    return fmt


def load_file(
    path: Path,
    *,
    csv_options: CsvOptions | None = None,
    max_bytes: int | None = None,
    name: str | None = None,
) -> pl.LazyFrame:
    """Open ``path`` lazily. ``name`` (default: the path's name) picks the format by suffix."""
    name = name or path.name
    fmt = format_of(name)
    opts = csv_options or CsvOptions()
    if name.lower().endswith(".tsv") and opts.delimiter == ",":
        opts = CsvOptions(delimiter="\t", encoding=opts.encoding)
    size = path.stat().st_size
    if size == 0:
        raise InputRejected("the file is empty (0 bytes)")
    if max_bytes is not None and size > max_bytes:
        raise InputRejected(
            f"the file has {size} bytes, over the limit of {max_bytes} (PA_MAX_FILE_BYTES)"
        )
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if fmt == "parquet":
        if not head.startswith(b"PAR1"):
            raise InputRejected("the file is named .parquet but is not a Parquet file")
        return _guard_schema(pl.scan_parquet(path))
    _check_text(head, fmt, opts)
    if fmt == "csv":
        return _load_csv(path, head, opts)
    if fmt == "jsonl":
        return _load_jsonl(path)
    return _load_json(path)


def _check_text(head: bytes, fmt: str, opts: CsvOptions) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and opts.encoding != "utf16":
        raise InputRejected(
            "the file is UTF-16 encoded: save it as UTF-8, or set csv.encoding: utf16 in the contract"
        )
    if opts.encoding == "utf16":
        return
    if b"\x00" in head:
        raise InputRejected(
            f"the file looks binary (NUL bytes in the first {len(head)} bytes), not {fmt.upper()} text"
        )
    if opts.encoding == "utf8":
        try:
            # a multi-byte character may be cut at the sniff boundary: ignore the last 3 bytes
            head[: len(head) - 3 if len(head) == SNIFF_BYTES else None].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputRejected(
                f"the file is not valid UTF-8 (first bad byte at offset {exc.start}): save it as "
                "UTF-8, or declare csv.encoding (latin1, cp1252, utf16) in the contract"
            ) from None


def _header_fields(head: bytes, opts: CsvOptions) -> list[str]:
    text = head.decode(_PY_CODEC[opts.encoding], errors="replace").lstrip("\ufeff")
    line = text.splitlines()[0] if text else ""
    return next(csv.reader([line], delimiter=opts.delimiter), [])


def _load_csv(path: Path, head: bytes, opts: CsvOptions) -> pl.LazyFrame:
    fields = _header_fields(head, opts)
    if not fields or all(not f.strip() for f in fields):
        raise InputRejected("the CSV file has no header row (first line is empty)")
    if len(fields) == 1:
        line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
        for other, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'"), (",", "','")):
            if other != opts.delimiter and line.count(other) >= 1:
                raise InputRejected(
                    f"the header has one column with the delimiter {opts.delimiter!r} but "
                    f"contains {label}: set csv.delimiter in the contract or re-export the file"
                )
    blank = [i + 1 for i, f in enumerate(fields) if not f.strip()]
    if blank:
        raise InputRejected(
            f"the header has {len(blank)} empty column name(s) (positions {blank[:5]})"
        )
    dupes = sorted(n for n, c in Counter(f.strip() for f in fields).items() if c > 1)
    if dupes:
        raise InputRejected(f"the header repeats column name(s): {', '.join(dupes[:10])}")
    if opts.encoding in ("utf8", "utf8-lossy"):
        lf = pl.scan_csv(
            path,
            separator=opts.delimiter,
            infer_schema=False,
            encoding=opts.encoding,
            missing_utf8_is_empty_string=False,
            truncate_ragged_lines=False,
        )
    else:
        # rare legacy encodings: transcode in memory (bounded by PA_MAX_FILE_BYTES)
        text = path.read_bytes().decode(_PY_CODEC[opts.encoding], errors="strict")
        lf = pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            separator=opts.delimiter,
            infer_schema=False,
            truncate_ragged_lines=False,
        ).lazy()
    renames = {f: f.strip().lstrip("\ufeff") for f in fields if f != f.strip().lstrip("\ufeff")}
    if renames:
        lf = lf.rename({k: v for k, v in renames.items()}, strict=False)
    return lf


def _load_json(path: Path) -> pl.LazyFrame:
    try:
        raw = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputRejected(f"the file is not valid JSON{where}") from None
    if isinstance(raw, dict):
        # accept {"rows": [...]} / {"data": [...]} wrappers with a single list member
        lists = [v for v in raw.values() if isinstance(v, list)]
        if len(lists) == 1:
            raw = lists[0]
    if not isinstance(raw, list):
        raise InputRejected("a .json file must hold an array of objects, one per row")
    if not raw:
        raise InputRejected("the JSON array is empty (0 rows)")
    bad = sum(1 for r in raw if not isinstance(r, dict))
    if bad:
        raise InputRejected(f"{bad} of {len(raw)} JSON array items are not objects")
    names: dict[str, None] = {}
    for r in raw:
        names.update(dict.fromkeys(r))
    columns = {n: [_json_text(r.get(n)) for r in raw] for n in names}
    return pl.DataFrame(columns, schema=dict.fromkeys(names, pl.String)).lazy()


def _json_text(value: object) -> str | None:
    """One JSON value as the text a CSV cell would hold (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # nested: unreadable as any other type


def _load_jsonl(path: Path) -> pl.LazyFrame:
    """JSON Lines, every value as text: the column names come from a scan of every line
    (a key seen in one line only is still a column), then the values are read as text."""
    try:
        names = pl.scan_ndjson(path, infer_schema_length=None).collect_schema().names()
    except pl.exceptions.PolarsError as exc:
        raise InputRejected(f"the file cannot be read ({type(exc).__name__})") from None
    return _guard_schema(pl.scan_ndjson(path, schema=dict.fromkeys(names, pl.String)))


def _guard_schema(lf: pl.LazyFrame) -> pl.LazyFrame:
    try:
        schema = lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise InputRejected(f"the file cannot be read ({type(exc).__name__})") from None
    nested = [
        n for n, t in schema.items() if isinstance(t, pl.Struct | pl.List | pl.Array | pl.Object)
    ]
    if nested:
        raise InputRejected(
            f"column(s) {', '.join(nested[:10])} hold nested values; flatten them to one value per cell"
        )
    return lf
