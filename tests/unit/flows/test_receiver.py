"""The MinIO webhook receiver (flows.receiver): event parsing and the HTTP app."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Iterable
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette's notice that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import flows.receiver as receiver
from flows.objectstore import ObjectInfo
from flows.receiver import MAX_BODY, create_app, parse_minio_event

TOKEN = "s3cr3t-token"

# A notification exactly as MinIO (RELEASE.2024) posts it for `mc cp`: keys URL-encoded with
# url.QueryEscape (space -> '+', '+' -> '%2B', '%' -> '%25').
MINIO_EVENT: dict[str, Any] = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "pa/landing/employees/Q1+report+%2B+final+%28v2%29.csv",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2024-05-01T10:00:00.000Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "uploader"},
            "requestParameters": {
                "principalId": "uploader",
                "region": "",
                "sourceIPAddress": "10.0.0.2",
            },
            "responseElements": {
                "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
                "x-amz-request-id": "17CB3C1B2E2B4C5A",
                "x-minio-deployment-id": "1f4f4c3c",
                "x-minio-origin-endpoint": "http://10.0.0.1:9000",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {
                    "name": "pa",
                    "ownerIdentity": {"principalId": "uploader"},
                    "arn": "arn:aws:s3:::pa",
                },
                "object": {
                    "key": "landing/employees/Q1+report+%2B+final+%28v2%29.csv",
                    "size": 1234,
                    "eTag": "0123456789abcdef0123456789abcdef",
                    "contentType": "text/csv",
                    "userMetadata": {"content-type": "text/csv"},
                    "sequencer": "17CB3C1B2E9C1B2D",
                },
            },
            "source": {
                "host": "10.0.0.2",
                "port": "",
                "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70 mc/RELEASE.2024-04-29",
            },
        }
    ],
}


def _record(key: str, event: str = "s3:ObjectCreated:Put", **obj: Any) -> dict[str, Any]:
    rec = copy.deepcopy(MINIO_EVENT["Records"][0])
    rec["eventName"] = event
    rec["s3"]["object"]["key"] = key
    rec["s3"]["object"].update(obj)
    return rec


def test_parse_a_real_minio_notification() -> None:
    accepted, refused = parse_minio_event(MINIO_EVENT)
    assert refused == []
    assert accepted == [
        ObjectInfo(
            "pa",
            "landing/employees/Q1 report + final (v2).csv",
            "0123456789abcdef0123456789abcdef",
            1234,
        )
    ]


def test_quoted_etag_and_lowercase_etag_field() -> None:
    rec = _record("landing/ds/a.csv", eTag='"abc"')
    rec2 = _record("landing/ds/b.csv")
    del rec2["s3"]["object"]["eTag"]
    rec2["s3"]["object"]["etag"] = "def"
    accepted, _ = parse_minio_event({"Records": [rec, rec2]})
    assert [a.etag for a in accepted] == ["abc", "def"]


def test_only_object_created_under_landing_is_accepted() -> None:
    body = {
        "Records": [
            _record("landing/ds/a.csv", "s3:ObjectCreated:CompleteMultipartUpload"),
            _record("landing/ds/b.csv", "s3:ObjectRemoved:Delete"),
            _record("landing/ds/c.csv", "s3:ObjectAccessed:Get"),
            _record("quarantine/ds/d.csv"),
            _record("masked/ds/e.parquet"),
            _record("other.csv"),
            "not a record",
            {"eventName": "s3:ObjectCreated:Put"},  # no s3 part: key '' is not under landing/
        ]
    }
    accepted, refused = parse_minio_event(body)
    assert [a.key for a in accepted] == ["landing/ds/a.csv"]
    assert refused == []


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("landing/..%2F..%2Fetc/passwd", "not of the form"),
        ("landing/ds/..", "file name"),
        ("landing/ds/sub/a.csv", "not of the form"),
        ("landing/bad+name/a.csv", "dataset name"),
        ("landing/ds/a%00.csv", "unsafe"),
        ("landing/ds/.hidden.csv", "file name"),
    ],
)
def test_bad_keys_are_refused_with_reasons(encoded: str, reason: str) -> None:
    accepted, refused = parse_minio_event(
        {"Records": [_record(encoded), _record("landing/ds/ok.csv")]}
    )
    assert [a.key for a in accepted] == ["landing/ds/ok.csv"]
    assert len(refused) == 1
    assert reason in refused[0]["reason"]
    assert refused[0]["key"].startswith("landing/")


@pytest.mark.parametrize("body", [{}, {"Records": "x"}, {"Records": None}, {"records": []}])
def test_no_records_list_is_not_an_event(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Records"):
        parse_minio_event(body)


# --------------------------------------------------------------------------- the app


class Emitted:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[list[ObjectInfo], str, str]] = []
        self.fail = fail

    async def __call__(self, infos: Iterable[ObjectInfo], namespace: str, source: str) -> int:
        if self.fail:
            raise ConnectionError("Prefect server down")
        items = list(infos)
        self.calls.append((items, namespace, source))
        return len(items)


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> Emitted:
    e = Emitted()
    monkeypatch.setattr(receiver, "emit_objects", e)
    return e


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(TOKEN, "tns"))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_health(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert client.head("/health").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
def test_401_without_the_right_token(
    client: TestClient, emitted: Emitted, headers: dict[str, str]
) -> None:
    r = client.post("/minio/events", json=MINIO_EVENT, headers=headers)
    assert r.status_code == 401
    assert TOKEN not in r.text
    assert emitted.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1,2]",
        b'"x"',
        b'{"Records": 5}',
        b'{"hello": "world"}',
        b"\xff\xfe",
        json.dumps({"Records": [_record("landing/ds/a.csv", size="many")]}).encode(),
    ],
)
def test_400_on_bodies_that_are_not_s3_events(
    client: TestClient, emitted: Emitted, body: bytes
) -> None:
    r = client.post("/minio/events", content=body, headers=AUTH)
    assert r.status_code == 400
    assert "S3 event" in r.json()["error"]
    assert emitted.calls == []


def test_400_on_a_malformed_record(client: TestClient, emitted: Emitted) -> None:
    body = {"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": "garbage"}]}
    r = client.post("/minio/events", json=body, headers=AUTH)
    assert r.status_code == 400
    assert emitted.calls == []


def test_413_on_oversize(client: TestClient, emitted: Emitted) -> None:
    r = client.post("/minio/events", content=b" " * (MAX_BODY + 1), headers=AUTH)
    assert r.status_code == 413
    assert emitted.calls == []


def test_200_after_the_events_are_handed_over(client: TestClient, emitted: Emitted) -> None:
    body = {"Records": [*MINIO_EVENT["Records"], _record("landing/ds/..")]}
    r = client.post("/minio/events", json=body, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["accepted"] == 1
    assert len(r.json()["refused"]) == 1
    assert len(emitted.calls) == 1
    infos, namespace, source = emitted.calls[0]
    assert [i.key for i in infos] == ["landing/employees/Q1 report + final (v2).csv"]
    assert (namespace, source) == ("tns", "webhook")


def test_root_path_also_receives(client: TestClient, emitted: Emitted) -> None:
    assert client.post("/", json=MINIO_EVENT, headers=AUTH).json()["accepted"] == 1


def test_nothing_to_emit_is_still_200(client: TestClient, emitted: Emitted) -> None:
    r = client.post(
        "/minio/events", json={"Records": [_record("quarantine/ds/a.csv")]}, headers=AUTH
    )
    assert r.status_code == 200 and r.json() == {"accepted": 0, "refused": []}
    assert emitted.calls == []
    # MinIO's connectivity probe: an empty body
    assert client.post("/minio/events", content=b"", headers=AUTH).status_code == 400


def test_503_when_prefect_is_unreachable(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receiver, "emit_objects", Emitted(fail=True))
    r = client.post("/minio/events", json=MINIO_EVENT, headers=AUTH)
    assert r.status_code == 503
    assert "retry" in r.json()["error"]


def test_no_token_configured_means_no_auth(emitted: Emitted) -> None:
    c = TestClient(create_app(None, "tns"))
    assert c.post("/minio/events", json=MINIO_EVENT).status_code == 200


def test_get_on_the_event_route_is_not_allowed(client: TestClient) -> None:
    assert client.get("/minio/events", headers=AUTH).status_code == 405
