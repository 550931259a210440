"""Machine facts: capacity and allocatable (eviction thresholds), pressure, addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kybern.kubelet import heartbeat, machine


def test_capacity_and_allocatable() -> None:
    cap = machine.Capacity(cpu=2, memory_bytes=4 * 1024**3, disk_bytes=100 * 1024**3)
    assert cap.capacity() == {
        "cpu": "2",
        "memory": "4194304Ki",
        "pods": "110",
        "ephemeral-storage": "104857600Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    alloc = cap.allocatable()
    assert alloc["memory"] == f"{(4 * 1024**3 - 100 * 1024**2) // 1024}Ki"
    assert alloc["ephemeral-storage"] == str(int(100 * 1024**3 * 0.9))


def test_this_machine(tmp_path: Path) -> None:
    cap = machine.capacity(tmp_path)
    assert cap.cpu >= 1
    assert cap.memory_bytes > 0
    assert cap.disk_bytes > 0
    assert machine.arch()
    assert machine.node_ip().count(".") == 3
    assert machine.node_name() == machine.node_name().lower()


def test_pressure_turns_conditions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    beat = heartbeat.Heartbeat(
        None,  # type: ignore[arg-type]  # status() does no I/O
        heartbeat.NodeConfig(name="n1", ip="192.0.2.1", data_dir=tmp_path, port=10250),
    )
    healthy = {c["type"]: c for c in beat.status(None)["conditions"]}
    assert healthy["MemoryPressure"]["status"] == "False"
    assert healthy["Ready"]["reason"] == "KubeletReady"
    monkeypatch.setattr(machine, "pressure", lambda _d: machine.Pressure(True, False, False))
    status = beat.status({"conditions": list(healthy.values())})
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["MemoryPressure"]["status"] == "True"
    assert conds["MemoryPressure"]["reason"] == "KubeletHasInsufficientMemory"
    assert conds["DiskPressure"]["status"] == "False"
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
