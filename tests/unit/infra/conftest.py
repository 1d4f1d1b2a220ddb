"""Shared helpers for the static checks of infra/: the compose file, parsed and interpolated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"
COMPOSE_FILE = INFRA / "compose.yaml"

#: services built from infra/Dockerfile (the x-app anchor)
APP_SERVICES = {
    "store-migrate", "prefect-server", "receiver", "pipeline", "dashboard",
    "deploy-workpool", "worker",
}

_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose-style interpolation: ``${X}``, ``${X:-default}``, ``$$`` -> ``$``."""
    env = env or {}

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        if name in env and (env[name] or op != ":-"):
            return env[name]
        if op in (":-", "-"):
            return arg or ""
        if op in (":?", "?"):
            raise ValueError(f"required variable {name} is not set: {arg}")
        return ""

    return _VAR.sub(sub, value)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def networks_of(service: dict[str, Any]) -> set[str]:
    nets = service.get("networks") or {}
    return set(nets) if isinstance(nets, (list, dict)) else set()


def depends_of(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: {} for d in deps}
    return {k: (v or {}) for k, v in deps.items()}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]
