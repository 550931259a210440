"""The real kubectl against `kybern server --simulated-nodes 2`: nodes are Ready, a pod
started with `kubectl run` is scheduled and Running, and the Scheduled event is listed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kybern.testing import server_process
from tests.support import cluster
from tests.support import kubectl as kubectl_

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def sim_kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubectl_.Kubectl]:
    proc = server_process.ServerProcess(
        data_dir=tmp_path_factory.mktemp("kybern-sim"), extra_args=["--simulated-nodes", "2"]
    )
    proc.start(timeout=30)
    try:
        yield kubectl_.Kubectl(proc.kubeconfig)
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()


def _ready_nodes(kubectl: kubectl_.Kubectl) -> list[str]:
    out = kubectl("get", "nodes", "--no-headers").out
    return [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["Ready"]]


def test_get_nodes_shows_two_ready_nodes(sim_kubectl: kubectl_.Kubectl) -> None:
    names = cluster.wait_until(
        lambda: _ready_nodes(sim_kubectl) if len(_ready_nodes(sim_kubectl)) == 2 else None,
        timeout=30,
        what="2 Ready nodes",
    )
    assert sorted(names) == ["sim-node-0", "sim-node-1"]
    wide = sim_kubectl("get", "nodes", "-o", "wide").out
    assert "v1.32.0-kybern" in wide


def test_kubectl_run_pod_becomes_running(sim_kubectl: kubectl_.Kubectl) -> None:
    assert "pod/x created" in sim_kubectl("run", "x", "--image=busybox").out

    def running() -> dict[str, object] | None:
        pod = json.loads(sim_kubectl("get", "pod", "x", "-o", "json").out)
        return pod if pod.get("status", {}).get("phase") == "Running" else None

    pod = cluster.wait_until(running, timeout=30, interval=0.2, what="pod x Running")
    assert pod["spec"]["nodeName"] in ("sim-node-0", "sim-node-1")  # type: ignore[index]
    line = sim_kubectl("get", "pod", "x", "--no-headers").out.split()
    assert line[1:3] == ["1/1", "Running"]
    events = cluster.wait_until(
        lambda: "Scheduled" in (out := sim_kubectl("get", "events").out) and out,
        timeout=30,
        interval=0.2,
        what="a Scheduled event",
    )
    assert "Successfully assigned default/x to sim-node-" in events


def test_standalone_simulate_joins_over_https(
    sim_kubectl: kubectl_.Kubectl, tmp_path: Path
) -> None:
    """`kybern simulate --kubeconfig F --nodes 2 --prefix ext-` registers two more nodes."""
    log = (tmp_path / "simulate.log").open("wb")
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kybern.cli.main",
            "simulate",
            "--kubeconfig",
            str(sim_kubectl.kubeconfig),
            "--nodes",
            "2",
            "--prefix",
            "ext-",
            "--node-labels",
            "pool=external",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        cluster.wait_until(
            lambda: {"ext-0", "ext-1"} <= set(_ready_nodes(sim_kubectl)),
            timeout=30,
            interval=0.2,
            what="ext-0 and ext-1 Ready",
        )
        out = sim_kubectl("get", "nodes", "-l", "pool=external", "-o", "name").out.split()
        assert sorted(out) == ["node/ext-0", "node/ext-1"]
    finally:
        child.terminate()
        child.wait(10)
        log.close()
    assert "Traceback" not in (tmp_path / "simulate.log").read_text()
