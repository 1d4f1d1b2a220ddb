"""Where solved noise scales (and thresholds) are kept between files.

>>> cache = MemoryCalibrationCache()
>>> cache.put("fingerprint|query|scale:len", 2)
>>> cache.get("fingerprint|query|scale:len"), len(cache)
(2.0, 1)
"""

from __future__ import annotations

from typing import Protocol


class CalibrationCache(Protocol):
    """Where solved noise scales (and thresholds) are kept between files.

    Keys name the contract fingerprint, the query and the loss share, so a changed contract
    never reuses an old scale. Values are checked against the privacy map before use, so a
    wrong value costs a recalibration, never privacy.
    """

    def get(self, key: str) -> float | None: ...

    def put(self, key: str, scale: float) -> None: ...


class MemoryCalibrationCache:
    """A dict-backed :class:`CalibrationCache` (tests, one process)."""

    def __init__(self) -> None:
        self._values: dict[str, float] = {}

    def get(self, key: str) -> float | None:
        return self._values.get(key)

    def put(self, key: str, scale: float) -> None:
        self._values[key] = float(scale)

    def __len__(self) -> int:
        return len(self._values)
