"""The oci runtime's state directory: everything a restarted agent needs to adopt its pods.

::

    <root>/runc/                         runc's own state (--root)
    <root>/sandboxes/<id>/sandbox.json   the sandbox record
    <root>/sandboxes/<id>/{ipc,uts,pid}  pinned namespaces (bind mounts)
    <root>/sandboxes/<id>/{hosts,hostname,resolv.conf}
    <root>/containers/<id>/record.json   the container record
    <root>/containers/<id>/bundle/       config.json, rootfs (overlay), upper/, work/
    <root>/containers/<id>/spec.bin      the shim's instructions (marshal)
    <root>/containers/<id>/status        written by the shim only (see process.monitor)
    <root>/containers/<id>/attach.sock   the shim's attach socket while the container runs

Records are JSON, replaced atomically (:func:`kybern.runtime.process.layout.write_json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kybern.runtime import cri
from kybern.runtime.process import layout


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def runc_root(self) -> Path:
        return self.root / "runc"

    def sandbox(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / sandbox_id

    def container(self, container_id: str) -> Path:
        return self.root / "containers" / container_id

    def bundle(self, container_id: str) -> Path:
        return self.container(container_id) / "bundle"


@dataclass
class SandboxRecord:
    id: str
    metadata: cri.PodMeta
    created_at: int
    ready: bool = True
    hostname: str = ""
    netns: str = ""  # "" = host network
    ip: str = ""
    cgroup_parent: str = ""
    shared_pid: bool = False
    host_ipc: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def save(self, paths: Paths) -> None:
        data = {k: v for k, v in vars(self).items() if k != "metadata"}
        layout.write_json(
            paths.sandbox(self.id) / "sandbox.json", data | {"metadata": vars(self.metadata)}
        )

    @classmethod
    def load(cls, path: Path) -> SandboxRecord:
        data = json.loads(path.read_text())
        return cls(**(data | {"metadata": cri.PodMeta(**data["metadata"])}))


@dataclass
class ContainerRecord:
    id: str
    sandbox_id: str
    metadata: cri.ContainerMeta
    image: str
    image_ref: str
    created_at: int
    log_path: str
    cgroups_path: str
    tty: bool = False
    stdin: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def save(self, paths: Paths) -> None:
        data = {k: v for k, v in vars(self).items() if k != "metadata"}
        layout.write_json(
            paths.container(self.id) / "record.json", data | {"metadata": vars(self.metadata)}
        )

    @classmethod
    def load(cls, path: Path) -> ContainerRecord:
        data = json.loads(path.read_text())
        return cls(**(data | {"metadata": cri.ContainerMeta(**data["metadata"])}))
