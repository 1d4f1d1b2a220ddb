"""OpenDP's prelude with its ``contrib`` features on: how this package reaches OpenDP.

Imported on first use, so importing the package stays cheap.

>>> opendp().max_divergence()
MaxDivergence
"""

from __future__ import annotations

from typing import Any


def opendp() -> Any:
    """``opendp.prelude``, with the ``contrib`` features enabled."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp
