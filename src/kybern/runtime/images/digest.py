"""Content digests (``sha256:<hex>``): parsing, hashing, and a writer that hashes as it goes."""

from __future__ import annotations

import hashlib
import re

from kybern.runtime.images import errors

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def check(digest: str) -> str:
    """``digest`` if it is a well-formed sha256 digest; raises InvalidReference otherwise."""
    if not _DIGEST.match(digest):
        raise errors.InvalidReference(f"invalid digest {digest!r} (only sha256 is supported)")
    return digest


def hex_of(digest: str) -> str:
    return check(digest).split(":", 1)[1]


def of_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify(data: bytes, expected: str) -> None:
    actual = of_bytes(data)
    if actual != expected:
        raise errors.DigestMismatch(f"content has digest {actual}, expected {expected}")
