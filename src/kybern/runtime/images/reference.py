"""Image references: parse and normalise names the way Docker and Kubernetes do.

``busybox`` means ``docker.io/library/busybox:latest``; ``me/app`` means ``docker.io/me/app``;
a first component with a ``.`` or ``:`` or equal to ``localhost`` is a registry host
(``127.0.0.1:5000/app:v1``); ``@sha256:...`` pins a manifest digest. The canonical string is
what the store indexes and what ``ImageRecord.references`` holds; :func:`Reference.familiar`
gives the short form ``docker save`` writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from kybern.runtime.images import digest as digests
from kybern.runtime.images import errors

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
LEGACY_REGISTRIES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$")
_HOST = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    registry: str  # "docker.io", "127.0.0.1:5000"
    repository: str  # "library/busybox"
    tag: str = ""  # empty when only a digest was given
    digest: str = ""  # "sha256:<hex>" or empty

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def with_digest(self, digest: str) -> Reference:
        """``name@digest`` (a repo digest); the tag is dropped."""
        return replace(self, tag="", digest=digests.check(digest))

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag, digest="")

    def familiar(self) -> str:
        """The short form: ``busybox:latest`` for ``docker.io/library/busybox:latest``."""
        name = self.name
        if self.registry == DEFAULT_REGISTRY:
            name = self.repository.removeprefix("library/")
        if self.tag:
            name += ":" + self.tag
        if self.digest:
            name += "@" + self.digest
        return name

    @property
    def api_host(self) -> str:
        """The host serving the distribution API (Docker Hub's differs from its name)."""
        return "registry-1.docker.io" if self.registry == DEFAULT_REGISTRY else self.registry


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise an image reference; raises :class:`errors.InvalidReference`.

    With ``default_tag`` a reference without tag or digest gets ``:latest``.
    """
    if not text or text != text.strip():
        raise errors.InvalidReference(f"invalid reference format: {text!r}")
    rest, _, digest = text.partition("@")
    if digest:
        digests.check(digest)
    registry, path = _split_registry(rest)
    path, tag = _split_tag(path)
    _check_path(text, path)
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = "library/" + path
    if not tag and not digest and default_tag:
        tag = DEFAULT_TAG
    if len(registry) + 1 + len(path) > 255:
        raise errors.InvalidReference(
            f"repository name must not be more than 255 characters: {text!r}"
        )
    return Reference(registry=registry, repository=path, tag=tag, digest=digest)


def normalize(text: str) -> str:
    """The canonical string of a reference (``docker.io/library/busybox:latest``)."""
    return str(parse(text))


def _split_registry(name: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _HOST.match(first):
            raise errors.InvalidReference(f"invalid registry host {first!r}")
        registry = DEFAULT_REGISTRY if first in LEGACY_REGISTRIES else first
        return registry, remainder
    return DEFAULT_REGISTRY, name


def _split_tag(path: str) -> tuple[str, str]:
    # A ':' after the last '/' separates the tag (the registry part was split off already).
    head, sep, tag = path.rpartition(":")
    if not sep or "/" in tag:
        return path, ""
    if not _TAG.match(tag):
        raise errors.InvalidReference(f"invalid tag {tag!r}")
    return head, tag


def _check_path(text: str, path: str) -> None:
    if not path:
        raise errors.InvalidReference(f"invalid reference format: {text!r}")
    for component in path.split("/"):
        if component != component.lower() and _COMPONENT.match(component.lower()):
            raise errors.InvalidReference(
                f"invalid reference format: repository name must be lowercase: {text!r}"
            )
        if not _COMPONENT.match(component):
            raise errors.InvalidReference(f"invalid reference format: {text!r}")
