"""The object store behind one small protocol: a local folder, or S3 through the minio SDK.

Both use the same key layout (see ``flows.keys``). Callers pass keys, never paths, so the
same flow runs on the embedded default and on MinIO.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from flows.keys import AREAS
from flows.settings import Settings
from privacy.errors import InvalidKey, PipelineError, StorageUnavailable

log = logging.getLogger(__name__)


class ObjectVanished(PipelineError):
    """The object was removed or replaced while a run was reading it (usually by a concurrent
    run of the same object version); nothing is wrong with the data."""

    kind = "vanished"


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    etag: str
    size: int
    #: when the object was written, where the store says (listings); not part of equality
    modified: datetime | None = field(default=None, compare=False)


@runtime_checkable
class ObjectStore(Protocol):
    bucket: str

    def describe(self) -> str: ...
    def stat(self, key: str) -> ObjectInfo | None: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def put_file(self, key: str, path: Path) -> ObjectInfo: ...
    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...
    def local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]: ...
    def move(self, src: str, dst: str) -> None: ...
    def delete(self, key: str) -> None: ...


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKey(f"object key {key[:80]!r} is not allowed")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey(f"object key {key[:80]!r} is not allowed: empty or '..' segment")
    return key


# --------------------------------------------------------------------------- local folder


def file_digest(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)  # the same digest S3 uses as etag for single puts
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class LocalStore:
    """A folder laid out like a bucket: ``<root>/landing/...``. The etag is the file's MD5."""

    def __init__(self, root: Path, bucket: str = "local") -> None:
        self.root = root.resolve()
        self.bucket = bucket
        self._digests: dict[tuple[str, int, int], str] = {}
        for area in AREAS:
            (self.root / area).mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"local folder {self.root}"

    def path(self, key: str) -> Path:
        p = (self.root / _check_key(key)).resolve()
        if self.root not in p.parents:
            raise InvalidKey(f"object key {key[:80]!r} escapes the store")
        return p

    def _info(self, key: str, p: Path) -> ObjectInfo:
        st = p.stat()
        cache_key = (key, st.st_size, st.st_mtime_ns)
        etag = self._digests.get(cache_key)
        if etag is None:
            etag = file_digest(p)
            self._digests[cache_key] = etag
        return ObjectInfo(self.bucket, key, etag, st.st_size,
                          datetime.fromtimestamp(st.st_mtime, UTC))

    def stat(self, key: str) -> ObjectInfo | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return self._info(key, p)
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.path(prefix.rstrip("/")) if prefix else self.root  # never outside the root
        if not base.is_dir():
            return
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                key = p.relative_to(self.root).as_posix()
                with contextlib.suppress(FileNotFoundError):
                    yield self._info(key, p)

    def _atomic_write(self, key: str, writer: object) -> ObjectInfo:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(writer, bytes):
                    out.write(writer)
                else:
                    assert isinstance(writer, Path)
                    with writer.open("rb") as src:
                        shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            Path(tmp).replace(dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._info(key, dest)

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        return self._atomic_write(key, path)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return self._atomic_write(key, data)

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        p = self.path(key)
        if not p.is_file():
            raise ObjectVanished(f"{key} is no longer in the store")
        yield p

    def move(self, src: str, dst: str) -> None:
        s, d = self.path(src), self.path(dst)
        d.parent.mkdir(parents=True, exist_ok=True)
        s.replace(d)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


# --------------------------------------------------------------------------- S3 (minio SDK)


class S3Store:
    """Any S3 server through the minio SDK (MinIO in production, moto in tests)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
        create_bucket: bool = True,
    ) -> None:
        from minio import Minio

        self.endpoint = endpoint
        self.bucket = bucket
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        if create_bucket:
            with self._errors("check bucket"):
                if not self.client.bucket_exists(bucket):
                    self.client.make_bucket(bucket)

    def describe(self) -> str:
        return f"S3 bucket {self.bucket} at {self.endpoint}"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except (MinioException, HTTPError, OSError) as exc:
            raise StorageUnavailable(
                f"{self.describe()}: {what} failed ({type(exc).__name__}); check that the "
                "server is reachable and PA_S3_* settings are right"
            ) from None

    def _is_missing(self, exc: Exception) -> bool:
        code = getattr(exc, "code", "")
        return code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound", "NotFound")

    def stat(self, key: str) -> ObjectInfo | None:
        from minio.error import S3Error

        with self._errors("stat"):  # connection errors too, not only S3 error responses
            try:
                st = self.client.stat_object(self.bucket, _check_key(key))
            except S3Error as exc:
                if self._is_missing(exc):
                    return None
                raise StorageUnavailable(f"{self.describe()}: stat failed ({exc.code})") from None
        return ObjectInfo(self.bucket, key, (st.etag or "").strip('"'), st.size or 0)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._errors("list"):
            objs = list(self.client.list_objects(self.bucket, prefix=prefix, recursive=True))
        for o in objs:
            if o.object_name and not o.is_dir:
                yield ObjectInfo(self.bucket, o.object_name, (o.etag or "").strip('"'),
                                 o.size or 0, o.last_modified)

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        with self._errors("upload"):
            self.client.fput_object(self.bucket, _check_key(key), str(path))
        info = self.stat(key)
        assert info is not None
        return info

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        import io

        with self._errors("upload"):
            self.client.put_object(self.bucket, _check_key(key), io.BytesIO(data), len(data))
        info = self.stat(key)
        assert info is not None
        return info

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="pa-obj-") as tmp:
            dest = Path(tmp) / "object"
            from minio.error import S3Error

            with self._errors("download"):  # connection errors too
                try:
                    self.client.fget_object(self.bucket, _check_key(key), str(dest))
                except S3Error as exc:
                    if self._is_missing(exc):
                        raise ObjectVanished(f"{key} is no longer in the store") from None
                    raise StorageUnavailable(
                        f"{self.describe()}: download failed ({exc.code})"
                    ) from None
            yield dest

    def move(self, src: str, dst: str) -> None:
        from minio.commonconfig import CopySource

        with self._errors("move"):
            self.client.copy_object(self.bucket, _check_key(dst), CopySource(self.bucket, src))
            self.client.remove_object(self.bucket, src)

    def delete(self, key: str) -> None:
        with self._errors("delete"):
            self.client.remove_object(self.bucket, _check_key(key))


def open_store(settings: Settings) -> ObjectStore:
    """The object store the settings describe: S3 when PA_S3_ENDPOINT is set, else a folder."""
    if settings.uses_s3:
        settings.check_s3()
        assert settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key
        return S3Store(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    return LocalStore(settings.objects_dir, bucket=settings.s3_bucket)
