"""Named storage errors: the whole vocabulary a Backend uses to say no.

The API server maps these to Kubernetes Status objects in one place
(kybern.apiserver.errors); nothing below that layer knows about HTTP.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error a Backend raises on purpose."""


class KeyExists(StorageError):
    """create() of a key that currently exists."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class NotFound(StorageError):
    """get/update/delete of a key that does not exist (at that revision)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class Conflict(StorageError):
    """Compare-and-swap failed: the key's mod revision is not the expected one."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"conflict on {key}: expected revision {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StorageError):
    """The requested revision is older than the compaction point."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted (oldest available is {compacted})"
        )
        self.requested = requested
        self.compacted = compacted


class FutureRevision(StorageError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current is {current})")
        self.requested = requested
        self.current = current
