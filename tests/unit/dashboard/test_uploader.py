"""The write-only uploader: checked names, atomic writes into landing/<dataset>/, a size
limit, and an S3 implementation that only calls put_object."""

from __future__ import annotations

import ast
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.settings import DashboardSettings
from dashboard.uploader import (
    FolderUploader,
    S3Uploader,
    UploadTooLarge,
    check_size,
    landing_key,
    make_uploader,
)
from privacy.errors import InvalidKey, StorageUnavailable

BAD_DATASETS = ["", "../x", "a/b", ".hidden", "a b", "x" * 65, "emp\\loyees", "é"]
BAD_FILES = ["", "..", "../a.csv", "a/b.csv", "a\\b.csv", ".a.csv", "a..csv",
             "a.exe", "noext", "a.csv\x00.txt", "x" * 201 + ".csv", "-rf.csv"]


def test_landing_key() -> None:
    assert landing_key("employees", "projects-2024_Q1.csv") == (
        "landing/employees/projects-2024_Q1.csv"
    )
    for name in ("a.json", "a.jsonl", "a.ndjson", "a.parquet", "a.pq", "a.tsv", "A.CSV"):
        assert landing_key("employees", name).endswith(name)


@pytest.mark.parametrize("dataset", BAD_DATASETS)
def test_bad_dataset_names_are_refused(dataset: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidKey, match="dataset name"):
        FolderUploader(tmp_path).put(dataset, "a.csv", b"x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("filename", BAD_FILES)
def test_bad_file_names_are_refused(filename: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidKey, match="file name"):
        FolderUploader(tmp_path).put("employees", filename, b"x")
    assert list(tmp_path.iterdir()) == []


def test_folder_uploader_writes_atomically(tmp_path: Path) -> None:
    landing = tmp_path / "objects" / "landing"
    key = FolderUploader(landing).put("employees", "projects.csv", b"a,b\n1,2\n")
    assert key == "landing/employees/projects.csv"
    assert (landing / "employees" / "projects.csv").read_bytes() == b"a,b\n1,2\n"
    assert [p.name for p in (landing / "employees").iterdir()] == ["projects.csv"]


def test_folder_uploader_reports_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "landing"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StorageUnavailable, match="PA_DASHBOARD_LANDING_DIR"):
        FolderUploader(blocker).put("employees", "a.csv", b"x")


def test_size_limit() -> None:
    check_size("a.csv", 10, 10)
    with pytest.raises(UploadTooLarge, match="PA_DASHBOARD_MAX_UPLOAD_BYTES"):
        check_size("a.csv", 11, 10)


def test_make_uploader(tmp_path: Path) -> None:
    assert make_uploader(DashboardSettings()) is None
    assert isinstance(make_uploader(DashboardSettings(landing_dir=tmp_path)), FolderUploader)


def test_s3_uploader_only_puts_objects() -> None:
    """The S3 implementation calls put_object on its client and nothing else."""
    source = Path(__file__).resolve().parents[3] / "dashboard" / "uploader.py"
    tree = ast.parse(source.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "S3Uploader")
    calls = {n.func.attr for n in ast.walk(cls)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and isinstance(n.func.value, ast.Attribute) and n.func.value.attr == "_client"}
    assert calls == {"put_object"}


@pytest.fixture
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


def test_s3_uploader_puts_into_landing(s3_server: str) -> None:
    from minio import Minio

    admin = Minio(s3_server, access_key="admin", secret_key="admin-secret", secure=False)
    admin.make_bucket("pa-test")
    settings = DashboardSettings(s3_endpoint=s3_server, s3_bucket="pa-test",
                                 s3_put_access_key="put-only", s3_put_secret_key="put-secret")
    uploader = make_uploader(settings)
    assert isinstance(uploader, S3Uploader)
    key = uploader.put("employees", "projects.csv", b"a,b\n1,2\n")
    assert key == "landing/employees/projects.csv"
    obj = admin.get_object("pa-test", key)
    try:
        assert obj.read() == b"a,b\n1,2\n"
    finally:
        obj.close()
        obj.release_conn()


def test_s3_uploader_reports_an_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import urllib3

    uploader = S3Uploader(f"127.0.0.1:{port}", "pa-test", "put-only", "put-secret",
                          http_client=urllib3.PoolManager(retries=False, timeout=2))
    with pytest.raises(StorageUnavailable, match=r"could not put landing/employees/a\.csv"):
        uploader.put("employees", "a.csv", b"x")
