"""Fixtures for the flows/ unit tests: the real S3 server (moto over HTTP) is shared with the
integration tests."""

from __future__ import annotations

from tests.integration.conftest import s3_server  # noqa: F401 - a session fixture
