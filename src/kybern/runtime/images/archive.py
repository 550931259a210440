"""``save``/``load`` of image tarballs, for air-gapped installs and nodes without a registry.

Two formats, as ``docker save``/``docker load`` and ``ctr export/import`` know them:

- docker-archive: ``manifest.json`` (``[{"Config", "RepoTags", "Layers"}]``), ``repositories``,
  ``<config hex>.json`` and one uncompressed ``<diffID hex>/layer.tar`` per layer;
- oci-archive: an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``) whose
  index entries carry the tag in ``org.opencontainers.image.ref.name`` and the full name in
  ``io.containerd.image.name``.

:func:`load` detects the format (an archive with both, as recent Docker writes, loads as OCI),
checks every blob against its digest, unpacks the layers, then names the images.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from kybern.runtime.images import digest as digests
from kybern.runtime.images import errors, mediatypes, reference, store, unpack

FORMATS = ("docker-archive", "oci-archive")


# --- save -------------------------------------------------------------------------------


def save(
    images: store.ImageStore, names: list[str], out: Path, *, fmt: str = "docker-archive"
) -> None:
    """Write the images ``names`` (names, ``name@digest`` or ids) to the tarball ``out``."""
    if fmt not in FORMATS:
        raise errors.ArchiveError(
            f"unknown archive format {fmt!r} (want one of {', '.join(FORMATS)})"
        )
    resolved = []
    for name in names:
        top = images.resolve(name)
        if top is None:
            raise errors.ImageNotPresent(f"image {name!r} not found")
        resolved.append((_canonical_name(images, name, top), top))
    tmp = out.with_name(f".{out.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        if fmt == "docker-archive":
            _save_docker(images, resolved, tar)
        else:
            _save_oci(images, resolved, tar)
    tmp.replace(out)


def _canonical_name(images: store.ImageStore, text: str, top: str) -> str:
    """The name to record for ``text``: itself when it names the image, else its first tag."""
    try:
        canonical = str(reference.parse(text))
    except errors.InvalidReference:
        canonical = ""
    if canonical in images.layout.refs():
        return canonical
    tags = [n for n in images.names_of(top) if "@" not in n]
    return tags[0] if tags else ""


def _save_docker(
    images: store.ImageStore, resolved: list[tuple[str, str]], tar: tarfile.TarFile
) -> None:
    entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for name, top in resolved:
        manifest = images.manifest_for(top)
        config_digest = manifest["config"]["digest"]
        config = images.layout.read_json(config_digest)
        config_file = digests.hex_of(config_digest) + ".json"
        _add_bytes(tar, config_file, images.layout.read_blob(config_digest), written)
        layer_files = []
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
            layer_file = digests.hex_of(diff_id) + "/layer.tar"
            if layer_file not in written:
                _add_uncompressed(tar, layer_file, images.layout.blob_path(layer["digest"]))
                written.add(layer_file)
            layer_files.append(layer_file)
        tags = []
        if name and "@" not in name:
            ref = reference.parse(name)
            tags.append(ref.familiar())
            repo = ref.with_tag("").familiar()
            repositories.setdefault(repo, {})[ref.tag] = digests.hex_of(
                config["rootfs"]["diff_ids"][-1]
            )
        entries.append({"Config": config_file, "RepoTags": tags, "Layers": layer_files})
    _add_bytes(tar, "manifest.json", json.dumps(entries).encode(), written)
    _add_bytes(tar, "repositories", json.dumps(repositories).encode(), written)


def _save_oci(
    images: store.ImageStore, resolved: list[tuple[str, str]], tar: tarfile.TarFile
) -> None:
    written: set[str] = set()
    index_entries = []
    for name, top in resolved:
        manifest_digest, manifest = images.platform_manifest(top)
        blobs = {top, manifest_digest, manifest["config"]["digest"]}
        blobs.update(layer["digest"] for layer in manifest["layers"])
        for d in sorted(blobs):
            _add_file(tar, f"blobs/sha256/{digests.hex_of(d)}", images.layout.blob_path(d), written)
        data = images.layout.read_blob(top)
        doc = json.loads(data)
        entry: dict[str, Any] = {
            "mediaType": doc.get("mediaType") or mediatypes.OCI_MANIFEST,
            "digest": top,
            "size": len(data),
        }
        if name and "@" not in name:
            entry["annotations"] = {
                mediatypes.REF_NAME: reference.parse(name).tag,
                mediatypes.CONTAINERD_NAME: name,
            }
        index_entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": index_entries}
    _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), written)
    _add_bytes(tar, "index.json", json.dumps(index).encode(), written)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, written: set[str]) -> None:
    if name in written:
        return
    written.add(name)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path, written: set[str]) -> None:
    if name in written:
        return
    written.add(name)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = path.stat().st_size, 0o644, int(time.time())
    with path.open("rb") as f:
        tar.addfile(info, f)


def _add_uncompressed(tar: tarfile.TarFile, name: str, blob: Path) -> None:
    # The uncompressed size goes in the tar header first: decompress to a temporary file.
    with tempfile.TemporaryFile() as tmp:
        with unpack.open_uncompressed(blob) as stream:
            shutil.copyfileobj(stream, tmp, 1 << 16)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = tmp.tell(), 0o644, int(time.time())
        tmp.seek(0)
        tar.addfile(info, tmp)


# --- load -------------------------------------------------------------------------------


def detect(tar: tarfile.TarFile) -> str:
    names = set(tar.getnames())
    if "oci-layout" in names and "index.json" in names:
        return "oci-archive"
    if "manifest.json" in names:
        return "docker-archive"
    raise errors.ArchiveError("not an image archive: no oci-layout/index.json and no manifest.json")


def load(images: store.ImageStore, path: Path) -> list[str]:
    """Import the images of the tarball ``path``; returns the names (or ids) loaded."""
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115  # closed by the with below
    except (tarfile.TarError, OSError) as e:
        raise errors.ArchiveError(f"{path}: cannot read archive: {e}") from e
    with tar, images.layout.adding():
        if detect(tar) == "oci-archive":
            return _load_oci(images, tar)
        return _load_docker(images, tar)


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        f = tar.extractfile(name)
    except KeyError:
        f = None
    if f is None:
        raise errors.ArchiveError(f"archive has no file {name!r}")
    return f


def _json(tar: tarfile.TarFile, name: str) -> Any:
    try:
        return json.loads(_member(tar, name).read())
    except ValueError as e:
        raise errors.ArchiveError(f"{name}: invalid JSON: {e}") from e


def _import_blob(images: store.ImageStore, source: IO[bytes], expected: str) -> None:
    if images.layout.has_blob(expected):
        return
    writer = images.layout.writer(expected)
    try:
        while chunk := source.read(1 << 16):
            writer.write(chunk)
        writer.commit()
    finally:
        writer.discard()


def _load_oci(images: store.ImageStore, tar: tarfile.TarFile) -> list[str]:
    for member in tar.getmembers():
        if member.isfile() and member.name.startswith("blobs/sha256/"):
            _import_blob(
                images, _member(tar, member.name), "sha256:" + member.name.rsplit("/", 1)[1]
            )
    loaded = []
    for entry in _json(tar, "index.json").get("manifests") or []:
        top = digests.check(str(entry.get("digest", "")))
        images.record(top)  # every blob present, layers unpack and match their diffIDs
        name = _oci_name(entry.get("annotations") or {})
        if name:
            images.set_name(name, top)
        loaded.append(name or images.manifest_for(top)["config"]["digest"])
    return loaded


def _oci_name(annotations: dict[str, str]) -> str:
    """The full name of an index entry; a bare tag (OCI's ref.name) gives no name."""
    full = annotations.get(mediatypes.CONTAINERD_NAME) or annotations.get(mediatypes.REF_NAME, "")
    if not full or ("/" not in full and ":" not in full):
        return ""
    return str(reference.parse(full))


def _load_docker(images: store.ImageStore, tar: tarfile.TarFile) -> list[str]:
    loaded = []
    for entry in _json(tar, "manifest.json"):
        config_data = _member(tar, entry["Config"]).read()
        config_digest = images.layout.write_blob(config_data)
        layers = [_load_docker_layer(images, tar, f) for f in entry.get("Layers") or []]
        manifest = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {
                "mediaType": mediatypes.OCI_CONFIG,
                "digest": config_digest,
                "size": len(config_data),
            },
            "layers": layers,
        }
        top = images.layout.write_blob(json.dumps(manifest, separators=(",", ":")).encode())
        images.record(top)
        tags = [str(reference.parse(t)) for t in entry.get("RepoTags") or []]
        for tag in tags:
            images.set_name(tag, top)
        loaded.extend(tags or [config_digest])
    return loaded


def _load_docker_layer(images: store.ImageStore, tar: tarfile.TarFile, name: str) -> dict[str, Any]:
    """Store one layer file as a blob (as it is, compressed or not) and describe it."""
    with tempfile.NamedTemporaryFile(dir=images.layout.ingest_dir, delete=False) as tmp:
        shutil.copyfileobj(_member(tar, name), tmp, 1 << 16)
    tmp_path = Path(tmp.name)
    try:
        with tmp_path.open("rb") as f:
            compression = unpack.compression_of(f.read(4))
            f.seek(0)
            size = tmp_path.stat().st_size
            digest = _hash_file(f)
        tmp_path.replace(images.layout.blob_path(digest))
    finally:
        tmp_path.unlink(missing_ok=True)
    return {"mediaType": mediatypes.layer_type(compression), "digest": digest, "size": size}


def _hash_file(f: IO[bytes]) -> str:
    h = hashlib.sha256()
    while chunk := f.read(1 << 16):
        h.update(chunk)
    return "sha256:" + h.hexdigest()
