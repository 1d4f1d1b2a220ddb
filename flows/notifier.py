"""MinIO-format bucket notifications for an S3 server that sends none (the one-machine topology).

In production MinIO does this itself: ``minio-setup`` (infra/minio/setup.sh) configures the
webhook target ``notify_webhook:pa`` and ``mc event add ... --event put --prefix landing/``,
and MinIO posts one S3 event record per created object to the receiver, queueing undelivered
events on disk and retrying them. The topology's S3 server is moto, which has no webhooks, so
this module stands in for those two parts of MinIO:

    python -m flows.notifier setup --config-dir DIR
        the `minio-setup` one-shot: reads minio-setup's own variables (MINIO_URL, BUCKET,
        RECEIVER_URL, RECEIVER_TOKEN_FILE, WEBHOOK_QUEUE_DIR, ...), creates the bucket and
        records the webhook target in DIR (MinIO keeps it in its config). Users and policies
        are not installed: moto does not enforce them.

    python -m flows.notifier watch --config-dir DIR --address HOST:PORT
        MinIO's notification subsystem: lists ``landing/`` of the bucket every
        ``--interval`` seconds with the root credentials (MINIO_ROOT_USER_FILE,
        MINIO_ROOT_PASSWORD_FILE, as MinIO reads them) and posts a MinIO-format
        ``s3:ObjectCreated:Put`` notification for every new object version, with the bearer
        token; a delivery that fails (receiver down: 5xx, refused) stays queued and is retried.

A listing sees an object version once even if it changes twice between two listings (MinIO
would send two events); the pipeline processes the current version either way, and the sweep
covers the rest, as it does for any S3 server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

log = logging.getLogger("privacy_analytics.notifier")

CONFIG_FILE = "notify_webhook.json"
PREFIX = "landing/"


def minio_record(bucket: str, key: str, etag: str, size: int) -> dict[str, Any]:
    """One notification as MinIO posts it for a put (keys query-escaped, '/' kept)."""
    now = datetime.now(UTC)
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{quote_plus(key, safe='/')}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "awsRegion": "",
                "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                "eventName": "s3:ObjectCreated:Put",
                "userIdentity": {"principalId": "pa-uploader"},
                "requestParameters": {"principalId": "pa-uploader", "region": "",
                                      "sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                                     "x-minio-origin-endpoint": "topology"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "Config",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "pa-admin"},
                               "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag,
                               "contentType": "application/octet-stream",
                               "sequencer": f"{time.time_ns():X}"},
                },
                "source": {"host": "127.0.0.1", "port": "", "userAgent": "pa-notifier"},
            }
        ],
    }


def post(url: str, token: str, body: dict[str, Any], timeout: float = 15.0) -> bool:
    """Deliver one notification; True on 2xx (MinIO retries anything else)."""
    req = urllib.request.Request(  # noqa: S310 - the configured webhook target
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError):
        return False


def _read(path: str) -> str:
    value = Path(path).read_text().strip()
    if not value:
        raise SystemExit(f"notifier: {path} is empty")
    return value


def _client(address: str, user: str, password: str) -> Any:
    from minio import Minio

    return Minio(address, access_key=user, secret_key=password, secure=False, region="us-east-1")


def setup(config_dir: Path) -> int:
    env = os.environ
    url = env.get("MINIO_URL", "http://minio:9000")
    bucket = env.get("BUCKET", "privacy-analytics")
    client = _client(url.split("://", 1)[-1], _read(env["MINIO_ROOT_USER_FILE"]),
                     _read(env["MINIO_ROOT_PASSWORD_FILE"]))
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    log.info("bucket %s exists", bucket)
    for var in ("PIPELINE_SECRET_KEY_FILE", "UPLOADER_SECRET_KEY_FILE"):
        _read(env[var])  # present and non-empty, as setup.sh checks them
    log.info("users %s and %s: not installed (this S3 server does not enforce policies)",
             env.get("PIPELINE_ACCESS_KEY"), env.get("UPLOADER_ACCESS_KEY"))
    target = {"endpoint": env["RECEIVER_URL"], "auth_token": _read(env["RECEIVER_TOKEN_FILE"]),
              "queue_dir": env.get("WEBHOOK_QUEUE_DIR", ""), "bucket": bucket, "prefix": PREFIX,
              "events": ["put"]}
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / CONFIG_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the token
    with os.fdopen(fd, "w") as f:
        json.dump(target, f)
    log.info("webhook target -> %s; notification: put under %s", target["endpoint"], PREFIX)
    return 0


def watch(config_dir: Path, address: str, interval: float) -> int:
    path = config_dir / CONFIG_FILE
    while not path.is_file():  # written by `setup` (minio-setup)
        time.sleep(0.5)
    target = json.loads(path.read_text())
    env = os.environ
    client = _client(address, _read(env["MINIO_ROOT_USER_FILE"]),
                     _read(env["MINIO_ROOT_PASSWORD_FILE"]))
    bucket, url, token = target["bucket"], target["endpoint"], target["auth_token"]
    seen: dict[str, str] = {}
    queue: deque[dict[str, Any]] = deque()
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _f: stop.append(signum))
    log.info("notifying %s of puts under %s/%s", url, bucket, target["prefix"])
    delivered = 0
    while not stop:
        try:
            listed = {o.object_name: ((o.etag or "").strip('"'), o.size or 0) for o in
                      client.list_objects(bucket, prefix=target["prefix"], recursive=True)
                      if o.object_name and not o.is_dir}
        except Exception as exc:  # noqa: BLE001 - the server restarting: try again
            log.warning("listing failed (%s)", type(exc).__name__)
            time.sleep(interval)
            continue
        for key, (etag, size) in listed.items():
            if seen.get(key) != etag:
                queue.append(minio_record(bucket, key, etag, size))
        seen = {key: etag for key, (etag, _) in listed.items()}
        while queue and not stop:
            if not post(url, token, queue[0]):
                log.warning("delivery to %s failed; %d event(s) queued", url, len(queue))
                break
            queue.popleft()
            delivered += 1
        time.sleep(interval)
    log.info("stopped after %d notification(s)", delivered)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level="INFO", format="%(asctime)s notifier %(levelname)s %(message)s")
    ap = argparse.ArgumentParser(prog="python -m flows.notifier", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup", help="the minio-setup one-shot: bucket and webhook target")
    s.add_argument("--config-dir", type=Path, required=True)
    w = sub.add_parser("watch", help="post MinIO-format notifications for new objects")
    w.add_argument("--config-dir", type=Path, required=True)
    w.add_argument("--address", required=True, help="host:port of the S3 server")
    w.add_argument("--interval", type=float, default=0.5)
    args = ap.parse_args(argv)
    if args.command == "setup":
        return setup(args.config_dir)
    return watch(args.config_dir, args.address, args.interval)


if __name__ == "__main__":
    sys.exit(main())
