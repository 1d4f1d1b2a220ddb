"""Process trees from /proc: a process's descendants, their command lines and CPU time, and
killing a whole tree (the topology's supervisor and bench/chaos.py's faults)."""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from pathlib import Path


def stat_fields(pid: int) -> list[int] | None:
    """/proc/<pid>/stat as numbers, ``[k]`` being field k + 2 of proc(5) (ppid [2], utime
    [12], stime [13], cutime [14], cstime [15])."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return [0, *(int(x) if x.lstrip("-").isdigit() else 0 for x in rest)]
    except (OSError, IndexError):
        return None


def parent_of(pid: int) -> int | None:
    f = stat_fields(pid)
    return f[2] if f else None


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), children first."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        ppid = parent_of(int(d.name))
        if ppid is not None:
            children.setdefault(ppid, []).append(int(d.name))
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kill_tree(pid: int, sig: int) -> None:
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - our loopback URLs
            return r.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, OSError):
        return False
