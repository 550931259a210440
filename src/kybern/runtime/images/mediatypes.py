"""Media types of OCI and Docker v2 schema2 manifests, indexes, configs and layers."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((*MANIFESTS, *INDEXES))

# Annotation naming an image in an OCI layout's index.json.
REF_NAME = "org.opencontainers.image.ref.name"
# containerd's annotation with the full image name (written by `ctr export`, read on import).
CONTAINERD_NAME = "io.containerd.image.name"


def layer_type(compression: str, *, oci: bool = True) -> str:
    """The layer media type for a compression ("gzip", "zstd" or "none")."""
    if oci:
        return {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}.get(compression, OCI_LAYER)
    return DOCKER_LAYER_GZIP if compression == "gzip" else DOCKER_LAYER


def manifest_kind(media_type: str, document: dict[str, object]) -> str:
    """``index`` or ``manifest`` (OCI documents may omit mediaType; ``manifests`` tells)."""
    if media_type in INDEXES or (not media_type and "manifests" in document):
        return "index"
    return "manifest"
