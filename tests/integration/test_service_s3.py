"""The service on S3 (moto over HTTP): MinIO webhook -> receiver -> Prefect event -> trigger ->
served `process-object` run -> published aggregates; the sweep as the safety net; duplicates."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus

import pytest
from minio import Minio

from analytics.store import AggregateStore, ObjectVersion, ReadOnlyStore
from flows.demo import employee_frame
from tests.integration.conftest import Service, make_pa_env, settings_for, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def svc(prefect_server: str, s3_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("s3-service")
    env = make_pa_env(state, **s3_server, PA_SWEEP_INTERVAL_SECONDS="3600")
    settings = settings_for(env)
    service = Service(env, state)
    service.start("deployments", "flows.serve")
    service.start("receiver", "flows.receiver")
    base = f"http://127.0.0.1:{settings.receiver_port}"

    def receiver_up() -> bool:
        service.alive()
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_until(receiver_up, 60, "the webhook receiver")

    from prefect.client.orchestration import get_client

    def deployment_ready() -> bool:
        service.alive()
        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name("process-object/process-object")
                client.read_deployment_by_name("sweep-landing/sweep-landing")
                return True
            except Exception:
                return False

    wait_until(deployment_ready, 90, "the served deployments")
    time.sleep(2)  # the runner's first poll
    minio = Minio(
        env["PA_S3_ENDPOINT"],
        access_key=env["PA_S3_ACCESS_KEY"],
        secret_key=env["PA_S3_SECRET_KEY"],
        secure=False,
        region="us-east-1",
    )
    if not minio.bucket_exists(env["PA_S3_BUCKET"]):
        minio.make_bucket(env["PA_S3_BUCKET"])
    yield {"env": env, "settings": settings, "service": service, "base": base, "minio": minio}
    service.stop()


def _put(svc: dict[str, Any], key: str, rows: int = 400, seed: int = 1) -> ObjectVersion:
    buf = io.BytesIO()
    employee_frame(rows=rows, employees=max(rows // 4, 10), seed=seed).write_csv(buf)
    data = buf.getvalue()
    res = svc["minio"].put_object(svc["env"]["PA_S3_BUCKET"], key, io.BytesIO(data), len(data))
    return ObjectVersion(svc["env"]["PA_S3_BUCKET"], key, res.etag.strip('"'), len(data))


def minio_event(obj: ObjectVersion) -> dict[str, Any]:
    """A notification as MinIO's webhook target posts it (keys URL-encoded)."""
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{obj.bucket}/{obj.key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventTime": "2026-11-27T08:00:00.000Z",
                "eventName": "s3:ObjectCreated:Put",
                "userIdentity": {"principalId": "uploader"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "Config",
                    "bucket": {"name": obj.bucket, "arn": f"arn:aws:s3:::{obj.bucket}"},
                    "object": {
                        "key": quote_plus(obj.key, safe="/"),
                        "size": obj.size,
                        "eTag": obj.etag,
                        "contentType": "text/csv",
                        "sequencer": "17F0E6C1A2B3C4D5",
                    },
                },
            }
        ],
    }


def _post(
    svc: dict[str, Any], body: dict[str, Any], token: str | None
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"{svc['base']}/minio/events",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _published(svc: dict[str, Any], obj: ObjectVersion) -> str | None:
    svc["service"].alive()
    store = AggregateStore(svc["settings"].aggregate_store_url)
    try:
        return store.find_published(obj)
    finally:
        store.close()


def _runs_settled(svc: dict[str, Any]) -> bool:
    """No process-object run is waiting or running (future scheduled sweeps don't count)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        busy = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(
                        any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
                    )
                )
            ),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["process-object"])),
        )
    return not busy


def test_webhook_refuses_a_wrong_token(svc: dict[str, Any]) -> None:
    obj = ObjectVersion(svc["env"]["PA_S3_BUCKET"], "landing/employees/never.csv", "abc", 10)
    status, body = _post(svc, minio_event(obj), "wrong-token")
    assert status == 401 and "token" in body["error"]
    status, _ = _post(svc, minio_event(obj), None)
    assert status == 401


def test_webhook_event_becomes_published_aggregates(svc: dict[str, Any]) -> None:
    obj = _put(svc, "landing/employees/week 1+2.csv", seed=11)
    status, body = _post(svc, minio_event(obj), svc["env"]["PA_RECEIVER_TOKEN"])
    assert status == 200 and body["accepted"] == 1, body
    run_id = wait_until(lambda: _published(svc, obj), 120, "publication after the webhook")
    assert run_id
    bucket = svc["env"]["PA_S3_BUCKET"]

    def raw_gone() -> list[str] | None:
        # publication commits before the run's last step removes the raw object
        keys = [o.object_name for o in svc["minio"].list_objects(bucket, recursive=True)]
        return keys if obj.key not in keys else None

    keys = wait_until(raw_gone, 60, "the raw object to leave landing/")
    assert any(k.startswith("masked/employees/week 1+2-") and k.endswith(".parquet") for k in keys)
    ro = ReadOnlyStore(svc["settings"].aggregate_store_url)
    assert any(r.status == "completed" for r in ro.runs(limit=20, dataset="employees"))


def test_duplicate_events_publish_once(svc: dict[str, Any]) -> None:
    obj = _put(svc, "landing/employees/dup.csv", seed=12)
    token = svc["env"]["PA_RECEIVER_TOKEN"]
    ro = ReadOnlyStore(svc["settings"].aggregate_store_url)
    before = ro.budget("employees").epsilon_spent if ro.datasets() else 0.0
    for _ in range(3):
        status, _ = _post(svc, minio_event(obj), token)
        assert status == 200
    wait_until(lambda: _published(svc, obj), 120, "publication of the duplicated object")
    time.sleep(2)
    wait_until(lambda: _runs_settled(svc), 120, "all flow runs to finish")
    releases = [
        r for r in ro.releases("employees", limit=1000) if getattr(r, "key", obj.key) == obj.key
    ]
    spent = ro.budget("employees").epsilon_spent - before
    assert 0 < spent <= 1.0 + 1e-9, "three events for one object version spend once"
    names = [r.name for r in releases]
    assert len(names) == len(set(names)), "each analysis is published once for the object"


def test_sweep_alone_processes_unannounced_objects(svc: dict[str, Any]) -> None:
    """One sweep starts a run for every unannounced object and ends Completed (a sweep
    that starts one run and then fails would reconcile one object per sweep interval)."""
    objs = [_put(svc, f"landing/employees/unannounced-{i}.csv", seed=13 + i) for i in range(3)]
    from prefect.deployments import run_deployment

    sweep = run_deployment("sweep-landing/sweep-landing", timeout=120)
    assert sweep.state is not None and sweep.state.is_completed(), sweep.state
    for obj in objs:
        wait_until(lambda o=obj: _published(svc, o), 150, f"publication of {obj.key} through the sweep")


def test_overlapping_sweeps_start_one_run_per_object(svc: dict[str, Any]) -> None:
    """Two sweeps that both find an object unprocessed (its run not visible to either yet)
    start one run for it, not two: the idempotency key of flows.sweep.start_runs."""
    from prefect.client.orchestration import get_client
    from prefect.utilities.asyncutils import run_coro_as_sync

    from flows.objectstore import ObjectInfo
    from flows.sweep import start_runs

    key = f"landing/employees/never-there-{uuid.uuid4().hex[:8]}.csv"
    info = ObjectInfo(svc["env"]["PA_S3_BUCKET"], key, "0" * 32, 10)
    assert run_coro_as_sync(start_runs([info, info], timedelta(hours=1))) == 2
    assert run_coro_as_sync(start_runs([info], timedelta(hours=1))) == 1
    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs(limit=200) if (r.parameters or {}).get("key") == key]
    assert len(runs) == 1, [r.state_name for r in runs]


def test_a_run_that_published_before_its_worker_died_is_marked_completed(
    svc: dict[str, Any],
) -> None:
    """Killed after its publish committed, a run shows Crashed and no other run comes for
    its object (it is published): the sweep's check marks it Completed, and only a run the
    store names as the publisher."""
    from datetime import UTC, datetime

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Crashed

    from flows.inflight import settle_crashed_publishers

    later = datetime.now(UTC) + timedelta(hours=1)  # no worker takes it meanwhile
    ids = []
    for name in ("published", "not-published"):
        key = f"landing/employees/{name}-{uuid.uuid4().hex[:8]}.csv"
        run = run_deployment("process-object/process-object", timeout=0, as_subflow=False,
                             scheduled_time=later,
                             parameters={"bucket": "b", "key": key, "etag": "e" * 32})
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Crashed(message="worker killed"), force=True)
        ids.append((run.id, key))
    (published_id, published_key), (other_id, _) = ids

    def find_published(obj: ObjectVersion) -> str | None:
        return str(published_id) if obj.key == published_key else None

    assert settle_crashed_publishers(find_published) == 1
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(published_id).state.is_completed()
        assert client.read_flow_run(other_id).state.is_crashed()
    assert settle_crashed_publishers(find_published) == 0  # once


def test_bad_object_from_s3_is_quarantined(svc: dict[str, Any]) -> None:
    bucket = svc["env"]["PA_S3_BUCKET"]
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00binary"
    res = svc["minio"].put_object(
        bucket, "landing/employees/image.csv", io.BytesIO(data), len(data)
    )
    obj = ObjectVersion(bucket, "landing/employees/image.csv", res.etag.strip('"'), len(data))
    status, _ = _post(svc, minio_event(obj), svc["env"]["PA_RECEIVER_TOKEN"])
    assert status == 200

    def quarantined() -> bool:
        keys = {
            o.object_name
            for o in svc["minio"].list_objects(bucket, prefix="quarantine/", recursive=True)
        }
        return {
            "quarantine/employees/image.csv",
            "quarantine/employees/image.csv.report.json",
        } <= keys

    wait_until(quarantined, 120, "the quarantined object and its report")
    got = svc["minio"].get_object(bucket, "quarantine/employees/image.csv").read()
    assert got == data
    report = json.loads(
        svc["minio"].get_object(bucket, "quarantine/employees/image.csv.report.json").read()
    )
    assert report["status"] == "rejected" and "binary" in report["reason"]
