"""Pseudonym keys: the master key's checks and the per-dataset keys derived from it.

Each dataset pseudonymizes with ``dataset_key(master, contract)``, HKDF-SHA256 (RFC 5869)
of the master key with the dataset's name (or its ``linkage_group``), so tokens do not
link across datasets unless the contracts say so (docs/architecture.md, "Masking").

>>> hkdf_sha256(b"m" * 32, b"info", length=8).hex()
'40ec91734dc8c04e'
>>> check_master_key(b"short")  # doctest: +ELLIPSIS
Traceback (most recent call last):
privacy.errors.PipelineError: the pseudonym key has 5 bytes; at least 32 are required ...
"""

from __future__ import annotations

import hashlib
import hmac

from privacy.contract import Contract
from privacy.errors import PipelineError

#: the shortest master key accepted (bytes): HMAC-SHA256 keys shorter than its output
#: weaken it, and a short secret can be guessed
MIN_MASTER_KEY_BYTES = 32
_HKDF_SALT = b"privacy-analytics pseudonym keys"


def hkdf_sha256(master: bytes, info: bytes, length: int = 32, salt: bytes = _HKDF_SALT) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with a public salt, then expand with ``info``."""
    prk = hmac.new(salt, master, hashlib.sha256).digest()
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
    return out[:length]


def check_master_key(master: bytes) -> bytes:
    """``master`` if it is long enough; otherwise PipelineError naming the minimum."""
    if len(master) < MIN_MASTER_KEY_BYTES:
        raise PipelineError(
            f"the pseudonym key has {len(master)} bytes; at least {MIN_MASTER_KEY_BYTES} are "
            "required (generate one with: openssl rand -base64 32)"
        )
    return master


def dataset_key(master: bytes, contract: Contract) -> bytes:
    """The pseudonym key of ``contract``'s dataset: HKDF-SHA256 of the master key with the
    dataset's name, or with its ``linkage_group`` (datasets of one group share tokens).
    Returned as 64 hex characters (the HMAC key the masking plugin takes)."""
    check_master_key(master)
    scope = (
        f"linkage-group:{contract.linkage_group}"
        if contract.linkage_group
        else f"dataset:{contract.dataset}"
    )
    return hkdf_sha256(master, b"pa1 pseudonyms|" + scope.encode()).hex().encode()


#: the release input's Parquet key-value metadata entry naming its pseudonym key
KEY_ID_METADATA = "pa_pseudonym_key_id"


def key_id(key: bytes) -> str:
    """A public name of a dataset's pseudonym key (HMAC of a constant under it: it reveals
    nothing of the key). Files masked under one key carry the same id, so a dataset release
    reads together only files whose tokens name the same people the same way: after a key
    rotation one person would be two units to OpenDP, each bounded on its own, and the
    release would cost that person more than the ledger charges."""
    import hmac

    return hmac.new(key, b"pa1 key id", "sha256").hexdigest()[:16]
