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

The records and the status file are the ones every monitored runtime keeps
(:mod:`kybern.runtime.statedir`); this module adds the oci runtime's own fields and places.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kybern.runtime import statedir


@dataclass(frozen=True)
class Paths(statedir.Paths):
    @property
    def runc_root(self) -> Path:
        return self.root / "runc"

    def bundle(self, container_id: str) -> Path:
        return self.container(container_id) / "bundle"


@dataclass(kw_only=True)
class SandboxRecord(statedir.SandboxRecord):
    netns: str = ""  # "" = host network
    ip: str = ""
    cgroup_parent: str = ""
    shared_pid: bool = False
    host_ipc: bool = False


@dataclass(kw_only=True)
class ContainerRecord(statedir.ContainerRecord):
    RECORD_FILE = "record.json"

    image_ref: str
    cgroups_path: str
