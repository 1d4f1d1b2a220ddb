"""Pipeline settings: every one of them comes from a ``PA_*`` environment variable.

Built once at an entry point (the CLI, a flow run, the receiver) and passed down; library
code never reads the environment. Each field's description is its documentation: the
README's settings table is generated from it and a test keeps the two in step.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from privacy.errors import PipelineError
from privacy.keys import check_master_key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PA_", extra="ignore", frozen=True)

    state_dir: Path = Field(
        default=Path(".pa-state"),
        description="Root of the embedded default: landing folder, masked store, SQLite "
        "aggregate store, Prefect's home and the generated pseudonym key live here.",
    )
    contracts_dir: Path = Field(
        default=Path("contracts"),
        description="Folder of dataset contracts, one `<dataset>.yaml` per dataset.",
    )
    store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the aggregate store, e.g. "
        "`postgresql+psycopg://user@host/db`. Default: SQLite file `<state dir>/aggregates.db`.",
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Master key for keyed (HMAC-SHA256) pseudonyms, at least 32 bytes; each "
        "dataset derives its own key from it (HKDF-SHA256 with the dataset's name, or its "
        "`linkage_group`). If unset, `up` generates one into `<state dir>/pseudonym.key` "
        "(mode 0600; a key file others can read is refused) on first start. Never logged.",
    )
    s3_endpoint: str | None = Field(
        default=None,
        description="host:port of an S3 server (MinIO). When set, objects live in S3 instead "
        "of the local folder `<state dir>/objects`.",
    )
    s3_access_key: str | None = Field(default=None, description="S3 access key.")
    s3_secret_key: SecretStr | None = Field(default=None, description="S3 secret key.")
    s3_bucket: str = Field(
        default="privacy-analytics",
        description="Bucket holding `landing/`, `quarantine/` and `masked/` (also the bucket "
        "name used in events for the local folder).",
    )
    s3_secure: bool = Field(default=False, description="Use TLS (https) for S3.")
    s3_region: str | None = Field(default=None, description="S3 region, if the server needs one.")
    keep_raw: bool = Field(
        default=False,
        description="Keep the raw file in `landing/` after a successful run (default: remove "
        "it, for data minimisation).",
    )
    max_file_bytes: int = Field(
        default=2 * 1024**3,
        ge=1,
        description="Largest file accepted; larger files are quarantined unread.",
    )
    event_namespace: str = Field(
        default="pa",
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="Prefix of the Prefect events, e.g. `pa.object.created`.",
    )
    receiver_host: str = Field(default="127.0.0.1", description="Webhook receiver address.")
    receiver_port: int = Field(default=8765, description="Webhook receiver port.")
    receiver_token: SecretStr | None = Field(
        default=None,
        description="Bearer token MinIO must send to the webhook receiver. If unset, `up` "
        "generates one into `<state dir>/receiver.token`.",
    )
    prefect_port: int = Field(default=4200, description="Port of the Prefect server `up` starts.")
    dashboard_host: str = Field(default="127.0.0.1", description="Dashboard address.")
    dashboard_port: int = Field(default=8050, description="Dashboard port.")
    sweep_interval_seconds: int = Field(
        default=300,
        ge=5,
        description="How often the sweep deployment lists `landing/` for unprocessed objects.",
    )
    watch_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often the folder watcher polls the landing folder."
    )
    run_limit: int = Field(
        default=4, ge=1, description="Most flow runs the served deployments execute at once."
    )
    dataset_run_limit: int = Field(
        default=1,
        ge=0,
        description="Most `process-object` runs of one dataset at once, across all workers: "
        "the slots of the Prefect global concurrency limit `pa-dataset-<dataset>`, created "
        "with this value when missing (change it later in the Prefect UI, Concurrency). Runs "
        "beyond it wait in the state `AwaitingConcurrencySlot` without holding a worker. "
        "0 turns the limit off.",
    )
    reservation_timeout_seconds: int = Field(
        default=1800,
        ge=10,
        description="A budget reservation older than this belongs to a crashed run and stops "
        "counting (it never becomes spend); the sweep also treats a run still running after "
        "this long as dead and starts a new run for its object.",
    )
    warm_start: bool = Field(
        default=True,
        description="Start flow runs from a pre-warmed fork server (pipeline imported once); "
        "false uses Prefect's default spawn (slower start, seconds per run).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the service's own loggers."
    )

    # ------------------------------------------------------------------ derived

    @property
    def state(self) -> Path:
        return self.state_dir.expanduser().resolve()

    @property
    def objects_dir(self) -> Path:
        return self.state / "objects"

    @property
    def prefect_home(self) -> Path:
        return self.state / "prefect"

    @property
    def aggregate_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{self.state / 'aggregates.db'}"

    @property
    def uses_s3(self) -> bool:
        return bool(self.s3_endpoint)

    @property
    def event_name(self) -> str:
        return f"{self.event_namespace}.object.created"

    def pseudonym_key_bytes(self) -> bytes:
        """The master pseudonym key (each dataset derives its own from it, see
        ``privacy.masking.dataset_key``); falls back to the key file `up` keeps in the state
        dir. Refuses a key shorter than 32 bytes and a key file others may read."""
        if self.pseudonym_key is not None and self.pseudonym_key.get_secret_value():
            key = self.pseudonym_key.get_secret_value().encode()
            return _checked_key(key, "PA_PSEUDONYM_KEY")
        path = self.state / "pseudonym.key"
        if path.is_file():
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise PipelineError(
                    f"the pseudonym key file {path} may be read by other users (mode "
                    f"{mode:04o}); run 'chmod 600 {path}' and start again"
                )
            return _checked_key(path.read_text().strip().encode(), str(path))
        raise PipelineError(
            "no pseudonym key: set PA_PSEUDONYM_KEY, or run 'privacy-analytics up' once to "
            f"generate {path}"
        )

    def ensure_secrets(self) -> None:
        """Create the state dir and, if unset, a pseudonym key and receiver token (0600)."""
        self.state.mkdir(parents=True, exist_ok=True)
        for name, value in (
            ("pseudonym.key", self.pseudonym_key),
            ("receiver.token", self.receiver_token),
        ):
            path = self.state / name
            if value is None and not path.exists():
                # created 0600 from the first byte: never readable by others, even briefly
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(32) + "\n")

    def receiver_token_value(self) -> str | None:
        if self.receiver_token is not None:
            return self.receiver_token.get_secret_value()
        path = self.state / "receiver.token"
        return path.read_text().strip() if path.is_file() else None

    def check_s3(self) -> None:
        missing = [
            name
            for name, unset in (
                ("PA_S3_ACCESS_KEY", not self.s3_access_key),
                ("PA_S3_SECRET_KEY", self.s3_secret_key is None),
            )
            if unset
        ]
        if self.uses_s3 and missing:
            verb = "is" if len(missing) == 1 else "are"
            raise PipelineError(f"PA_S3_ENDPOINT is set but {' and '.join(missing)} {verb} missing")


def _checked_key(key: bytes, where: str) -> bytes:
    try:
        return check_master_key(key)
    except PipelineError as exc:
        raise PipelineError(f"{where}: {exc}") from None
