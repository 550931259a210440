"""save/load round trips in both formats, format detection, tampering, and garbage collection."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from kybern.runtime.images import archive, errors, gc, model, store
from kybern.testing import images
from kybern.testing.images import Entry, tar_layer


@pytest.mark.parametrize("fmt", archive.FORMATS)
def test_round_trip(
    tmp_path: Path, image_store: store.ImageStore, busybox: model.ImageRecord, fmt: str
) -> None:
    image_store.tag("busybox", "127.0.0.1:5000/bb:v2")
    out = tmp_path / "images.tar"
    archive.save(image_store, ["busybox", "127.0.0.1:5000/bb:v2"], out, fmt=fmt)
    other = store.ImageStore(tmp_path / "other")
    loaded = archive.load(other, out)
    assert loaded == ["docker.io/library/busybox:latest", "127.0.0.1:5000/bb:v2"]
    record = other.get("busybox")
    assert record is not None
    assert record.id == busybox.id
    assert record.config == busybox.config
    assert (record.layers[0] / "bin/busybox").is_file()
    assert other.get("127.0.0.1:5000/bb:v2") is not None


def test_docker_archive_layout(
    tmp_path: Path, image_store: store.ImageStore, busybox: model.ImageRecord
) -> None:
    out = tmp_path / "images.tar"
    archive.save(image_store, ["busybox"], out)
    with tarfile.open(out) as tar:
        (entry,) = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert entry["RepoTags"] == ["busybox:latest"]
        assert entry["Config"] == busybox.id.removeprefix("sha256:") + ".json"
        assert json.loads(tar.extractfile("repositories").read())["busybox"]["latest"]  # type: ignore[union-attr]
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as layer_tar:
        assert layer_tar.getmember("bin/busybox").size > 0


def test_oci_archive_carries_names(
    tmp_path: Path, image_store: store.ImageStore, busybox: model.ImageRecord
) -> None:
    out = tmp_path / "images.tar"
    archive.save(image_store, [busybox.id], out, fmt="oci-archive")
    with tarfile.open(out) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    annotations = index["manifests"][0]["annotations"]
    assert annotations["org.opencontainers.image.ref.name"] == "latest"
    assert annotations["io.containerd.image.name"] == "docker.io/library/busybox:latest"


def test_tampered_blob_is_refused(tmp_path: Path, image_store: store.ImageStore) -> None:
    images.build_image(image_store, "small", [tar_layer([Entry("a", data=b"original")])])
    out = tmp_path / "images.tar"
    archive.save(image_store, ["small"], out, fmt="oci-archive")
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(out) as src, tarfile.open(tampered, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("blobs/") and b"original" in _maybe_gunzip(data):
                data = _gzip_layer(b"tampered")
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    other = store.ImageStore(tmp_path / "other")
    with pytest.raises(errors.DigestMismatch):
        archive.load(other, tampered)
    assert other.list() == []


def _maybe_gunzip(data: bytes) -> bytes:
    import gzip

    try:
        return gzip.decompress(data)
    except OSError:
        return data


def _gzip_layer(content: bytes) -> bytes:
    import gzip

    return gzip.compress(tar_layer([Entry("a", data=content)]))


def test_load_rejects_non_image_tarballs(tmp_path: Path, image_store: store.ImageStore) -> None:
    path = tmp_path / "plain.tar"
    with tarfile.open(path, "w") as tar:
        tar.addfile(tarfile.TarInfo("hello"), io.BytesIO(b""))
    with pytest.raises(errors.ArchiveError, match="not an image archive"):
        archive.load(image_store, path)
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(errors.ArchiveError):
        archive.load(image_store, tmp_path / "junk")


def test_gc_keeps_named_images_and_removes_the_rest(
    image_store: store.ImageStore, busybox: model.ImageRecord
) -> None:
    images.build_image(image_store, "doomed", [tar_layer([Entry("doomed", data=b"x")])])
    (image_store.layout.ingest_dir / "blob-stale").write_bytes(b"partial")
    image_store.untag("doomed")
    dry = gc.collect(image_store, dry_run=True)
    assert (len(dry.blobs), len(dry.snapshots)) == (3, 1)
    report = gc.collect(image_store)
    assert (len(report.blobs), len(report.snapshots)) == (3, 1)
    assert report.bytes_freed > 0
    assert image_store.get("busybox") == busybox
    assert gc.collect(image_store).blobs == []
    assert list(image_store.layout.ingest_dir.iterdir()) == []
    image_store.untag("busybox")
    gc.collect(image_store)
    assert image_store.layout.all_blobs() == []
    assert list(image_store.layout.snapshots_dir.iterdir()) == []
