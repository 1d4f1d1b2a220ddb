"""Object key layout and validation.

    landing/<dataset>/<file>          raw files as dropped
    quarantine/<dataset>/<file>       refused files, moved intact
    quarantine/<dataset>/<file>.report.json   counts-only reason
    masked/<dataset>/<file stem>-<etag8>.parquet   masked output (k-anonymous), for downstream use
    masked/<dataset>/<file stem>-<etag8>.report.json   counts-only privacy report
    release-input/<dataset>/<file stem>-<etag8>.parquet   what the DP releases read: masked
                                      but not suppressed (pipeline only; see privacy.masking)

Keys are validated before any I/O: no `..`, no absolute paths, a safe character set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from privacy.errors import InvalidKey
from privacy.names import check_dataset, check_filename

AREAS = ("landing", "quarantine", "masked", "release-input")
def _show(value: str) -> str:
    # keys are metadata chosen by the uploader, not row values; still keep them short
    text = value if len(value) <= 80 else value[:77] + "..."
    return repr(text)


@dataclass(frozen=True)
class LandingKey:
    dataset: str
    filename: str

    @property
    def key(self) -> str:
        return f"landing/{self.dataset}/{self.filename}"

    @property
    def quarantine_key(self) -> str:
        return f"quarantine/{self.dataset}/{self.filename}"

    @property
    def quarantine_report_key(self) -> str:
        return f"quarantine/{self.dataset}/{self.filename}.report.json"

    def masked_key(self, etag: str) -> str:
        return f"masked/{self.dataset}/{self.stem}-{_short(etag)}.parquet"

    def release_input_key(self, etag: str) -> str:
        return f"release-input/{self.dataset}/{self.stem}-{_short(etag)}.parquet"

    def masked_report_key(self, etag: str) -> str:
        return f"masked/{self.dataset}/{self.stem}-{_short(etag)}.report.json"

    @property
    def stem(self) -> str:
        return PurePosixPath(self.filename).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.filename).suffix.lower()


def _short(etag: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9]", "", etag)
    return clean[:12] or "0"


def parse_landing_key(key: str) -> LandingKey:
    """Split and check ``landing/<dataset>/<file>``; anything else raises InvalidKey."""
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKey(f"object key {_show(key)} is not allowed: absolute or unsafe path")
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "landing":
        raise InvalidKey(
            f"object key {_show(key)} is not of the form landing/<dataset>/<file>: drop files "
            "into a dataset folder under landing/"
        )
    return LandingKey(check_dataset(parts[1]), check_filename(parts[2]))


def landing_key(dataset: str, filename: str) -> LandingKey:
    return LandingKey(check_dataset(dataset), check_filename(PurePosixPath(filename).name))
