"""The on-disk OCI image layout shared by every agent on a host.

``<root>/oci-layout``, ``<root>/index.json`` and ``<root>/blobs/sha256/<hex>`` follow the OCI
image-layout spec, so the directory is readable by other OCI tools. ``index.json`` doubles as the
refs database: one descriptor per name, annotated with ``org.opencontainers.image.ref.name`` =
the canonical reference (``docker.io/library/busybox:latest`` or ``name@sha256:...`` for an
image pulled by digest), pointing at the manifest or index that was pulled or loaded.

Every write is atomic (a temporary file in the same directory, fsync, rename). Several agent
processes share the directory: ``index.lock`` serialises read-modify-write of the index and
``gc.lock`` is held shared by anything that adds content and exclusively by garbage collection,
so a collection never deletes blobs a concurrent pull has written but not yet named.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from kybern.runtime.images import digest as digests
from kybern.runtime.images import errors, mediatypes

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class BlobWriter:
    """Streams one blob into the layout; :meth:`commit` verifies its digest and publishes it."""

    def __init__(self, layout: Layout, expected: str) -> None:
        self.layout = layout
        self.expected = digests.check(expected)
        fd, name = tempfile.mkstemp(dir=layout.ingest_dir, prefix="blob-")
        self.tmp = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.file.write(data)
        self.size += len(data)

    def commit(self) -> str:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        actual = "sha256:" + self.hash.hexdigest()
        if actual != self.expected:
            self.discard()
            raise errors.DigestMismatch(f"blob has digest {actual}, expected {self.expected}")
        os.replace(self.tmp, self.layout.blob_path(actual))
        return actual

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        self.snapshots_dir = root / "snapshots"
        for d in (self.blobs_dir, self.ingest_dir, self.snapshots_dir):
            d.mkdir(parents=True, exist_ok=True)
        if not (root / "oci-layout").exists():
            atomic_write(root / "oci-layout", json.dumps(LAYOUT_VERSION).encode())
        if not (root / "index.json").exists():
            with self.index_lock():
                if not (root / "index.json").exists():
                    self._write_index([])

    # --- blobs -------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / digests.hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise errors.ImageNotPresent(f"blob {digest} is not in the store") from None

    def read_json(self, digest: str) -> dict[str, Any]:
        doc = json.loads(self.read_blob(digest))
        if not isinstance(doc, dict):
            raise errors.ImageError(f"blob {digest} is not a JSON object")
        return doc

    def write_blob(self, data: bytes, *, expected: str = "") -> str:
        digest = digests.of_bytes(data)
        if expected and expected != digest:
            raise errors.DigestMismatch(f"blob has digest {digest}, expected {expected}")
        if not self.has_blob(digest):
            atomic_write(self.blob_path(digest), data)
        return digest

    def writer(self, expected: str) -> BlobWriter:
        return BlobWriter(self, expected)

    def all_blobs(self) -> list[str]:
        return ["sha256:" + p.name for p in self.blobs_dir.iterdir() if not p.name.startswith(".")]

    # --- index.json (the refs database) -------------------------------------------------

    def descriptors(self) -> list[dict[str, Any]]:
        """The index's descriptors (a consistent snapshot: writes are atomic renames)."""
        doc = json.loads((self.root / "index.json").read_bytes())
        return list(doc.get("manifests") or [])

    def refs(self) -> dict[str, dict[str, Any]]:
        """Reference name -> descriptor."""
        out = {}
        for d in self.descriptors():
            name = (d.get("annotations") or {}).get(mediatypes.REF_NAME)
            if name:
                out[name] = d
        return out

    def set_ref(self, name: str, descriptor: dict[str, Any]) -> None:
        with self.index_lock():
            kept = [d for d in self.descriptors() if _ref_name(d) != name]
            entry = dict(descriptor)
            entry["annotations"] = {
                **(descriptor.get("annotations") or {}),
                mediatypes.REF_NAME: name,
            }
            self._write_index([*kept, entry])

    def remove_refs(self, names: set[str]) -> None:
        with self.index_lock():
            self._write_index([d for d in self.descriptors() if _ref_name(d) not in names])

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        doc = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": manifests}
        atomic_write(self.root / "index.json", json.dumps(doc, indent=1).encode())

    # --- locks -------------------------------------------------------------------------

    @contextlib.contextmanager
    def index_lock(self) -> Iterator[None]:
        with _flock(self.root / "index.lock", fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def adding(self) -> Iterator[None]:
        """Held while content is added: garbage collection waits for it."""
        with _flock(self.root / "gc.lock", fcntl.LOCK_SH):
            yield

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        with _flock(self.root / "gc.lock", fcntl.LOCK_EX):
            yield


def _ref_name(descriptor: dict[str, Any]) -> str:
    return str((descriptor.get("annotations") or {}).get(mediatypes.REF_NAME, ""))


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    with path.open("a+b") as f:
        fcntl.flock(f.fileno(), mode)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
