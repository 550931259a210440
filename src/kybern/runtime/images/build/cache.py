"""The build cache: which layer a step produced last time, keyed on what determines it.

A step's key chains the previous step's key (so it covers the base image and every earlier
instruction, layer-producing or not) with the instruction after substitution and its inputs:
for RUN the environment it runs with, for COPY/ADD the digest of the copied files' content,
modes and owners (:func:`context.digest`). A hit needs the recorded layer blob to still be in
the store (``kybern image gc`` may have collected it). Entries live beside the store as
``<store>/build-cache/<key hex>.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from kybern.runtime.images import layout


def base_key(image_id: str) -> str:
    """The chain key at FROM: the base image's id (config digest), or ``scratch``."""
    return _hash("FROM", image_id or "scratch")


def step_key(parent: str, instruction: str, inputs: str = "") -> str:
    return _hash(parent, instruction, inputs)


def _hash(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class Entry:
    layer: str  # blob digest of the (compressed) layer
    diff_id: str
    size: int  # compressed size
    media_type: str


class Cache:
    def __init__(self, images_root: Path) -> None:
        self.dir = images_root / "build-cache"

    def get(self, key: str) -> Entry | None:
        path = self.dir / (key.removeprefix("sha256:") + ".json")
        try:
            doc = json.loads(path.read_bytes())
            return Entry(doc["layer"], doc["diff_id"], int(doc["size"]), doc["media_type"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, entry: Entry) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        doc = {
            "layer": entry.layer,
            "diff_id": entry.diff_id,
            "size": entry.size,
            "media_type": entry.media_type,
        }
        layout.atomic_write(
            self.dir / (key.removeprefix("sha256:") + ".json"), json.dumps(doc).encode()
        )
