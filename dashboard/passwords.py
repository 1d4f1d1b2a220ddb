"""Password hashes of the users file: PBKDF2-HMAC-SHA256 from :mod:`hashlib`.

A hash is one line, ``pbkdf2_sha256$<iterations>$<salt, base64>$<hash, base64>``, with a
random 16-byte salt and a high iteration count (OWASP's 2023 figure for PBKDF2-SHA256)::

    line = hash_password("correct horse battery staple")
    assert verify_password("correct horse battery staple", line)

``python -m dashboard hash-password`` prints such a line. Verification compares with
:func:`hmac.compare_digest`; a malformed line raises :class:`PasswordHashError` with a
message that never contains the line itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from privacy.errors import PipelineError

SCHEME = "pbkdf2_sha256"
#: iterations of new hashes (OWASP Password Storage Cheat Sheet, PBKDF2-HMAC-SHA256)
DEFAULT_ITERATIONS = 600_000
#: hashes with fewer iterations are refused when the users file is loaded
MIN_ITERATIONS = 100_000
#: more than this would let a users file make every login take minutes
MAX_ITERATIONS = 10_000_000
SALT_BYTES = 16
HASH_BYTES = 32


class PasswordHashError(PipelineError):
    """A password hash in the users file is not a ``pbkdf2_sha256$...`` line.

    >>> raise PasswordHashError("user 'ana': the password hash has 3 parts, not 4")
    """

    kind = "bad_password_hash"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, HASH_BYTES)


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    """A new hash line for ``password`` with a fresh random salt."""
    if not password:
        raise PasswordHashError("refusing to hash an empty password")
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise PasswordHashError(
            f"iterations must be between {MIN_ITERATIONS:,} and {MAX_ITERATIONS:,}"
        )
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(_derive(password, salt, iterations))}"


def parse_hash(line: str) -> tuple[int, bytes, bytes]:
    """(iterations, salt, hash) of a hash line; PasswordHashError when it is not one."""
    parts = line.strip().split("$")
    if len(parts) != 4:
        raise PasswordHashError(
            f"the password hash has {len(parts)} '$'-separated parts, not 4 "
            f"({SCHEME}$<iterations>$<salt>$<hash>); make one with "
            "'python -m dashboard hash-password'"
        )
    scheme, rounds, salt_b64, hash_b64 = parts
    if scheme != SCHEME:
        raise PasswordHashError(
            f"the password hash uses scheme {scheme[:20]!r}; only {SCHEME} is supported"
        )
    if not rounds.isdigit() or not MIN_ITERATIONS <= int(rounds) <= MAX_ITERATIONS:
        raise PasswordHashError(
            f"the password hash's iteration count must be a number from {MIN_ITERATIONS:,} "
            f"to {MAX_ITERATIONS:,}; re-hash the password with 'python -m dashboard "
            "hash-password'"
        )
    try:
        salt = base64.b64decode(salt_b64, validate=True)
        digest = base64.b64decode(hash_b64, validate=True)
    except (binascii.Error, ValueError):
        raise PasswordHashError("the password hash's salt or hash is not base64") from None
    if len(salt) < 8 or len(digest) < 16:
        raise PasswordHashError("the password hash's salt or hash is too short")
    return int(rounds), salt, digest


def verify_password(password: str, line: str) -> bool:
    """True when ``password`` matches the hash line (constant-time comparison)."""
    iterations, salt, expected = parse_hash(line)
    actual = hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8"), salt, iterations, len(expected)
    )
    return hmac.compare_digest(actual, expected)
