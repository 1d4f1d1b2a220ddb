"""The processes of the one-machine topology (flows/topology.py): one ``ProcessSpec`` per
compose service of infra/compose.yaml, with that service's command and variables.

``tests/unit/infra/test_topology.py`` keeps these in step with compose.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
ENTRYPOINT = INFRA / "docker" / "entrypoint.sh"
LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
#: compose services the topology does not run, and why
NOT_RUN = {
    "s3-upload": "upload gateway: the dashboard reaches the S3 server directly on one machine",
    "deploy-workpool": "work-pool profile; the topology runs served deployments",
    "worker": "work-pool profile; the topology runs served deployments",
}
#: what infra/Dockerfile's ENV sets in every container of the image (paths: per process)
IMAGE_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Plan:
    """What to start and how it is tuned; ports default to free ones (``Plan.local``)."""

    state: Path
    workers: int = 3
    run_limit: int = 2
    dataset_run_limit: int = 1
    sweep_interval_seconds: int = 300
    reservation_timeout_seconds: int = 1800
    heartbeat_seconds: int = 30
    contracts_dir: Path = ROOT / "contracts"
    bucket: str = "privacy-analytics"
    namespace: str = "pa"
    dashboard: bool = True
    prefect_port: int = 4200
    receiver_port: int = 8765
    dashboard_port: int = 8050
    s3_port: int = 9000
    #: where the pipeline and the dashboard reach S3 (a fault-injecting proxy in bench/chaos.py)
    s3_client_port: int | None = None
    pg_port: int = 5432
    runner_ports: tuple[int, ...] = ()

    @classmethod
    def local(cls, state: Path, **kw: object) -> Plan:
        plan = cls(state=state.resolve(), **kw)  # type: ignore[arg-type]
        ports = {name: free_port() for name in
                 ("prefect_port", "receiver_port", "dashboard_port", "s3_port", "pg_port")}
        ports = {k: v for k, v in ports.items() if k not in kw}
        runner_ports = plan.runner_ports or tuple(free_port() for _ in range(plan.workers))
        return replace(plan, runner_ports=runner_ports, **ports)  # type: ignore[arg-type]

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def s3_endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_client_port or self.s3_port}"

    @property
    def secrets(self) -> Path:
        return self.state / "secrets"

    def store_url(self, role: str) -> str:
        """The aggregate store as ``role`` (pa_writer: the pipeline; pa_reader: the dashboard)."""
        return f"postgresql+psycopg://{role}@127.0.0.1:{self.pg_port}/aggregates"

    @property
    def writer_url(self) -> str:
        return self.store_url("pa_writer")

    @property
    def reader_url(self) -> str:
        return self.store_url("pa_reader")


@dataclass
class ProcessSpec:
    """One process: its compose service, command (after the entrypoint) and variables."""

    name: str
    service: str
    argv: list[str]
    #: the service's own variables, under compose's names (``*_FILE`` for secrets)
    env: dict[str, str]
    #: what the image sets in every container (IMAGE_ENV and its paths)
    image_env: dict[str, str] = field(default_factory=dict)
    one_shot: bool = False
    ready: str | None = None


# --------------------------------------------------------------------------- the services


def _secret(plan: Plan, name: str) -> str:
    return str(plan.secrets / name)


def prefect_env(plan: Plan) -> dict[str, str]:
    """compose's x-prefect-env."""
    return {
        "PREFECT_API_URL": plan.api_url,
        "PREFECT_UI_URL": plan.ui_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }


def pipeline_env(plan: Plan) -> dict[str, str]:
    """compose's x-pipeline-env (the pipeline's identity: bucket, store owner, pseudonym key)."""
    return {
        **prefect_env(plan),
        "PA_S3_ENDPOINT": plan.s3_endpoint,
        "PA_S3_BUCKET": plan.bucket,
        "PA_S3_ACCESS_KEY": "pa-pipeline",
        "PA_S3_SECRET_KEY_FILE": _secret(plan, "s3_pipeline_secret_key"),
        "PA_S3_SECURE": "false",
        "PA_S3_REGION": "us-east-1",
        "PA_STORE_URL": plan.writer_url,
        "PGPASSWORD_FILE": _secret(plan, "store_writer_password"),
        "PA_PSEUDONYM_KEY_FILE": _secret(plan, "pseudonym_key"),
        "PA_EVENT_NAMESPACE": plan.namespace,
        "PA_RUN_LIMIT": str(plan.run_limit),
        "PA_DATASET_RUN_LIMIT": str(plan.dataset_run_limit),
        "PA_SWEEP_INTERVAL_SECONDS": str(plan.sweep_interval_seconds),
        "PA_RESERVATION_TIMEOUT_SECONDS": str(plan.reservation_timeout_seconds),
        "PA_KEEP_RAW": "false",
        "PA_LOG_LEVEL": "INFO",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(plan.heartbeat_seconds),
    }


def _minio_env(plan: Plan) -> dict[str, str]:
    return {
        "MINIO_ROOT_USER_FILE": _secret(plan, "minio_root_user"),
        "MINIO_ROOT_PASSWORD_FILE": _secret(plan, "minio_root_password"),
        "MINIO_BROWSER_REDIRECT_URL": "http://127.0.0.1:9001",  # no console in this topology
    }


def _store_migrate(plan: Plan, py: str) -> ProcessSpec:
    return ProcessSpec(
        "store-migrate", "store-migrate",
        [py, "-c", "from flows.settings import Settings; "
         "from analytics.store import AggregateStore; "
         "AggregateStore(Settings().aggregate_store_url).close()"],
        {**prefect_env(plan), "PA_STORE_URL": plan.writer_url,
         "PGPASSWORD_FILE": _secret(plan, "store_writer_password")},
        one_shot=True,
    )


def _prefect_server(plan: Plan, py: str) -> ProcessSpec:
    return ProcessSpec(
        "prefect-server", "prefect-server",
        [py, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
         str(plan.prefect_port), "--analytics-off"],
        {
            "PREFECT_API_URL": plan.api_url,
            "PREFECT_UI_URL": plan.ui_url,
            "PREFECT_UI_API_URL": plan.api_url,
            "PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://prefect:"
            f"${{PREFECT_SERVER_DATABASE_PASSWORD}}@127.0.0.1:{plan.pg_port}/prefect",
            "PREFECT_SERVER_DATABASE_PASSWORD_FILE": _secret(plan, "prefect_db_password"),
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        },
        ready=f"{plan.api_url}/health",
    )


def _receiver(plan: Plan, py: str) -> ProcessSpec:
    return ProcessSpec(
        "receiver", "receiver", [py, "-m", "flows.receiver"],
        {**prefect_env(plan), "PA_RECEIVER_HOST": "127.0.0.1",
         "PA_RECEIVER_PORT": str(plan.receiver_port),
         "PA_RECEIVER_TOKEN_FILE": _secret(plan, "receiver_token"),
         "PA_EVENT_NAMESPACE": plan.namespace, "PA_LOG_LEVEL": "INFO"},
        ready=f"http://127.0.0.1:{plan.receiver_port}/health",
    )


def _minio(plan: Plan, py: str) -> list[ProcessSpec]:
    """moto's S3 server, the bucket set-up, and MinIO's webhook notifications."""
    minio_dir = plan.state / "minio"
    setup_env = {
        "MINIO_URL": f"http://127.0.0.1:{plan.s3_port}",
        "MINIO_ROOT_USER_FILE": _secret(plan, "minio_root_user"),
        "MINIO_ROOT_PASSWORD_FILE": _secret(plan, "minio_root_password"),
        "BUCKET": plan.bucket,
        "POLICY_DIR": str(INFRA / "minio" / "policies"),
        "PIPELINE_ACCESS_KEY": "pa-pipeline",
        "PIPELINE_SECRET_KEY_FILE": _secret(plan, "s3_pipeline_secret_key"),
        "UPLOADER_ACCESS_KEY": "pa-uploader",
        "UPLOADER_SECRET_KEY_FILE": _secret(plan, "s3_uploader_secret_key"),
        "RECEIVER_URL": f"http://127.0.0.1:{plan.receiver_port}/minio/events",
        "RECEIVER_TOKEN_FILE": _secret(plan, "receiver_token"),
        "WEBHOOK_QUEUE_DIR": str(minio_dir / "events"),
    }
    return [
        ProcessSpec("minio", "minio",
                    [py, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(plan.s3_port)],
                    _minio_env(plan), ready=f"http://127.0.0.1:{plan.s3_port}/"),
        ProcessSpec("minio-setup", "minio-setup",
                    [py, "-m", "flows.notifier", "setup", "--config-dir", str(minio_dir)],
                    setup_env, one_shot=True),
        ProcessSpec("minio-notify", "minio",
                    [py, "-m", "flows.notifier", "watch", "--config-dir", str(minio_dir),
                     "--address", f"127.0.0.1:{plan.s3_port}"],
                    _minio_env(plan)),
    ]


def _pipeline(plan: Plan, py: str, i: int) -> ProcessSpec:
    port = plan.runner_ports[i]
    return ProcessSpec(
        f"pipeline-{i + 1}", "pipeline", [py, "-m", "flows.serve"],
        {**pipeline_env(plan), "PREFECT_RUNNER_SERVER_ENABLE": "true",
         "PREFECT_RUNNER_SERVER_HOST": "127.0.0.1",
         "PREFECT_RUNNER_SERVER_PORT": str(port)},
        ready=f"http://127.0.0.1:{port}/health",
    )


def _dashboard(plan: Plan, py: str) -> ProcessSpec:
    return ProcessSpec(
        "dashboard", "dashboard", [py, "-m", "dashboard"],
        {
            "PA_DASHBOARD_STORE_URL": plan.reader_url,
            "PGPASSWORD_FILE": _secret(plan, "store_reader_password"),
            "PA_DASHBOARD_HOST": "127.0.0.1",
            "PA_DASHBOARD_PORT": str(plan.dashboard_port),
            "PA_DASHBOARD_USERS_FILE": _secret(plan, "dashboard_users"),
            "PA_DASHBOARD_PREFECT_UI_URL": plan.ui_url,
            "PA_DASHBOARD_S3_ENDPOINT": plan.s3_endpoint,
            "PA_DASHBOARD_S3_BUCKET": plan.bucket,
            "PA_DASHBOARD_S3_PUT_ACCESS_KEY": "pa-uploader",
            "PA_DASHBOARD_S3_PUT_SECRET_KEY_FILE": _secret(plan, "s3_uploader_secret_key"),
            "PA_DASHBOARD_S3_SECURE": "false",
            "PA_DASHBOARD_S3_REGION": "us-east-1",
        },
        ready=f"http://127.0.0.1:{plan.dashboard_port}/",
    )


#: the compose services built from the project's image
APP_SERVICES = frozenset({"store-migrate", "prefect-server", "receiver", "pipeline", "dashboard"})


def specs(plan: Plan) -> list[ProcessSpec]:
    """Every process after `postgres`, in compose's start order."""
    py = sys.executable
    out = [_store_migrate(plan, py), _prefect_server(plan, py), _receiver(plan, py),
           *_minio(plan, py), *(_pipeline(plan, py, i) for i in range(plan.workers))]
    if plan.dashboard:
        out.append(_dashboard(plan, py))
    for spec in out:
        if spec.service in APP_SERVICES:
            home = plan.state / "home" / spec.name
            spec.image_env = {
                **IMAGE_ENV,
                "PA_CONTRACTS_DIR": str(plan.contracts_dir.resolve()),
                "PA_STATE_DIR": str(home / "state"),
                "PREFECT_HOME": str(home / ".prefect"),
            }
    return out
