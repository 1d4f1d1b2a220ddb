"""The analyses: a contract's analyses become OpenDP queries, then published values.

    release_analyses(masked, contract, loss, cache=cache) -> ReleaseSet

One module per kind (``summary``, ``distribution``, ``comparison``, ``trend``, ``forecast``,
``correlation``), each registered below; ``quality`` discloses what shaped the numbers;
``builder`` merges the queries; ``plan`` resolves and runs them.

    >>> sorted(kinds())
    ['comparison', 'correlation', 'distribution', 'forecast', 'summary', 'trend']
"""

from __future__ import annotations

from analytics.analyses import comparison, correlation, distribution, forecast, summary, trend
from analytics.analyses.plan import (
    AutoBoundsPlan,
    ReleasePlan,
    opendp_input,
    plan_analyses,
    plan_release,
    release_analyses,
)
from analytics.analyses.quality import QUALITY_SHARE
from analytics.analyses.registry import kinds, register

register("summary", summary.plan)
register("distribution", distribution.plan)
register("comparison", comparison.plan)
register("trend", trend.plan)
register("forecast", forecast.plan)
register("correlation", correlation.plan)

__all__ = [
    "QUALITY_SHARE",
    "AutoBoundsPlan",
    "ReleasePlan",
    "kinds",
    "opendp_input",
    "plan_analyses",
    "plan_release",
    "register",
    "release_analyses",
]
