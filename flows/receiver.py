"""HTTP receiver for MinIO bucket notifications (webhook target).

MinIO posts S3 event JSON; object keys arrive URL-encoded. Every ``s3:ObjectCreated:*``
record under ``landing/`` becomes a ``<ns>.object.created`` Prefect event. The receiver
answers 2xx only after the events are handed to Prefect, so MinIO retries otherwise.

Set up MinIO with (see infra/minio/setup.sh):

    mc admin config set ALIAS notify_webhook:pa endpoint=http://HOST:8765/minio/events \
        auth_token=<PA_RECEIVER_TOKEN>
    mc event add ALIAS/BUCKET arn:minio:sqs::pa:webhook --event put --prefix landing/
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any
from urllib.parse import unquote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flows.events import emit_objects
from flows.keys import parse_landing_key
from flows.objectstore import ObjectInfo
from flows.settings import Settings
from privacy.errors import InvalidKey

log = logging.getLogger("privacy_analytics.receiver")
MAX_BODY = 1 << 20


def parse_minio_event(body: dict[str, Any]) -> tuple[list[ObjectInfo], list[dict[str, str]]]:
    """Objects created under landing/ in an S3/MinIO notification, and the refused keys."""
    accepted: list[ObjectInfo] = []
    refused: list[dict[str, str]] = []
    records = body.get("Records")
    if not isinstance(records, list):
        raise ValueError("no Records list")
    for rec in records:
        if not isinstance(rec, dict):
            continue
        name = str(rec.get("eventName", ""))
        if "ObjectCreated" not in name:
            continue
        s3 = rec.get("s3") or {}
        bucket = str((s3.get("bucket") or {}).get("name", ""))
        obj = s3.get("object") or {}
        key = unquote_plus(str(obj.get("key", "")))
        if not key.startswith("landing/"):
            continue
        try:
            parse_landing_key(key)
        except InvalidKey as exc:
            refused.append({"key": key[:200], "reason": str(exc)})
            continue
        etag = str(obj.get("eTag") or obj.get("etag") or "").strip('"')
        size = int(obj.get("size") or 0)
        accepted.append(ObjectInfo(bucket, key, etag, size))
    return accepted, refused


def create_app(token: str | None, namespace: str) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def events(request: Request) -> JSONResponse:
        if token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return JSONResponse({"error": "notification too large"}, status_code=413)
        body_bytes = await request.body()
        if len(body_bytes) > MAX_BODY:
            return JSONResponse({"error": "notification too large"}, status_code=413)
        try:
            body = json.loads(body_bytes or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
            accepted, refused = parse_minio_event(body)
        except (ValueError, TypeError, AttributeError):  # a record of the wrong shape
            return JSONResponse(
                {"error": "not an S3 event notification (expected JSON with Records)"},
                status_code=400,
            )
        for r in refused:
            log.warning("refused object: %s", r["reason"])
        if accepted:
            try:
                await emit_objects(accepted, namespace, "webhook")
            except Exception:
                log.exception("could not hand events to Prefect")
                return JSONResponse({"error": "Prefect server unavailable; retry"}, status_code=503)
        return JSONResponse({"accepted": len(accepted), "refused": refused})

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET", "HEAD"]),
            Route("/minio/events", events, methods=["POST"]),
            Route("/", events, methods=["POST"]),
        ]
    )


def main() -> None:
    import uvicorn

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s receiver %(levelname)s %(message)s"
    )
    token = settings.receiver_token_value()
    if not token:
        raise SystemExit(
            "receiver: no bearer token; set PA_RECEIVER_TOKEN or run 'privacy-analytics up' once"
        )
    app = create_app(token, settings.event_namespace)
    uvicorn.run(app, host=settings.receiver_host, port=settings.receiver_port, log_level="warning")


if __name__ == "__main__":
    main()
