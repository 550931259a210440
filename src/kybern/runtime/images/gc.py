"""Garbage collection: delete the blobs and snapshots no named image references.

Roots are the descriptors in ``index.json``; from each, an index's manifests, a manifest's
config and layers, and the config's diffIDs (snapshots) are marked. Everything unmarked goes,
plus leftovers of interrupted pulls and unpacks. It runs under the layout's exclusive GC lock, so
it waits for pulls and loads in progress (they hold the lock shared) and never races them.
Snapshots a running container still uses are not known here: the runtime must keep a name on
images it runs (the node agent's image GC decides which names to drop).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

from kybern.runtime.images import digest as digests
from kybern.runtime.images import errors, mediatypes, store


@dataclass
class Report:
    blobs: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)  # diffIDs
    bytes_freed: int = 0


def collect(images: store.ImageStore, *, dry_run: bool = False) -> Report:
    with images.layout.collecting():
        blobs, diff_ids = _mark(images)
        report = Report()
        for digest in images.layout.all_blobs():
            if digest not in blobs:
                path = images.layout.blob_path(digest)
                report.blobs.append(digest)
                report.bytes_freed += path.stat().st_size
                if not dry_run:
                    path.unlink()
        for snap in images.layout.snapshots_dir.iterdir():
            if snap.name.startswith(".") or "sha256:" + snap.name not in diff_ids:
                if not snap.name.startswith("."):
                    report.snapshots.append("sha256:" + snap.name)
                if not dry_run:
                    store.remove_tree(snap)
        if not dry_run:
            _clean_ingest(images)
    return report


def _mark(images: store.ImageStore) -> tuple[set[str], set[str]]:
    blobs: set[str] = set()
    diff_ids: set[str] = set()
    pending = [str(d["digest"]) for d in images.layout.descriptors()]
    while pending:
        digest = pending.pop()
        if digest in blobs or not images.layout.has_blob(digest):
            continue
        blobs.add(digest)
        doc = _json_or_none(images, digest)
        if doc is None:
            continue
        if mediatypes.manifest_kind(str(doc.get("mediaType", "")), doc) == "index":
            pending.extend(str(m["digest"]) for m in doc.get("manifests") or [])
        elif "config" in doc and "layers" in doc:
            config = str(doc["config"]["digest"])
            blobs.add(config)
            blobs.update(str(layer["digest"]) for layer in doc["layers"])
            config_doc = _json_or_none(images, config) or {}
            diff_ids.update((config_doc.get("rootfs") or {}).get("diff_ids") or [])
    return blobs, diff_ids


def _json_or_none(images: store.ImageStore, digest: str) -> dict[str, Any] | None:
    digests.check(digest)
    try:
        return images.layout.read_json(digest)
    except (errors.ImageError, ValueError):
        return None


def _clean_ingest(images: store.ImageStore) -> None:
    for entry in images.layout.ingest_dir.iterdir():
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                os.unlink(entry)
