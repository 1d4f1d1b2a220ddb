"""The pieces of the one-machine topology that need no running services: per-dataset limit
names, the crashed-run automation, MinIO-format notifications (what the receiver parses), the
notifier against a real S3 server (moto) and a stand-in webhook, and process bookkeeping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from flows.concurrency import dataset_of, limit_name, tag
from flows.crashes import AUTOMATION_NAME, crash_detection
from flows.inflight import is_inflight
from flows.notifier import minio_record
from flows.proctree import descendants
from flows.receiver import parse_minio_event
from tests.conftest import free_port


def test_limit_and_tag_names_follow_the_dataset() -> None:
    assert limit_name("employees") == "pa-dataset-employees"
    assert tag("employees") == "pa-dataset:employees"
    assert dataset_of("landing/employees/q1 report.csv") == "employees"
    assert dataset_of("landing/../etc/passwd") is None
    assert dataset_of("masked/employees/a.parquet") is None


def test_inflight_matches_the_version_or_an_unknown_etag() -> None:
    found = {("landing/a/x.csv", "e1"), ("landing/a/y.csv", "")}
    assert is_inflight(found, "landing/a/x.csv", "e1")
    assert not is_inflight(found, "landing/a/x.csv", "e2")  # a newer version: not on its way
    assert is_inflight(found, "landing/a/y.csv", "anything")


def test_crash_detection_is_prefect_s_zombie_recipe() -> None:
    from prefect.client.schemas.objects import StateType
    from prefect.events.schemas.automations import Posture

    a = crash_detection(30)
    assert a.name == AUTOMATION_NAME
    t = a.trigger
    assert t.posture == Posture.Proactive and t.within.total_seconds() == 90
    assert t.after == {"prefect.flow-run.heartbeat"}
    # a run that requeues itself, completes or is rejected is not crashed
    for name in ("heartbeat", "Completed", "Rejected", "Skipped", "AwaitingConcurrencySlot",
                 "Failed", "Crashed", "Cancelled"):
        assert f"prefect.flow-run.{name}" in t.expect
    assert t.for_each == {"prefect.resource.id"}
    (action,) = a.actions
    assert action.state == StateType.CRASHED


@pytest.mark.parametrize("key", ["landing/employees/a.csv", "landing/ds/Q1 report + final (v2).csv"])
def test_notifications_parse_as_minio_s(key: str) -> None:
    body = json.loads(json.dumps(minio_record("pa-bucket", key, "0123abcd", 42)))
    accepted, refused = parse_minio_event(body)
    assert refused == []
    (info,) = accepted
    assert (info.bucket, info.key, info.etag, info.size) == ("pa-bucket", key, "0123abcd", 42)
    assert body["Records"][0]["eventName"] == "s3:ObjectCreated:Put"
    assert body["Records"][0]["eventSource"] == "minio:s3"


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if type(self).fail_first > 0:  # the receiver is down: MinIO retries
            type(self).fail_first -= 1
            self.send_response(503)
        else:
            assert self.headers["Authorization"] == "Bearer tok-123"
            type(self).received.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Webhook]]]:
    _Webhook.received, _Webhook.fail_first = [], 2
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/minio/events", _Webhook
    server.shutdown()


def test_notifier_posts_each_new_object_once(
    tmp_path: Path, webhook: tuple[str, type[_Webhook]]
) -> None:
    from minio import Minio
    from moto.server import ThreadedMotoServer

    url, hook = webhook
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, value in {"root_user": "admin", "root_pw": "admin-password", "token": "tok-123",
                        "pipe": "p" * 20, "up": "u" * 20}.items():
        (secrets / name).write_text(value + "\n")
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path),
        "MINIO_URL": f"http://127.0.0.1:{port}", "BUCKET": "notify-bucket",
        "MINIO_ROOT_USER_FILE": str(secrets / "root_user"),
        "MINIO_ROOT_PASSWORD_FILE": str(secrets / "root_pw"),
        "PIPELINE_ACCESS_KEY": "pa-pipeline", "PIPELINE_SECRET_KEY_FILE": str(secrets / "pipe"),
        "UPLOADER_ACCESS_KEY": "pa-uploader", "UPLOADER_SECRET_KEY_FILE": str(secrets / "up"),
        "RECEIVER_URL": url, "RECEIVER_TOKEN_FILE": str(secrets / "token"),
        "WEBHOOK_QUEUE_DIR": str(tmp_path / "events"),
    }
    config = tmp_path / "minio"
    watcher = None
    try:
        setup = subprocess.run([sys.executable, "-m", "flows.notifier", "setup", "--config-dir",
                                str(config)], env=env, capture_output=True, text=True, timeout=60)
        assert setup.returncode == 0, setup.stderr
        assert (config / "notify_webhook.json").stat().st_mode & 0o077 == 0  # holds the token
        client = Minio(f"127.0.0.1:{port}", access_key="x", secret_key="y" * 20, secure=False,
                       region="us-east-1")
        assert client.bucket_exists("notify-bucket")
        client.put_object("notify-bucket", "landing/ds/a.csv", _bytes(b"a\n1\n"), 4)
        client.put_object("notify-bucket", "quarantine/ds/b.csv", _bytes(b"b\n2\n"), 4)  # not landing/
        watcher = subprocess.Popen(
            [sys.executable, "-m", "flows.notifier", "watch", "--config-dir", str(config),
             "--address", f"127.0.0.1:{port}", "--interval", "0.2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _until(lambda: len(hook.received) == 1, 60)
        client.put_object("notify-bucket", "landing/ds/c.csv", _bytes(b"c\n3\n"), 4)
        _until(lambda: len(hook.received) == 2, 30)
        time.sleep(1.0)  # nothing new: nothing sent again
        keys = [parse_minio_event(b)[0][0].key for b in hook.received]
        assert keys == ["landing/ds/a.csv", "landing/ds/c.csv"]
        assert hook.fail_first == 0, "the failed deliveries were retried"
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(timeout=20)
        moto.stop()


def _bytes(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def _until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_descendants_finds_grandchildren() -> None:
    child = subprocess.Popen([sys.executable, "-c",
                              "import subprocess, sys, time; "
                              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
                              "time.sleep(30)"])
    try:
        _until(lambda: len(descendants(child.pid)) == 1, 20)
        assert descendants(os.getpid()).count(child.pid) == 1
    finally:
        for p in [*descendants(child.pid), child.pid]:
            os.kill(p, 9)
        child.wait()
