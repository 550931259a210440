"""The process runtime's state directory: where sandboxes and containers live on disk.

Everything the runtime knows is here, so a restarted agent rebuilds its view by reading it
(:meth:`ProcessRuntime.start`)::

    <root>/sandboxes/<id>/sandbox.json   the sandbox record (metadata, state, labels ...)
    <root>/sandboxes/<id>/work/          the pod's directory: the containers' default cwd
    <root>/containers/<id>/config.json   the container record, written by create_container
    <root>/containers/<id>/spec.bin      what the monitor runs (marshal: the monitor is stdlib-only)
    <root>/containers/<id>/status        written by the monitor only: key=value lines
    <root>/containers/<id>/attach.sock   the monitor's attach socket while the container runs
    <root>/containers/<id>/monitor.log   the monitor's own stderr
    <root>/containers/<id>/scratch/      staging mount points (volumes, see mounts.py)

JSON records are replaced atomically (write a temporary file, rename).
"""

from __future__ import annotations

import json
import marshal
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kybern.runtime import cri

LOG_MAX_SIZE = 10 * 1024 * 1024  # as the kubelet's containerLogMaxSize default
LOG_MAX_FILES = 5  # as containerLogMaxFiles: the current file and 4 rotated ones


@dataclass(frozen=True)
class Paths:
    root: Path

    def sandbox(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / sandbox_id

    def pod_dir(self, sandbox_id: str) -> Path:
        return self.sandbox(sandbox_id) / "work"

    def container(self, container_id: str) -> Path:
        return self.root / "containers" / container_id


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, str]:
    """The monitor's ``status`` file; {} before the monitor wrote it."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@dataclass
class SandboxRecord:
    id: str
    metadata: cri.PodMeta
    created_at: int
    ready: bool = True
    hostname: str = ""
    log_directory: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def save(self, paths: Paths) -> None:
        data = {k: v for k, v in vars(self).items() if k != "metadata"}
        write_json(
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
    created_at: int
    argv: list[str]
    env: list[tuple[str, str]]
    cwd: str
    log_path: str
    has_mounts: bool = False
    user: list[int] = field(default_factory=list)  # [uid, gid, *groups] to switch to; [] = ours
    tty: bool = False
    stdin: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def save(self, paths: Paths) -> None:
        data = {k: v for k, v in vars(self).items() if k != "metadata"}
        write_json(
            paths.container(self.id) / "config.json", data | {"metadata": vars(self.metadata)}
        )

    @classmethod
    def load(cls, path: Path) -> ContainerRecord:
        data = json.loads(path.read_text())
        env = [(k, v) for k, v in data["env"]]
        return cls(**(data | {"metadata": cri.ContainerMeta(**data["metadata"]), "env": env}))


def container_status(
    base: cri.ContainerStatus, status: dict[str, str], *, running: bool
) -> cri.ContainerStatus:
    """Fill state, times, pid and exit from the monitor's status file."""
    started = int(status.get("started_at", "0"))
    if "finished_at" in status:
        code = int(status.get("exit_code", "0"))
        error = status.get("error", "")
        reason = "StartError" if error else ("Completed" if code == 0 else "Error")
        return replace(
            base,
            state=cri.ContainerState.EXITED,
            started_at=started,
            finished_at=int(status["finished_at"]),
            exit_code=code,
            reason=reason,
            message=error,
        )
    if "pid" not in status:
        return base
    if running:
        return replace(
            base, state=cri.ContainerState.RUNNING, started_at=started, pid=int(status["pid"])
        )
    return replace(  # monitor and process are gone without a word (both killed)
        base,
        state=cri.ContainerState.EXITED,
        started_at=started,
        finished_at=started,
        exit_code=255,
        reason="Error",
        message="the container and its monitor disappeared; its exit code is unknown",
    )


def write_spec(
    paths: Paths, record: ContainerRecord, config: cri.ContainerConfig, extra: dict[str, str]
) -> None:
    """The monitor's instructions (see monitor.py for the keys it reads)."""
    directory = paths.container(record.id)
    spec = {
        "argv": record.argv,
        "env": record.env,
        "cwd": record.cwd,
        "tty": config.tty,
        "stdin": config.stdin,
        "stdin_once": config.stdin_once,
        "log_path": record.log_path,
        "log_max_size": int(extra.get("log_max_size", LOG_MAX_SIZE)),
        "log_max_files": int(extra.get("log_max_files", LOG_MAX_FILES)),
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
