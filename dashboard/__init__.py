"""The Dash dashboard: reads DP aggregates from the aggregate store, read-only, and nothing
else (the upload page's write-only uploader aside).

    from dashboard import DashboardSettings, create_app, serve
    serve(DashboardSettings())            # blocks; or: python -m dashboard
    server = make_server(DashboardSettings(port=0))   # for a thread: serve_forever/shutdown
"""

from dashboard.app import create_app, make_server, serve
from dashboard.settings import DashboardSettings

__all__ = ["DashboardSettings", "create_app", "make_server", "serve"]
