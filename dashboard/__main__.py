"""``python -m dashboard``: serve the dashboard with settings from PA_DASHBOARD_* variables."""

from __future__ import annotations

import logging
import sys

from dashboard.app import serve
from dashboard.settings import DashboardSettings
from privacy.errors import PipelineError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        serve(DashboardSettings())
    except PipelineError as exc:
        logging.getLogger("dashboard").error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
