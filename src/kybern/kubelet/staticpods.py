"""Static pods: pods from manifest files on the node (``--pod-manifest-path``) and their mirrors.

Interface for the kubelet core:

- ``StaticPods(path, *, node_name, clock=REAL, interval=20.0)``: ``await poll() -> Diff``
  (``added``, ``updated``, ``removed``: full pods; an edited manifest is a new pod, since its
  UID is the content hash, so it shows as removed + added, as in Kubernetes);
  ``await run(on_diff)`` polls every ``interval`` seconds on the clock and calls ``on_diff``
  with every non-empty Diff; ``pods()`` is the current set.
- ``load(path, node_name) -> (pods, errors)``: one scan, no state.
- ``mirror_pod(static_pod, *, node_uid="") -> dict``: the pod to create in the API server.

As kubelet v1.32's file source does (``config/file.go``, ``config/common.go``): every
non-hidden regular file in the directory is read (YAML or JSON; several documents are allowed
here, one pod each); each pod is named ``<name>-<node name>``, put in ``default`` when it names
no namespace, bound with ``spec.nodeName``, given a UID that hashes its content with the node
and file, the annotations ``kubernetes.io/config.source: file``, ``kubernetes.io/config.hash``
(the UID) and ``kubernetes.io/config.seen`` (first seen, RFC 3339 with nanoseconds), and a
toleration of every NoExecute taint. Unreadable manifests are skipped and reported in
``errors``. Polling compares file mtimes and sizes (no inotify) so it costs a stat per file.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kybern.client import clock as clock_mod

Obj = dict[str, Any]
log = logging.getLogger(__name__)

SOURCE = "kubernetes.io/config.source"
HASH = "kubernetes.io/config.hash"
SEEN = "kubernetes.io/config.seen"
MIRROR = "kubernetes.io/config.mirror"
POLL_INTERVAL = 20.0


@dataclass
class Diff:
    added: list[Obj] = field(default_factory=list)
    updated: list[Obj] = field(default_factory=list)
    removed: list[Obj] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _documents(text: str) -> list[Any]:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return [json.loads(text)]
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def pod_uid(pod: Obj, node_name: str, source: str) -> str:
    """An md5 of the manifest's pod, the node and the file, as the kubelet derives it."""
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(json.dumps(pod, sort_keys=True, separators=(",", ":")).encode())
    digest.update(f"host:{node_name}".encode())
    digest.update(f"file:{source}".encode())
    return digest.hexdigest()


def apply_defaults(pod: Obj, node_name: str, source: str) -> Obj:
    """The kubelet's ``applyDefaults`` for a pod read from ``source``."""
    pod = copy.deepcopy(pod)
    meta = pod.setdefault("metadata", {})
    if not meta.get("uid"):
        meta["uid"] = pod_uid(pod, node_name, source)
    meta["name"] = f"{meta.get('name', '')}-{node_name.lower()}"
    meta["namespace"] = meta.get("namespace") or "default"
    spec = pod.setdefault("spec", {})
    spec["nodeName"] = node_name
    annotations = meta.setdefault("annotations", {})
    annotations[HASH] = meta["uid"]
    annotations[SOURCE] = "file"
    tolerations = spec.setdefault("tolerations", [])
    wildcard = {"operator": "Exists", "effect": "NoExecute"}
    if wildcard not in tolerations:
        tolerations.append(wildcard)
    pod["status"] = {"phase": "Pending"}
    return pod


def _check(doc: Any, source: str) -> Obj:
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: not an object")
    if doc.get("kind") != "Pod" or doc.get("apiVersion", "v1") != "v1":
        raise ValueError(
            f"{source}: invalid pod: kind must be Pod (apiVersion v1), got {doc.get('kind')!r}"
        )
    if not (doc.get("metadata") or {}).get("name"):
        raise ValueError(f"{source}: invalid pod: metadata.name: Required value: name is required")
    return doc


def load_file(path: Path, node_name: str) -> list[Obj]:
    """The pods of one manifest file; ValueError when it is not a pod manifest."""
    try:
        docs = _documents(path.read_text())
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: {err}") from err
    return [apply_defaults(_check(doc, str(path)), node_name, str(path)) for doc in docs]


def _manifest_files(directory: Path) -> dict[Path, tuple[int, int]]:
    """Visible regular files and their (mtime ns, size)."""
    files: dict[Path, tuple[int, int]] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return files
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file():
            continue
        info = entry.stat()
        files[Path(entry.path)] = (info.st_mtime_ns, info.st_size)
    return files


def load(directory: Path, node_name: str) -> tuple[list[Obj], list[str]]:
    """Every static pod in ``directory`` and the errors of manifests that were skipped."""
    pods: list[Obj] = []
    errors: list[str] = []
    for path in sorted(_manifest_files(directory)):
        try:
            pods.extend(load_file(path, node_name))
        except (OSError, ValueError) as err:
            errors.append(str(err))
    return pods, errors


def mirror_pod(static_pod: Obj, *, node_uid: str = "") -> Obj:
    """The mirror of a static pod: the config.mirror annotation (the hash) and the Node as
    controlling owner; the API server assigns its own UID."""
    mirror = copy.deepcopy(static_pod)
    meta = mirror.setdefault("metadata", {})
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    annotations = meta.setdefault("annotations", {})
    annotations[MIRROR] = annotations.get(HASH, (static_pod.get("metadata") or {}).get("uid", ""))
    meta["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "name": (static_pod.get("spec") or {}).get("nodeName", ""),
            "uid": node_uid,
            "controller": True,
        }
    ]
    mirror.setdefault("apiVersion", "v1")
    mirror.setdefault("kind", "Pod")
    return mirror


def rfc3339_nano(moment: datetime.datetime) -> str:
    """Go's RFC3339Nano in UTC: fractional seconds without trailing zeros."""
    moment = moment.astimezone(datetime.UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def is_mirror(pod: Obj) -> bool:
    return MIRROR in ((pod.get("metadata") or {}).get("annotations") or {})


class StaticPods:
    """The manifest directory, polled; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        node_name: str,
        clock: clock_mod.Clock = clock_mod.REAL,
        interval: float = POLL_INTERVAL,
    ) -> None:
        self.path = Path(path)
        self.node_name = node_name
        self.clock = clock
        self.interval = interval
        self._stamps: dict[Path, tuple[int, int]] = {}
        self._by_file: dict[Path, list[Obj]] = {}
        self._seen: dict[str, str] = {}  # uid -> first seen
        self.errors: list[str] = []

    def pods(self) -> list[Obj]:
        return [pod for pods in self._by_file.values() for pod in pods]

    def _scan(self) -> Diff:
        before = {p["metadata"]["uid"]: p for p in self.pods()}
        stamps = _manifest_files(self.path)
        for path in set(self._by_file) - set(stamps):
            del self._by_file[path]
        self.errors = []
        for path, stamp in stamps.items():
            if self._stamps.get(path) == stamp and path in self._by_file:
                continue
            try:
                self._by_file[path] = [self._stamp_seen(p) for p in load_file(path, self.node_name)]
            except (OSError, ValueError) as err:
                self.errors.append(str(err))
                log.warning("static pod manifest skipped: %s", err)
                self._by_file.pop(path, None)
        self._stamps = stamps
        return self._diff(before)

    def _stamp_seen(self, pod: Obj) -> Obj:
        uid = pod["metadata"]["uid"]
        seen = self._seen.setdefault(uid, rfc3339_nano(self.clock.now()))
        pod["metadata"]["annotations"][SEEN] = seen
        return pod

    def _diff(self, before: dict[str, Obj]) -> Diff:
        after = {p["metadata"]["uid"]: p for p in self.pods()}
        diff = Diff(
            added=[p for uid, p in after.items() if uid not in before],
            removed=[p for uid, p in before.items() if uid not in after],
            updated=[p for uid, p in after.items() if uid in before and before[uid] != p],
        )
        for pod in diff.removed:
            self._seen.pop(pod["metadata"]["uid"], None)
        return diff

    async def poll(self) -> Diff:
        return await asyncio.to_thread(self._scan)

    async def run(self, on_diff: Callable[[Diff], Awaitable[None] | None]) -> None:
        while True:
            diff = await self.poll()
            if diff:
                outcome = on_diff(diff)
                if outcome is not None:
                    await outcome
            await self.clock.sleep(self.interval)
