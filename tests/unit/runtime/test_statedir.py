"""The monitored runtimes' shared state directory: records of both runtimes on disk (including
ones written before the records were shared), the status file and its CRI reading."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kybern.runtime import cri, statedir
from kybern.runtime.oci import state
from kybern.runtime.process import layout

pytestmark = pytest.mark.timeout(30)

POD = cri.PodMeta(name="web", namespace="default", uid="u1")
CONTAINER = cri.ContainerMeta(name="app", attempt=2)


def test_process_records_round_trip(tmp_path: Path) -> None:
    paths = layout.Paths(tmp_path)
    sandbox = layout.SandboxRecord(id="s1", metadata=POD, created_at=5, log_directory="/logs")
    container = layout.ContainerRecord(
        id="c1",
        sandbox_id="s1",
        metadata=CONTAINER,
        image="busybox",
        created_at=6,
        argv=["sleep", "1"],
        env=[("A", "1")],
        cwd="/",
        log_path="/logs/app.log",
        user=[1000, 1000],
        labels={"l": "v"},
    )
    for directory in (paths.sandbox("s1"), paths.container("c1")):
        directory.mkdir(parents=True)
    sandbox.save(paths)
    container.save(paths)
    assert layout.SandboxRecord.load(paths.sandbox("s1") / "sandbox.json") == sandbox
    loaded = layout.ContainerRecord.load(paths.container("c1") / "config.json")
    assert loaded == container
    assert loaded.env == [("A", "1")]  # tuples again, not JSON lists


def test_oci_records_round_trip(tmp_path: Path) -> None:
    paths = state.Paths(tmp_path)
    sandbox = state.SandboxRecord(id="s1", metadata=POD, created_at=5, netns="/n", ip="10.0.0.2")
    container = state.ContainerRecord(
        id="c1",
        sandbox_id="s1",
        metadata=CONTAINER,
        image="busybox",
        image_ref="sha256:abc",
        created_at=6,
        log_path="/logs/app.log",
        cgroups_path="/kybern/c1",
        tty=True,
    )
    for directory in (paths.sandbox("s1"), paths.container("c1")):
        directory.mkdir(parents=True)
    sandbox.save(paths)
    container.save(paths)
    assert state.SandboxRecord.load(paths.sandbox("s1") / "sandbox.json") == sandbox
    assert state.ContainerRecord.load(paths.container("c1") / "record.json") == container
    assert paths.bundle("c1") == tmp_path / "containers" / "c1" / "bundle"
    assert paths.runc_root == tmp_path / "runc"


def test_records_written_before_the_shared_base_still_load(tmp_path: Path) -> None:
    """An agent upgraded over a running node adopts what the previous version wrote."""
    old_sandbox = {
        "id": "s1",
        "created_at": 5,
        "ready": False,
        "hostname": "web",
        "netns": "",
        "ip": "127.0.0.1",
        "cgroup_parent": "/kybern/pod",
        "shared_pid": True,
        "host_ipc": False,
        "labels": {},
        "annotations": {"a": "b"},
        "metadata": {"name": "web", "namespace": "default", "uid": "u1", "attempt": 0},
    }
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps(old_sandbox))
    record = state.SandboxRecord.load(path)
    assert (record.ready, record.shared_pid, record.cgroup_parent) == (False, True, "/kybern/pod")
    # and what is saved now has exactly the keys it had
    paths = state.Paths(tmp_path)
    paths.sandbox("s1").mkdir(parents=True)
    record.save(paths)
    assert json.loads((paths.sandbox("s1") / "sandbox.json").read_text()) == old_sandbox


def test_read_status(tmp_path: Path) -> None:
    assert statedir.read_status(tmp_path / "status") == {}
    (tmp_path / "status").write_text("pid=12\nstarted_at=3\nerror=a=b\n")
    assert statedir.read_status(tmp_path / "status") == {
        "pid": "12",
        "started_at": "3",
        "error": "a=b",
    }


BASE = cri.ContainerStatus(
    id="c1", metadata=CONTAINER, state=cri.ContainerState.CREATED, sandbox_id="s1", image="b"
)


@pytest.mark.parametrize(
    ("status", "running", "expected"),
    [
        ({}, False, (cri.ContainerState.CREATED, None, "")),
        ({"pid": "7", "started_at": "1"}, True, (cri.ContainerState.RUNNING, None, "")),
        ({"pid": "7", "started_at": "1"}, False, (cri.ContainerState.EXITED, 255, "Error")),
        (
            {"finished_at": "2", "exit_code": "0"},
            False,
            (cri.ContainerState.EXITED, 0, "Completed"),
        ),
        ({"finished_at": "2", "exit_code": "1"}, False, (cri.ContainerState.EXITED, 1, "Error")),
        (
            {"finished_at": "2", "exit_code": "128", "error": "no such file"},
            False,
            (cri.ContainerState.EXITED, 128, "StartError"),
        ),
        (
            {"finished_at": "2", "exit_code": "137", "oom_killed": "1"},
            False,
            (cri.ContainerState.EXITED, 137, "OOMKilled"),
        ),
    ],
)
def test_container_status(
    status: dict[str, str],
    running: bool,
    expected: tuple[cri.ContainerState, int | None, str],
) -> None:
    result = statedir.container_status(BASE, status, running=running)
    state_, code, reason = expected
    assert result.state == state_
    assert result.reason == reason
    if code is not None:
        assert result.exit_code == code
    if state_ == cri.ContainerState.RUNNING:
        assert result == replace(BASE, state=state_, started_at=1, pid=7)


def test_monitor_spec_defaults_and_overrides() -> None:
    config = cri.ContainerConfig(metadata=CONTAINER, image="busybox", tty=True)
    spec = statedir.monitor_spec(config, "/l.log", {"log_max_files": "2"})
    assert spec["tty"] is True
    assert spec["log_path"] == "/l.log"
    assert spec["log_max_size"] == statedir.LOG_MAX_SIZE
    assert spec["log_max_files"] == 2


@pytest.mark.parametrize(
    "module", ["kybern.runtime.monitored", "kybern.runtime.oci", "kybern.runtime.process.layout"]
)
def test_imports_in_any_order(module: str) -> None:
    """The shared base imports nothing of the runtimes that subclass it at import time."""
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=20)
