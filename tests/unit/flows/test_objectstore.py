"""The object store protocol (flows.objectstore): a local folder, and S3 against a real moto
server over HTTP. Both must behave the same for everything the pipeline relies on."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from minio import Minio

from flows.objectstore import (
    LocalStore,
    ObjectInfo,
    ObjectStore,
    ObjectVanished,
    S3Store,
    file_digest,
    open_store,
)
from flows.settings import Settings
from privacy.errors import InvalidKey, PipelineError, StorageUnavailable
from tests.conftest import free_port

PAYLOAD = b"employee_id,team\nE1,Atlas\nE2,Draco\n"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _s3(env: dict[str, str], bucket: str | None = None, **kw: Any) -> S3Store:
    return S3Store(
        env["PA_S3_ENDPOINT"],
        env["PA_S3_ACCESS_KEY"],
        env["PA_S3_SECRET_KEY"],
        bucket or f"pa-{uuid.uuid4().hex[:12]}",
        region=env["PA_S3_REGION"],
        **kw,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects", bucket="local-bucket")
    return _s3(request.getfixturevalue("s3_server"))


def test_both_stores_implement_the_protocol(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    where = store.describe()
    assert (str(store.root) if isinstance(store, LocalStore) else store.bucket) in where


def test_put_stat_list_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(PAYLOAD)
    info = store.put_file("landing/employees/a.csv", src)
    assert info == ObjectInfo(store.bucket, "landing/employees/a.csv", md5(PAYLOAD), len(PAYLOAD))
    assert store.stat("landing/employees/a.csv") == info
    other = store.put_bytes("landing/hr/b.json", b"[]")
    assert other.etag == md5(b"[]") and other.size == 2
    store.put_bytes("quarantine/hr/c.csv", b"x")
    assert sorted(i.key for i in store.list("landing/")) == [
        "landing/employees/a.csv",
        "landing/hr/b.json",
    ]
    assert [i.key for i in store.list("quarantine/")] == ["quarantine/hr/c.csv"]
    assert list(store.list("masked/")) == []
    assert {i.key: i for i in store.list("landing/")}["landing/employees/a.csv"] == info


def test_stat_of_a_missing_object_is_none(store: ObjectStore) -> None:
    assert store.stat("landing/employees/none.csv") is None


def test_put_overwrites_and_the_etag_follows_the_content(store: ObjectStore) -> None:
    first = store.put_bytes("landing/ds/a.csv", b"a\n1\n")
    second = store.put_bytes("landing/ds/a.csv", b"a\n2\n")
    assert first.etag != second.etag
    assert store.stat("landing/ds/a.csv") == second


def test_local_copy_yields_the_content(store: ObjectStore) -> None:
    store.put_bytes("masked/ds/a.parquet", PAYLOAD)
    with store.local_copy("masked/ds/a.parquet") as path:
        assert path.read_bytes() == PAYLOAD
        assert file_digest(path) == md5(PAYLOAD)


def test_local_copy_of_a_missing_object_is_vanished(store: ObjectStore) -> None:
    with pytest.raises(ObjectVanished) as err, store.local_copy("landing/ds/gone.csv"):
        pass
    assert "landing/ds/gone.csv" in str(err.value)
    assert err.value.kind == "vanished"


def test_move_keeps_the_bytes_and_removes_the_source(store: ObjectStore) -> None:
    info = store.put_bytes("landing/ds/a.csv", PAYLOAD)
    store.move("landing/ds/a.csv", "quarantine/ds/a.csv")
    assert store.stat("landing/ds/a.csv") is None
    moved = store.stat("quarantine/ds/a.csv")
    assert moved is not None and moved.etag == info.etag and moved.size == info.size
    with store.local_copy("quarantine/ds/a.csv") as path:
        assert path.read_bytes() == PAYLOAD


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put_bytes("landing/ds/a.csv", PAYLOAD)
    store.delete("landing/ds/a.csv")
    assert store.stat("landing/ds/a.csv") is None
    store.delete("landing/ds/a.csv")  # already gone: no error


def test_keys_with_spaces_and_plus_round_trip(store: ObjectStore) -> None:
    key = "landing/ds/Report 1+2 (final).csv"
    store.put_bytes(key, PAYLOAD)
    assert [i.key for i in store.list("landing/ds/")] == [key]
    assert store.stat(key) is not None


BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "landing/../../outside",
    "landing/./a",
    "a\\b",
    "landing/a\x00b",
    "landing//a",
    "landing/ds/..",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused_before_any_io(store: ObjectStore, key: str) -> None:
    for call in (
        lambda: store.stat(key),
        lambda: store.put_bytes(key, b"x"),
        lambda: store.delete(key),
        lambda: store.move("landing/ds/a.csv", key),
    ):
        with pytest.raises(InvalidKey):
            call()
    with pytest.raises(InvalidKey), store.local_copy(key):
        pass


# --------------------------------------------------------------------------- local folder only


def test_local_store_lays_out_the_areas(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "o")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "landing", "masked", "quarantine", "release-input"
    ]
    assert store.path("landing/ds/a.csv") == (tmp_path / "o" / "landing" / "ds" / "a.csv").resolve()


def test_local_store_refuses_symlinks_that_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(b"x")
    store = LocalStore(tmp_path / "o")
    (store.root / "landing" / "ds").symlink_to(outside)
    with pytest.raises(InvalidKey, match="escapes the store"):
        store.stat("landing/ds/secret.csv")
    with pytest.raises(InvalidKey):
        store.delete("landing/ds/secret.csv")
    assert (outside / "secret.csv").exists()


def test_local_list_refuses_a_prefix_outside_the_store(tmp_path: Path) -> None:
    (tmp_path / "secret.csv").write_bytes(b"x")
    store = LocalStore(tmp_path / "o")
    for prefix in ("../", "/", "landing/../../"):
        with pytest.raises(InvalidKey):
            list(store.list(prefix))


def test_local_list_skips_hidden_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "o")
    store.put_bytes("landing/ds/a.csv", b"x")
    (store.root / "landing" / "ds" / ".a.csv.part").write_bytes(b"half")
    (store.root / "landing" / "ds" / ".DS_Store").write_bytes(b"junk")
    assert [i.key for i in store.list("landing/")] == ["landing/ds/a.csv"]
    assert list(store.list("landing/nonexistent/")) == []


class _ExplodingPath(type(Path())):  # type: ignore[misc]
    """A source file whose read fails after the first chunk (a disk error mid-copy)."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        class _Reader(io.BytesIO):
            calls = 0

            def read(self, n: int | None = -1) -> bytes:
                self.calls += 1
                if self.calls > 1:
                    raise OSError("disk error mid-copy")
                return b"partial,content\n" * 100

        return _Reader()


def test_local_write_is_atomic_when_the_writer_fails(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "o")
    folder = store.root / "landing" / "ds"
    with pytest.raises(OSError, match="mid-copy"):
        store.put_file("landing/ds/new.csv", _ExplodingPath(tmp_path / "whatever"))
    assert not (folder / "new.csv").exists()
    assert list(folder.iterdir()) == []  # no temp file left behind either
    # an existing object is left intact, not truncated
    before = store.put_bytes("landing/ds/a.csv", PAYLOAD)
    with pytest.raises(OSError):
        store.put_file("landing/ds/a.csv", _ExplodingPath(tmp_path / "whatever"))
    assert (folder / "a.csv").read_bytes() == PAYLOAD
    assert store.stat("landing/ds/a.csv") == before
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv"]


def test_local_etag_is_recomputed_when_the_file_changes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "o")
    store.put_bytes("landing/ds/a.csv", b"one")
    p = store.path("landing/ds/a.csv")
    p.write_bytes(b"two!")
    os.utime(p, ns=(1, 1))
    assert store.stat("landing/ds/a.csv") == ObjectInfo(
        "local", "landing/ds/a.csv", md5(b"two!"), 4
    )


def test_file_digest_matches_hashlib_on_a_multi_chunk_file(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    p = tmp_path / "big.bin"
    p.write_bytes(data)
    assert file_digest(p) == md5(data)


# --------------------------------------------------------------------------- S3 only


def test_s3_etag_is_the_md5_the_server_reports(s3_server: dict[str, str], tmp_path: Path) -> None:
    store = _s3(s3_server)
    src = tmp_path / "a.csv"
    src.write_bytes(PAYLOAD)
    info = store.put_file("landing/ds/a.csv", src)
    raw = store.client.stat_object(store.bucket, "landing/ds/a.csv")
    assert info.etag == raw.etag.strip('"') == md5(PAYLOAD)


def test_s3_move_is_copy_then_delete(s3_server: dict[str, str]) -> None:
    store = _s3(s3_server)
    store.put_bytes("landing/ds/a.csv", PAYLOAD)
    store.move("landing/ds/a.csv", "quarantine/ds/a.csv")
    names = sorted(o.object_name for o in store.client.list_objects(store.bucket, recursive=True))
    assert names == ["quarantine/ds/a.csv"]


def test_s3_creates_its_bucket_once(s3_server: dict[str, str]) -> None:
    bucket = f"pa-{uuid.uuid4().hex[:12]}"
    first = _s3(s3_server, bucket)
    first.put_bytes("landing/ds/a.csv", b"x")
    second = _s3(s3_server, bucket)  # bucket exists already: no error, nothing lost
    assert second.stat("landing/ds/a.csv") is not None


def test_open_store_picks_s3_or_the_folder(s3_server: dict[str, str], tmp_path: Path) -> None:
    local = open_store(Settings(state_dir=tmp_path, s3_bucket="bk"))
    assert isinstance(local, LocalStore) and local.root == (tmp_path / "objects").resolve()
    assert local.bucket == "bk"
    s3 = open_store(
        Settings(
            state_dir=tmp_path,
            s3_endpoint=s3_server["PA_S3_ENDPOINT"],
            s3_access_key="testing",
            s3_secret_key="testing-secret",  # type: ignore[arg-type]
            s3_bucket=f"pa-{uuid.uuid4().hex[:12]}",
            s3_region="us-east-1",
        )
    )
    assert isinstance(s3, S3Store)
    with pytest.raises(PipelineError, match="PA_S3_SECRET_KEY"):
        open_store(Settings(state_dir=tmp_path, s3_endpoint="127.0.0.1:1", s3_access_key="a"))


@pytest.fixture
def dead_endpoint() -> Iterator[str]:
    port = free_port()  # bound and released: nothing listens there
    yield f"127.0.0.1:{port}"


def test_s3_down_at_start_is_storage_unavailable(dead_endpoint: str) -> None:
    with pytest.raises(StorageUnavailable) as err:
        S3Store(dead_endpoint, "a", "b", "some-bucket")
    msg = str(err.value)
    assert dead_endpoint in msg and "some-bucket" in msg
    assert "reachable" in msg and "PA_S3_" in msg


def test_every_s3_operation_reports_storage_unavailable_when_down(
    dead_endpoint: str, tmp_path: Path
) -> None:
    store = S3Store(dead_endpoint, "a", "b", "some-bucket", create_bucket=False)
    # no retries, so the test is quick; the behaviour under test is our error translation
    store.client = Minio(
        dead_endpoint,
        access_key="a",
        secret_key="b",
        secure=False,
        http_client=urllib3.PoolManager(retries=False),
    )
    src = tmp_path / "a.csv"
    src.write_bytes(b"x")
    calls = {
        "stat": lambda: store.stat("landing/ds/a.csv"),
        "list": lambda: list(store.list("landing/")),
        "put_file": lambda: store.put_file("landing/ds/a.csv", src),
        "put_bytes": lambda: store.put_bytes("landing/ds/a.csv", b"x"),
        "move": lambda: store.move("landing/ds/a.csv", "quarantine/ds/a.csv"),
        "delete": lambda: store.delete("landing/ds/a.csv"),
    }
    for name, call in calls.items():
        with pytest.raises(StorageUnavailable) as err:
            call()
        assert dead_endpoint in str(err.value), name
    with pytest.raises(StorageUnavailable), store.local_copy("landing/ds/a.csv"):
        pass
