"""What a run's tasks may say when something goes wrong: library messages (polars, pyarrow,
Great Expectations) can quote cell values, so unexpected errors are re-raised by type and
code location only, before Prefect logs them."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import polars as pl
from prefect import get_run_logger

from privacy.errors import InputRejected, PipelineError

P = ParamSpec("P")
R = TypeVar("R")


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The Prefect run logger, or this module's logger outside a run (direct calls in tests)."""
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a run context
        return logging.getLogger("flows.process_object")  # the flow's own logger


def internal_error(exc: BaseException) -> str:
    """Describe an unexpected error by type and code location only."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if "/site-packages/" not in f.filename
    ]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return (
        f"internal error ({type(exc).__name__}{where}); the file stays in landing/ and the "
        "sweep will retry it; please report this with the run id"
    )


def polars_guard(what: str, exc: Exception) -> InputRejected:
    """A polars error as a counts-only rejection: only the error class is kept."""
    return InputRejected(f"{what} failed while reading the file ({type(exc).__name__})")


@contextmanager
def polars_errors(what: str) -> Iterator[None]:
    """Turn a polars error raised inside the block into :func:`polars_guard`'s rejection."""
    try:
        yield
    except pl.exceptions.PolarsError as exc:
        raise polars_guard(what, exc) from None


def sanitized(fn: Callable[P, R]) -> Callable[P, R]:
    """Re-raise unexpected errors without their message before Prefect logs a task failure."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with polars_errors(fn.__name__):
                return fn(*args, **kwargs)
        except PipelineError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated, never swallowed
            raise PipelineError(internal_error(exc)) from None

    return wrapper
