"""The upload page's write-only uploader: it can put a file into ``landing/<dataset>/``.

Nothing else: no listing, no reading, no deleting. Two implementations behind one protocol:

- :class:`FolderUploader` (embedded default) writes ``<landing dir>/<dataset>/<file>``
  atomically (a hidden ``.tmp-*`` file in the same folder, then a rename), the same way the
  pipeline's local object store writes, so the folder watcher never sees half a file.
- :class:`S3Uploader` calls the minio SDK's ``put_object`` and nothing else, with the
  credentials of a put-only identity. Its bucket policy must allow only ``s3:PutObject`` on
  ``arn:aws:s3:::<bucket>/landing/*``, so even a leaked key reads nothing::

      {"Version": "2012-10-17",
       "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"],
                      "Resource": ["arn:aws:s3:::privacy-analytics/landing/*"]}]}

Dataset names and file names are checked before any I/O.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from dashboard.settings import DashboardSettings
from privacy.errors import PipelineError, StorageUnavailable
from privacy.names import FORMAT_BY_SUFFIX, check_dataset, check_filename

#: CSV, JSON, JSON Lines and Parquet, as the pipeline's loader reads them
SUFFIXES = tuple(FORMAT_BY_SUFFIX)


class UploadTooLarge(PipelineError):
    """A file is over the dashboard's upload limit.

    >>> raise UploadTooLarge("big.csv is 80.0 MB; the upload limit is 50.0 MB")
    """

    kind = "too_large"


class Uploader(Protocol):
    """Puts one file into ``landing/<dataset>/<filename>``; returns the object key."""

    def put(self, dataset: str, filename: str, data: bytes) -> str: ...


def landing_key(dataset: str, filename: str) -> str:
    return f"landing/{check_dataset(dataset)}/{check_filename(filename, readable=True)}"


def check_size(filename: str, size: int, limit: int) -> None:
    if size > limit:
        raise UploadTooLarge(
            f"{filename} is {_mb(size)}; the upload limit is {_mb(limit)} "
            "(PA_DASHBOARD_MAX_UPLOAD_BYTES); drop bigger files into the bucket directly"
        )


def _mb(n: int) -> str:
    return f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n} bytes"


def _show(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 80 else text[:77] + "...")


class FolderUploader:
    """Adds files to a local landing folder; never reads, lists or deletes what is there."""

    def __init__(self, landing_dir: Path) -> None:
        self.landing_dir = Path(landing_dir).expanduser().resolve()

    def put(self, dataset: str, filename: str, data: bytes) -> str:
        key = landing_key(dataset, filename)
        folder = self.landing_dir / dataset
        dest = folder / filename
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                Path(tmp).replace(dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageUnavailable(
                f"could not write {key} into the landing folder {self.landing_dir}: "
                f"{exc.strerror or type(exc).__name__}; check that the folder exists and is "
                "writable (PA_DASHBOARD_LANDING_DIR)"
            ) from exc
        return key


class S3Uploader:
    """Puts objects with the minio SDK's ``put_object``; the credentials are put-only."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = False,
        region: str | None = None,
        http_client: Any = None,
    ) -> None:
        from minio import Minio  # imported lazily: only S3 mode needs it

        self.endpoint = endpoint
        self.bucket = bucket
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http_client,  # a urllib3.PoolManager, e.g. with other retries
        )

    def put(self, dataset: str, filename: str, data: bytes) -> str:
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError

        key = landing_key(dataset, filename)
        try:
            self._client.put_object(self.bucket, key, io.BytesIO(data), len(data))
        except (MinioException, HTTPError, OSError) as exc:
            raise StorageUnavailable(
                f"could not put {key} into bucket {self.bucket} at {self.endpoint}: "
                f"{type(exc).__name__}; check that the S3 server is running and that the "
                "put-only key may s3:PutObject on landing/*"
            ) from exc
        return key


def make_uploader(settings: DashboardSettings) -> Uploader | None:
    """The uploader the settings describe, or None when uploads are not configured."""
    if settings.s3_endpoint:
        assert settings.s3_put_access_key and settings.s3_put_secret_key is not None
        return S3Uploader(
            settings.s3_endpoint,
            settings.s3_bucket,
            settings.s3_put_access_key,
            settings.s3_put_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    if settings.landing_dir is not None:
        return FolderUploader(settings.landing_dir)
    return None
