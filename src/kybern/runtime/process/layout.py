"""The process runtime's state directory: where sandboxes and containers live on disk.

Everything the runtime knows is here, so a restarted agent rebuilds its view by reading it
(:meth:`ProcessRuntime.start`)::

    <root>/sandboxes/<id>/sandbox.json   the sandbox record (metadata, state, labels ...)
    <root>/sandboxes/<id>/work/          the pod's directory: the containers' default cwd
    <root>/containers/<id>/config.json   the container record, written by create_container
    <root>/containers/<id>/spec.bin      what the monitor runs (marshal: the monitor is stdlib-only)
    <root>/containers/<id>/status        written by the monitor only: key=value lines
                                         (:mod:`kybern.runtime.statedir` reads it)
    <root>/containers/<id>/attach.sock   the monitor's attach socket while the container runs
    <root>/containers/<id>/monitor.log   the monitor's own stderr
    <root>/containers/<id>/scratch/      staging mount points (volumes, see mounts.py)

The records and the status file are the ones every monitored runtime keeps
(:mod:`kybern.runtime.statedir`); this module adds the process runtime's own fields and the
monitor's instructions.
"""

from __future__ import annotations

import marshal
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kybern.runtime import cri, statedir


@dataclass(frozen=True)
class Paths(statedir.Paths):
    def pod_dir(self, sandbox_id: str) -> Path:
        return self.sandbox(sandbox_id) / "work"


@dataclass(kw_only=True)
class SandboxRecord(statedir.SandboxRecord):
    log_directory: str = ""


@dataclass(kw_only=True)
class ContainerRecord(statedir.ContainerRecord):
    RECORD_FILE = "config.json"

    argv: list[str]
    env: list[tuple[str, str]]
    cwd: str
    has_mounts: bool = False
    user: list[int] = field(default_factory=list)  # [uid, gid, *groups] to switch to; [] = ours

    @classmethod
    def decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        return super().decode(data) | {"env": [(k, v) for k, v in data["env"]]}


def write_spec(
    paths: Paths, record: ContainerRecord, config: cri.ContainerConfig, extra: dict[str, str]
) -> None:
    """The monitor's instructions (see monitor.py for the keys it reads)."""
    directory = paths.container(record.id)
    spec = {
        "argv": record.argv,
        "env": record.env,
        "cwd": record.cwd,
        **statedir.monitor_spec(config, record.log_path, extra),
        "mounts": [
            (m.host_path, m.container_path, m.readonly, m.propagation) for m in mounts(config)
        ],
        "scratch": str(directory / "scratch"),
        "user": record.user,
    }
    (directory / "spec.bin").write_bytes(marshal.dumps(spec))


def mounts(config: cri.ContainerConfig) -> tuple[cri.Mount, ...]:
    """The container's volumes, plus its termination message file when it has volumes anyway
    (a mount namespace only for /dev/termination-log would cost every container; without one
    the kubelet falls back to the logs)."""
    host, path = config.termination_message_host_path, config.termination_message_path
    if not config.mounts or not host or not path or not os.path.isfile(host):
        return config.mounts
    if any(m.container_path == path for m in config.mounts):
        return config.mounts
    return (*config.mounts, cri.Mount(container_path=path, host_path=host))
