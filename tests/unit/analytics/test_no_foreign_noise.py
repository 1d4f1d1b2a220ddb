"""Invariant 4: noise comes from OpenDP only; privacy/ and analytics/ draw no randomness."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

FORBIDDEN = [
    r"\bimport\s+random\b",
    r"\bfrom\s+random\s+import\b",
    r"\bnumpy\.random\b",
    r"\bnp\.random\b",
    r"\bfrom\s+numpy\s+import\s+random\b",
    r"\bfrom\s+numpy\.random\b",
    r"\bimport\s+secrets\b",
    r"\bfrom\s+secrets\s+import\b",
    r"\bsecrets\.",
    r"\btorch\.rand",
    r"\bscipy\.stats\b.*\.rvs\(",
    r"\.rvs\(",
    r"\bos\.urandom\b",
    r"\bdefault_rng\b",
    r"\bdiffprivlib\b",
    r"\.sample\(",
    r"\bpl\.Expr\.shuffle\b",
]


def _sources() -> list[Path]:
    files = [p for d in ("privacy", "analytics") for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) >= 5
    return files


def test_no_randomness_outside_opendp_in_privacy_and_analytics() -> None:
    offenders = []
    for path in _sources():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pattern in FORBIDDEN:
                if re.search(pattern, line):
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not offenders, "randomness outside OpenDP:\n" + "\n".join(offenders)


def test_the_scan_would_catch_an_offender(tmp_path: Path) -> None:
    sample = "import numpy as np\nnoise = np.random.laplace(0, 1)\nimport random\n"
    hits = [p for p in FORBIDDEN for line in sample.splitlines() if re.search(p, line)]
    assert len(hits) >= 2


def test_releases_go_through_opendp() -> None:
    text = (ROOT / "privacy" / "release" / "engine.py").read_text(encoding="utf-8")
    assert "make_private_lazyframe" in text
    assert ".map(self._d_in)" in text  # every measurement's loss comes from its privacy map
