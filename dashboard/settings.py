"""Dashboard settings: every one comes from a ``PA_DASHBOARD_*`` environment variable.

The dashboard is its own deployable with its own settings model; it never uses the
pipeline's ``flows.settings``. By design (ARCHITECTURE invariant 1) it holds:

- the URL of the aggregate store, opened read-only;
- no object-store credentials and no path to landing, quarantine or masked data, with one
  exception: the upload page's *write-only* uploader (a landing folder it may only add files
  to, or an S3 key whose bucket policy allows nothing but ``s3:PutObject`` on ``landing/*``);
- the users file: who may log in, as viewer or operator (``dashboard/users.py``).

Each field's description is its documentation.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from privacy.errors import PipelineError

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _unset(description: str) -> Any:
    """A setting that is off (None) unless its variable is set."""
    return Field(default=None, description=description)


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PA_DASHBOARD_", extra="ignore", frozen=True, populate_by_name=True
    )

    state_dir: Path = Field(
        default=Path(".pa-state"),
        validation_alias=AliasChoices("PA_DASHBOARD_STATE_DIR", "PA_STATE_DIR"),
        description="State folder of the embedded default (also read from `PA_STATE_DIR`); "
        "only used to find the default SQLite aggregate store `<state dir>/aggregates.db`.",
    )
    store_url: str | None = _unset(
        "SQLAlchemy URL of the aggregate store, opened read-only (use a read-only "
        "role on PostgreSQL). Default: SQLite file `<state dir>/aggregates.db`.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address the dashboard listens on. Anything but loopback requires a "
        "users file (`PA_DASHBOARD_USERS_FILE`).",
    )
    port: int = Field(default=8050, ge=0, le=65535, description="Port the dashboard listens on.")
    users_file: Path | None = _unset(
        "YAML file of the people who may log in: name, role (`viewer` or "
        "`operator`), PBKDF2 password hash and, for operators, the datasets they may upload "
        "to (see \"Users and roles\"). With it every request needs a login (HTTP basic auth); "
        "without it only loopback is served, and the local user is the operator. Required off "
        "loopback. Read once at start.",
    )
    users: SecretStr | None = _unset(
        "The users file's content instead of its path: the container image's "
        "entrypoint turns `PA_DASHBOARD_USERS_FILE=/run/secrets/...` into this variable, as "
        "it does for every `*_FILE` secret. Set one of the two.",
    )
    prefect_ui_url: str = Field(
        default="http://127.0.0.1:4200",
        description="Base URL of the Prefect UI; the runs page links each run to "
        "`<url>/runs/flow-run/<id>` when the run record has no link of its own.",
    )
    refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often pages ask the store whether anything changed; they re-render "
        "only when it did.",
    )
    landing_dir: Path | None = _unset(
        "Upload page, embedded mode: the local landing folder "
        "(`<state dir>/objects/landing`). The dashboard only adds files to it "
        "(`<landing dir>/<dataset>/<file>`), atomically; it never reads or lists it.",
    )
    s3_endpoint: str | None = _unset(
        "Upload page, S3 mode: host:port of the S3 server (MinIO). Takes "
        "precedence over the landing folder.",
    )
    s3_bucket: str = Field(
        default="privacy-analytics", description="Upload page, S3 mode: the bucket."
    )
    s3_put_access_key: str | None = _unset(
        "Upload page, S3 mode: access key of a put-only identity whose bucket "
        "policy allows only `s3:PutObject` on `landing/*` (see infra/).",
    )
    s3_put_secret_key: SecretStr | None = _unset(
        "Upload page, S3 mode: secret key of the put-only identity."
    )
    s3_secure: bool = Field(default=False, description="Upload page, S3 mode: use https.")
    s3_region: str | None = _unset("Upload page, S3 mode: region.")
    max_upload_bytes: int = Field(
        default=50 * 1024**2,
        ge=1,
        description="Largest file the upload page accepts (the browser sends it base64-encoded "
        "in one request, so keep this moderate; use `mc cp` or `aws s3 cp` for big files).",
    )
    title: str = Field(default="Privacy analytics", description="Title shown in the navbar.")

    @model_validator(mode="after")
    def _check(self) -> DashboardSettings:
        if self.users_file is not None and self.users is not None:
            raise ValueError(
                "set PA_DASHBOARD_USERS_FILE or PA_DASHBOARD_USERS (the file's content), "
                "not both"
            )
        if self.s3_endpoint and (not self.s3_put_access_key or self.s3_put_secret_key is None):
            raise ValueError(
                "PA_DASHBOARD_S3_ENDPOINT is set but PA_DASHBOARD_S3_PUT_ACCESS_KEY or "
                "PA_DASHBOARD_S3_PUT_SECRET_KEY is missing"
            )
        return self

    # ------------------------------------------------------------------ derived

    @property
    def aggregate_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{self.state_dir.expanduser().resolve() / 'aggregates.db'}"

    @property
    def login_required(self) -> bool:
        """A users file is configured: every request must log in (off loopback it must be)."""
        return self.users_file is not None or self.users is not None

    @property
    def uploads_enabled(self) -> bool:
        return bool(self.s3_endpoint) or self.landing_dir is not None

    def check_startup(self) -> None:
        """Refuse to serve off loopback without a users file (a message naming the variable)."""
        if not is_loopback(self.host) and not self.login_required:
            raise PipelineError(
                f"the dashboard listens on {self.host}, which is not loopback, so it needs to "
                "know who is who: set PA_DASHBOARD_USERS_FILE to a users file (make password "
                "hashes with 'python -m dashboard hash-password'; docs/dashboard.md, \"Users "
                "and roles\"), or listen on 127.0.0.1 (PA_DASHBOARD_HOST)"
            )
