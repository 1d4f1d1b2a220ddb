"""MinIO: bucket policies (least privilege), the set-up script, and the upload gateway.

Policies are evaluated with a small IAM matcher (Allow statements, `*` wildcards in actions
and resources), which is all these documents use. setup.sh runs for real against a stand-in
`mc` that records its arguments and answers the way MinIO does.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.uploader import check_dataset, check_filename, landing_key
from privacy.errors import InvalidKey
from privacy.names import DATASET_RE, FILE_RE
from tests.unit.infra.conftest import INFRA, env_of

POLICIES = INFRA / "minio" / "policies"
SETUP = INFRA / "minio" / "setup.sh"
BUCKET = "privacy-analytics"
ARN = f"arn:aws:s3:::{BUCKET}"


def load(name: str) -> dict[str, Any]:
    return json.loads((POLICIES / f"{name}.json").read_text())


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    """IAM evaluation for Allow/Deny statements without conditions."""
    allowed = False
    for stmt in policy["Statement"]:
        if stmt.get("Condition"):
            raise AssertionError("conditions are not modelled here; extend the matcher")
        actions = _as_list(stmt["Action"])
        resources = _as_list(stmt["Resource"])
        hit = any(fnmatch.fnmatchcase(action, a) for a in actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in resources
        )
        if hit and stmt["Effect"] == "Deny":
            return False
        allowed = allowed or (hit and stmt["Effect"] == "Allow")
    return allowed


# --------------------------------------------------------------------------- policies


@pytest.mark.parametrize("name", ["uploader", "pipeline"])
def test_policies_are_valid_iam_documents(name: str) -> None:
    policy = load(name)
    assert policy["Version"] == "2012-10-17"
    assert isinstance(policy["Statement"], list) and policy["Statement"]
    for stmt in policy["Statement"]:
        assert set(stmt) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert stmt["Effect"] in ("Allow", "Deny")
        for action in _as_list(stmt["Action"]):
            assert re.fullmatch(r"s3:[A-Za-z]+", action), f"{name}: {action} (no wildcards)"
        for res in _as_list(stmt["Resource"]):
            assert res == ARN or res.startswith(ARN + "/"), f"{name}: {res} is outside the bucket"


def test_only_the_expected_policies_exist() -> None:
    names = {p.stem for p in POLICIES.glob("*.json")}
    assert names == {"uploader", "pipeline"}, "the dashboard has no bucket policy by design"
    text = (POLICIES / "README.md").read_text().lower()
    assert "dashboard has no bucket access" in text


def test_uploader_may_only_put_into_landing() -> None:
    policy = load("uploader")
    assert len(policy["Statement"]) == 1
    stmt = policy["Statement"][0]
    assert stmt["Effect"] == "Allow"
    assert _as_list(stmt["Action"]) == ["s3:PutObject"]
    assert _as_list(stmt["Resource"]) == [f"{ARN}/landing/*"]
    assert allows(policy, "s3:PutObject", f"{ARN}/landing/employees/2024.csv")
    for action, resource in [
        ("s3:GetObject", f"{ARN}/landing/employees/2024.csv"),
        ("s3:PutObject", f"{ARN}/masked/employees/x.parquet"),
        ("s3:PutObject", f"{ARN}/quarantine/employees/x.csv"),
        ("s3:DeleteObject", f"{ARN}/landing/employees/2024.csv"),
        ("s3:ListBucket", ARN),
        ("s3:GetBucketLocation", ARN),
        ("s3:PutObject", "arn:aws:s3:::other-bucket/landing/x/y.csv"),
    ]:
        assert not allows(policy, action, resource), f"uploader may {action} {resource}"


def test_pipeline_owns_its_three_areas_and_nothing_else() -> None:
    policy = load("pipeline")
    for area in ("landing", "quarantine", "masked"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert allows(policy, action, f"{ARN}/{area}/ds/f"), f"pipeline cannot {action} {area}/"
    assert allows(policy, "s3:ListBucket", ARN)
    for action, resource in [
        ("s3:GetObject", f"{ARN}/elsewhere/file"),
        ("s3:PutObject", f"{ARN}/file-at-the-top"),
        ("s3:DeleteBucket", ARN),
        ("s3:PutBucketPolicy", ARN),
        ("s3:PutBucketNotification", ARN),
        ("s3:GetObject", "arn:aws:s3:::other-bucket/landing/a/b"),
    ]:
        assert not allows(policy, action, resource), f"pipeline may {action} {resource}"


def test_the_uploader_doc_example_in_the_dashboard_matches_the_policy() -> None:
    import dashboard.uploader as uploader

    doc = uploader.__doc__ or ""
    example = json.loads(doc[doc.index("{") : doc.rindex("}") + 1])
    assert example["Statement"][0]["Action"] == load("uploader")["Statement"][0]["Action"]
    assert example["Statement"][0]["Resource"] == load("uploader")["Statement"][0]["Resource"]


# --------------------------------------------------------------------------- setup.sh

FAKE_MC = r"""#!/usr/bin/env bash
# stand-in for mc: records its arguments (one call per line) and answers like MinIO
printf '%s\n' "$*" >>"$MC_LOG"
case "$*" in
    "admin policy create "*) cp "${@: -1}" "$MC_POLICIES/$5.json" ;;
    "admin policy attach "*)
        marker="$MC_STATE/attached-$3-$5"
        if [[ -e "$marker" ]]; then
            echo "mc: <ERROR> Unable to attach policy." \
                "The specified policy change is already in effect." >&2
            exit 1
        fi
        touch "$marker" ;;
    "admin config set "*)
        if [[ -n "${MC_ASK_RESTART:-}" ]]; then
            echo "Successfully applied new settings." \
                "Please restart your server 'mc admin service restart pa'."
        else
            echo "Successfully applied new settings."
        fi ;;
    "event add "*)
        if [[ " $* " != *" --ignore-existing "* && -e "$MC_STATE/event" ]]; then
            echo "overlapping" >&2
            exit 1
        fi
        touch "$MC_STATE/event" ;;
esac
exit 0
"""


@pytest.fixture
def minio_env(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mc").write_text(FAKE_MC)
    (bindir / "mc").chmod(0o755)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    values = {
        "minio_root_user": "pa-admin",
        "minio_root_password": "root-password-0123456789",
        "s3_pipeline_secret_key": "pipeline-secret-0123456789",
        "s3_uploader_secret_key": "uploader-secret-0123456789",
        "receiver_token": "receiver-token-0123456789",
    }
    for name, value in values.items():
        (secrets / name).write_text(value + "\n")
    for d in ("state", "policies"):
        (tmp_path / d).mkdir()
    return {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "MC_LOG": str(tmp_path / "mc.log"),
        "MC_STATE": str(tmp_path / "state"),
        "MC_POLICIES": str(tmp_path / "policies"),
        "MINIO_URL": "http://minio:9000",
        "MINIO_ROOT_USER_FILE": str(secrets / "minio_root_user"),
        "MINIO_ROOT_PASSWORD_FILE": str(secrets / "minio_root_password"),
        "BUCKET": "team-data",
        "POLICY_DIR": str(POLICIES),
        "PIPELINE_SECRET_KEY_FILE": str(secrets / "s3_pipeline_secret_key"),
        "UPLOADER_SECRET_KEY_FILE": str(secrets / "s3_uploader_secret_key"),
        "RECEIVER_URL": "http://receiver:8765/minio/events",
        "RECEIVER_TOKEN_FILE": str(secrets / "receiver_token"),
        "WEBHOOK_QUEUE_DIR": "/events",
    }


def run_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def calls(env: dict[str, str]) -> list[str]:
    log = Path(env["MC_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def test_setup_script_is_valid_bash_in_strict_mode() -> None:
    subprocess.run(["bash", "-n", str(SETUP)], check=True)
    text = SETUP.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(SETUP, os.X_OK)


def test_setup_creates_bucket_policies_users_and_webhook(minio_env: dict[str, str]) -> None:
    proc = run_setup(minio_env)
    assert proc.returncode == 0, proc.stderr
    log = calls(minio_env)
    assert log[0] == "alias set pa http://minio:9000 pa-admin root-password-0123456789"
    assert "mb --ignore-existing pa/team-data" in log
    assert "anonymous set none pa/team-data" in log
    assert "admin user add pa pa-pipeline pipeline-secret-0123456789" in log
    assert "admin user add pa pa-uploader uploader-secret-0123456789" in log
    assert "admin policy attach pa pa-pipeline --user pa-pipeline" in log
    assert "admin policy attach pa pa-uploader --user pa-uploader" in log
    webhook = [c for c in log if c.startswith("admin config set pa notify_webhook:pa ")]
    assert webhook == [
        "admin config set pa notify_webhook:pa endpoint=http://receiver:8765/minio/events "
        "auth_token=receiver-token-0123456789 queue_dir=/events queue_limit=100000"
    ]
    assert (
        "event add pa/team-data arn:minio:sqs::pa:webhook --event put --prefix landing/ "
        "--ignore-existing" in log
    )
    assert not any("service restart" in c for c in log)
    # policies installed for the configured bucket, not the default one
    uploader = json.loads(Path(minio_env["MC_POLICIES"], "pa-uploader.json").read_text())
    assert uploader["Statement"][0]["Resource"] == ["arn:aws:s3:::team-data/landing/*"]
    pipeline = Path(minio_env["MC_POLICIES"], "pa-pipeline.json").read_text()
    assert BUCKET not in pipeline and "arn:aws:s3:::team-data/masked/*" in pipeline
    # secrets never reach the log output
    for secret in ("root-password", "pipeline-secret", "uploader-secret", "receiver-token"):
        assert secret not in proc.stdout + proc.stderr


def test_setup_is_idempotent(minio_env: dict[str, str]) -> None:
    assert run_setup(minio_env).returncode == 0
    again = run_setup(minio_env)  # attach now answers "already in effect"
    assert again.returncode == 0, again.stderr
    assert calls(minio_env).count("admin policy attach pa pa-uploader --user pa-uploader") == 2


def test_setup_restarts_minio_when_asked(minio_env: dict[str, str]) -> None:
    proc = run_setup({**minio_env, "MC_ASK_RESTART": "1"})
    assert proc.returncode == 0, proc.stderr
    log = calls(minio_env)
    restart = log.index("admin service restart pa")
    assert log.index("event add pa/team-data arn:minio:sqs::pa:webhook --event put --prefix "
                     "landing/ --ignore-existing") > restart
    assert "ready pa" in log[restart + 1 :]


def test_setup_refuses_a_missing_secret(minio_env: dict[str, str]) -> None:
    Path(minio_env["RECEIVER_TOKEN_FILE"]).unlink()
    proc = run_setup(minio_env)
    assert proc.returncode != 0
    assert "receiver_token" in proc.stderr and "missing" in proc.stderr
    assert not any(c.startswith("admin") for c in calls(minio_env))


def test_setup_refuses_a_short_secret(minio_env: dict[str, str]) -> None:
    Path(minio_env["UPLOADER_SECRET_KEY_FILE"]).write_text("short\n")
    proc = run_setup(minio_env)
    assert proc.returncode != 0 and "shorter than 8" in proc.stderr


def test_compose_runs_setup_with_the_receiver_endpoint(services: dict[str, Any]) -> None:
    svc = services["minio-setup"]
    env = env_of(svc)
    assert svc["entrypoint"][-1] == "/pa/minio/setup.sh"
    assert "./minio:/pa/minio:ro" in svc["volumes"]
    assert env["POLICY_DIR"] == "/pa/minio/policies"
    recv = env_of(services["receiver"])
    assert env["RECEIVER_URL"] == f"http://receiver:{recv['PA_RECEIVER_PORT']}/minio/events"
    assert env["RECEIVER_TOKEN_FILE"] == recv["PA_RECEIVER_TOKEN_FILE"]
    assert any(v.split(":")[1] == env["WEBHOOK_QUEUE_DIR"] for v in services["minio"]["volumes"])


# --------------------------------------------------------------------------- upload gateway

TEMPLATE = INFRA / "s3-upload" / "default.conf.template"


def gateway_pattern(bucket: str = BUCKET) -> re.Pattern[str]:
    text = TEMPLATE.read_text().replace("${UPLOAD_BUCKET}", bucket)
    locations = re.findall(r'location ~ "([^"]+)"', text)
    assert len(locations) == 1, "exactly one forwarding location"
    return re.compile(locations[0])


def test_gateway_forwards_only_put_and_post_to_minio() -> None:
    text = TEMPLATE.read_text()
    block = text[text.index("location ~") :]
    block = block[: block.index("\n    }\n")]
    assert re.search(r"limit_except PUT POST \{\s*deny all;\s*\}", block)
    assert "proxy_pass http://minio:9000;" in block
    assert "proxy_set_header Host $http_host;" in block, "the S3 signature covers the Host header"
    assert "$http_x_amz_copy_source" in block, "refuse CopyObject"
    assert re.search(r"location / \{\s*return 403;\s*\}", text), "everything else is refused"
    assert text.count("proxy_pass") == 1


def test_gateway_key_pattern_is_the_dashboard_s_own_check() -> None:
    pattern = gateway_pattern().pattern
    assert DATASET_RE.pattern.strip("^$") in pattern
    assert FILE_RE.pattern.strip("^$") in pattern


@pytest.mark.parametrize(
    "path",
    [
        f"/{BUCKET}/masked/employees/x.parquet",
        f"/{BUCKET}/quarantine/employees/x.csv",
        f"/{BUCKET}/landing/employees",
        f"/{BUCKET}/landing/a/b/c.csv",
        f"/{BUCKET}/landing/../masked/x.csv",
        f"/{BUCKET}/landing/.hidden/x.csv",
        f"/{BUCKET}",
        f"/{BUCKET}/",
        "/other-bucket/landing/employees/x.csv",
        "/minio/admin/v3/info",
        "/",
    ],
)
def test_gateway_refuses_other_paths(path: str) -> None:
    assert not gateway_pattern().match(path)


def test_gateway_uses_the_configured_bucket() -> None:
    assert gateway_pattern("team-data").match("/team-data/landing/employees/x.csv")
    assert not gateway_pattern("team-data").match(f"/{BUCKET}/landing/employees/x.csv")


@given(
    dataset=st.from_regex(r"[A-Za-z0-9._/-]{1,70}", fullmatch=True),
    filename=st.from_regex(r"[A-Za-z0-9._/ -]{1,40}\.(csv|parquet|jsonl)", fullmatch=True),
)
def test_gateway_lets_through_every_upload_the_dashboard_makes(dataset: str, filename: str) -> None:
    try:
        check_dataset(dataset)
        check_filename(filename)
    except InvalidKey:
        return
    assert gateway_pattern().match(f"/{BUCKET}/{landing_key(dataset, filename)}")


def test_compose_gateway_bucket_matches_the_dashboard_s(services: dict[str, Any]) -> None:
    gw, dash = env_of(services["s3-upload"]), env_of(services["dashboard"])
    assert gw["UPLOAD_BUCKET"] == dash["PA_DASHBOARD_S3_BUCKET"]
    mounts = services["s3-upload"]["volumes"]
    assert any("/etc/nginx/templates/default.conf.template" in v for v in mounts)
