#!/usr/bin/env python3
"""Container health probe: ``pa-healthcheck URL [TIMEOUT]``.

Exit 0 when the URL answers with any HTTP status below 500 (a dashboard that asks for a
login with 401 is up), 1 otherwise (no answer, timeout, or a 5xx such as a Prefect runner
whose ``/health`` reports missed polls). Standard library only, so it runs in any image.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, timeout: float) -> int:
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - URL from our compose file
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"pa-healthcheck: {url}: {exc}\n")
        return 1
    if status >= 500:
        sys.stderr.write(f"pa-healthcheck: {url}: HTTP {status}\n")
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not argv[1].startswith(("http://", "https://")):
        sys.stderr.write("usage: pa-healthcheck http://HOST:PORT/PATH [TIMEOUT_SECONDS]\n")
        return 2
    timeout = float(argv[2]) if len(argv) == 3 else 5.0
    return probe(argv[1], timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
