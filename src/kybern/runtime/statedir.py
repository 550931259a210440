"""The state directory of the monitored runtimes (``process``, ``oci``): records and status files.

Everything such a runtime knows about its pods is on disk, so a restarted agent rebuilds its
view by reading it back (:meth:`kybern.runtime.monitored.MonitoredRuntime._adopt`)::

    <root>/sandboxes/<id>/sandbox.json          the sandbox record (:class:`SandboxRecord`)
    <root>/containers/<id>/<RECORD_FILE>         the container record (:class:`ContainerRecord`)
    <root>/containers/<id>/status               written by the container's monitor only:
                                                key=value lines (see process/monitor.py)

Each runtime extends the records with its own fields and :class:`Paths` with its own places
(:mod:`kybern.runtime.process.layout`, :mod:`kybern.runtime.oci.state`). Records are JSON,
replaced atomically (write a temporary file, rename): a crash never leaves half a record.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Self

from kybern.runtime import cri

LOG_MAX_SIZE = 10 * 1024 * 1024  # as the kubelet's containerLogMaxSize default
LOG_MAX_FILES = 5  # as containerLogMaxFiles: the current file and 4 rotated ones


@dataclass(frozen=True)
class Paths:
    root: Path

    def sandbox(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / sandbox_id

    def container(self, container_id: str) -> Path:
        return self.root / "containers" / container_id

    def status(self, container_id: str) -> Path:
        """The monitor's status file (:func:`read_status`)."""
        return self.container(container_id) / "status"


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _dump(record: SandboxRecord | ContainerRecord) -> dict[str, Any]:
    data = {k: v for k, v in vars(record).items() if k != "metadata"}
    return data | {"metadata": vars(record.metadata)}


@dataclass
class SandboxRecord:
    """What every monitored runtime keeps about a sandbox; runtimes add their own fields."""

    RECORD_FILE: ClassVar[str] = "sandbox.json"

    id: str
    metadata: cri.PodMeta
    created_at: int
    ready: bool = True
    hostname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def save(self, paths: Paths) -> None:
        write_json(paths.sandbox(self.id) / self.RECORD_FILE, _dump(self))

    @classmethod
    def load(cls, path: Path) -> Self:
        data = json.loads(path.read_text())
        return cls(**(data | {"metadata": cri.PodMeta(**data["metadata"])}))


@dataclass
class ContainerRecord:
    """What every monitored runtime keeps about a container; runtimes add their own fields
    and name the record's file (``RECORD_FILE``)."""

    RECORD_FILE: ClassVar[str]

    id: str
    sandbox_id: str
    metadata: cri.ContainerMeta
    image: str
    created_at: int
    log_path: str
    tty: bool = False
    stdin: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def save(self, paths: Paths) -> None:
        write_json(paths.container(self.id) / self.RECORD_FILE, _dump(self))

    @classmethod
    def load(cls, path: Path) -> Self:
        return cls(**cls.decode(json.loads(path.read_text())))

    @classmethod
    def decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The constructor's arguments from the record's JSON (subclasses fix their own types)."""
        return data | {"metadata": cri.ContainerMeta(**data["metadata"])}


def monitor_spec(
    config: cri.ContainerConfig, log_path: str, extra: dict[str, str]
) -> dict[str, Any]:
    """The keys of a monitor's ``spec.bin`` that every monitored runtime writes: stdio and the
    CRI log (see process/monitor.py); each runtime adds what its monitor runs."""
    return {
        "tty": config.tty,
        "stdin": config.stdin,
        "stdin_once": config.stdin_once,
        "log_path": log_path,
        "log_max_size": int(extra.get("log_max_size", LOG_MAX_SIZE)),
        "log_max_files": int(extra.get("log_max_files", LOG_MAX_FILES)),
    }


def read_status(path: Path) -> dict[str, str]:
    """The monitor's ``status`` file; {} before the monitor wrote it."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def container_status(
    base: cri.ContainerStatus, status: dict[str, str], *, running: bool
) -> cri.ContainerStatus:
    """Fill state, times, pid and exit from the monitor's status file."""
    started = int(status.get("started_at", "0"))
    if "finished_at" in status:
        code = int(status.get("exit_code", "0"))
        error = status.get("error", "")
        reason = "StartError" if error else ("Completed" if code == 0 else "Error")
        if status.get("oom_killed") == "1":  # only the oci shim watches a memory cgroup
            reason = "OOMKilled"
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
