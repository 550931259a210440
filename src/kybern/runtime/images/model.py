"""What a runtime needs from the image store: an image's config and its unpacked layers.

The store (:mod:`kybern.runtime.images.store`) keeps blobs by digest in an OCI image layout
shared by every agent on a host and unpacks each layer once into a snapshot directory. A
runtime asks :class:`ImageService` for an image by reference, gets an :class:`ImageRecord`,
and builds the container's root file system as an overlay of ``layers`` (bottom first) plus a
writable upper directory of its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class PullPolicy(enum.Enum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


@dataclass(frozen=True)
class Credentials:
    """Registry credentials for one registry host (from imagePullSecrets or a credentials file)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config (``config`` object) a runtime applies."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()  # "NAME=value"
    working_dir: str = ""
    user: str = ""  # "uid[:gid]" or "name[:group]"
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # the whole config JSON


@dataclass(frozen=True)
class ImageRecord:
    id: str  # "sha256:<config digest>"
    references: tuple[
        str, ...
    ]  # normalised names pointing at it ("docker.io/library/busybox:latest")
    repo_digests: tuple[str, ...]  # "docker.io/library/busybox@sha256:<manifest digest>"
    config: ImageConfig
    layers: tuple[Path, ...]  # unpacked snapshot directories, bottom layer first
    size: int = 0  # bytes of compressed layers
    os: str = "linux"
    architecture: str = "amd64"


class ProgressCallback(Protocol):
    def __call__(self, what: str, done: int, total: int) -> None: ...


class ImageService(Protocol):
    async def ensure(
        self,
        reference: str,
        *,
        policy: PullPolicy = PullPolicy.IF_NOT_PRESENT,
        credentials: dict[str, Credentials] | None = None,  # registry host -> credentials
        progress: ProgressCallback | None = None,
    ) -> ImageRecord:
        """The image, pulled if the policy says so; raises ``errors.ImageNotPresent`` (Never and
        absent) or ``errors.PullError``."""
        ...

    def get(self, reference: str) -> ImageRecord | None:
        """A local image by name, ``name@digest`` or image id (``sha256:...`` or a unique
        prefix of its hex)."""
        ...

    def list(self) -> list[ImageRecord]: ...

    async def remove(self, reference: str) -> None: ...
