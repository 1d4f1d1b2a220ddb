"""The DP engine on OpenDP: query specs planned from a contract, calibrated once, reused.

``analytics`` says *what* to release as ``QuerySpec`` values (``Agg`` aggregates sharing
one grouping, each with a relative weight); ``prepare_frame`` reduces the masked rows to
what the queries read; ``ReleaseEngine`` turns each spec into one OpenDP measurement and
releases it within its ``LossPlan`` share. Noise comes from OpenDP only. See
docs/architecture.md, "The DP engine".

>>> spec = QuerySpec("hours", (count_agg(), int_sum_agg("hours", (0, 60), "sum:hours")))
>>> [a.kind for a in spec.aggs], spec.thresholded
(['len', 'sum'], False)
"""

from privacy.release.aggregates import (
    FIXED_POINT_RANGE,
    LEN,
    Agg,
    count_agg,
    fixed_point,
    int_sum_agg,
    quantile_agg,
)
from privacy.release.calibration import CalibrationCache, MemoryCalibrationCache
from privacy.release.engine import ReleaseEngine
from privacy.release.loss import LossPlan
from privacy.release.noise import Noise
from privacy.release.prepared import SPILL_ROWS, UNIT, PreparedFrame, prepare_frame
from privacy.release.queries import EXCESS, OVER, ROWS, SHARE, QueryResult, QuerySpec, Resolved

__all__ = [
    "EXCESS",
    "FIXED_POINT_RANGE",
    "LEN",
    "OVER",
    "ROWS",
    "SHARE",
    "SPILL_ROWS",
    "UNIT",
    "Agg",
    "CalibrationCache",
    "LossPlan",
    "MemoryCalibrationCache",
    "Noise",
    "PreparedFrame",
    "QueryResult",
    "QuerySpec",
    "ReleaseEngine",
    "Resolved",
    "count_agg",
    "fixed_point",
    "int_sum_agg",
    "prepare_frame",
    "quantile_agg",
]
