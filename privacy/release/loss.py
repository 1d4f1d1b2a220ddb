"""How a file's privacy loss (ε, or ρ under zCDP) is split over its query specs.

>>> from privacy.budget import PrivacyLoss, ZCDPLoss
>>> from privacy.release.aggregates import count_agg
>>> from privacy.release.queries import QuerySpec
>>> plan = LossPlan(PrivacyLoss(1.0, 1e-6), [QuerySpec("a", (count_agg(weight=3.0),)),
...                                          QuerySpec("b", (count_agg(),), by=("team",))])
>>> plan.share(plan.specs[0]), plan.share(plan.specs[1])
(PrivacyLoss(epsilon=0.75, delta=0.0), PrivacyLoss(epsilon=0.25, delta=1e-06))
>>> LossPlan(ZCDPLoss(0.02), plan.specs).share(plan.specs[0])  # zCDP: ρ split the same way
ZCDPLoss(rho=0.015, delta=0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from privacy.budget import Loss
from privacy.release.queries import QuerySpec


@dataclass
class LossPlan:
    """Splits a per-file loss: ε (ρ) over queries in proportion to their aggregates' weights,
    δ evenly over the thresholded queries."""

    total: Loss
    specs: list[QuerySpec] = field(default_factory=list)

    def share(self, spec: QuerySpec) -> Loss:
        weight = sum(s.weight for s in self.specs) or 1.0
        n_thr = sum(1 for s in self.specs if s.thresholded)
        delta = self.total.delta / n_thr if spec.thresholded and n_thr else 0.0
        return self.total.part(spec.weight / weight, delta)
