"""The image layer's exceptions: one small tree so callers (the node agent, the CLI) can map
each failure to its Kubernetes reason (InvalidImageName, ErrImageNeverPull, ErrImagePull)."""

from __future__ import annotations


class ImageError(Exception):
    """Base of every image-store, registry and archive failure."""


class InvalidReference(ImageError, ValueError):
    """An image name that does not parse (Kubernetes: InvalidImageName)."""


class ImageNotPresent(ImageError):
    """The image is not in the local store (with pull policy Never: ErrImageNeverPull)."""


class PullError(ImageError):
    """Pulling failed (Kubernetes: ErrImagePull)."""


class PushError(ImageError):
    """Pushing failed."""


class DigestMismatch(ImageError):
    """Content did not hash to the digest it was announced under."""


class UnsafeLayer(ImageError):
    """A layer tar tried to escape its directory, create a device node, or was malformed."""


class RegistryError(ImageError):
    """A registry answered with an error (``status`` is the HTTP status, 0 if unreachable)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ArchiveError(ImageError):
    """An image tarball is malformed or of an unknown format."""
