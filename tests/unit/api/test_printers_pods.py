"""The pod printer: READY, STATUS as kubectl computes it, RESTARTS with "(5m ago)", wide cells."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.test_printers_helpers import ago, cells, headers, obj


def pod(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "app", "image": "nginx"}])
    return obj("v1", "Pod", "web", 300, spec=spec, status=status or {"phase": "Pending"})


def running(name: str = "app", *, ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(100)}},
    }


def waiting(reason: str, name: str = "app", restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason}},
    }


def terminated(
    name: str = "app", *, code: int = 0, reason: str = "", signal: int = 0
) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": code}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


def test_headers() -> None:
    assert headers("", "Pod") == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert headers("", "Pod", wide=True)[5:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]


def test_pending_pod_golden_row() -> None:
    assert cells("", "Pod", pod()) == [
        "web",
        "0/1",
        "Pending",
        "0",
        "5m",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]


def test_running_pod_with_restarts_ago() -> None:
    container = running(restarts=3)
    container["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}
    status = {
        "phase": "Running",
        "podIP": "10.0.0.5",
        "podIPs": [{"ip": "10.0.0.5"}],
        "containerStatuses": [container],
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    row = cells("", "Pod", pod(status, nodeName="node-1"))
    assert row[:6] == ["web", "1/1", "Running", "3 (5m ago)", "5m", "10.0.0.5"]
    assert row[6] == "node-1"


@pytest.mark.parametrize(
    ("container", "shown"),
    [
        (waiting("ContainerCreating"), "ContainerCreating"),
        (waiting("CrashLoopBackOff"), "CrashLoopBackOff"),
        (terminated(reason="Completed"), "Completed"),
        (terminated(code=2), "ExitCode:2"),
        (terminated(code=137, signal=9), "Signal:9"),
    ],
)
def test_container_reason_is_the_status(container: dict[str, Any], shown: str) -> None:
    status = {"phase": "Running", "containerStatuses": [container]}
    assert cells("", "Pod", pod(status))[2] == shown


def test_first_container_reason_wins() -> None:
    containers = [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]
    status = {
        "phase": "Pending",
        "containerStatuses": [waiting("ErrImagePull", "a"), waiting("ContainerCreating", "b")],
    }
    row = cells("", "Pod", pod(status, containers=containers))
    assert row[1:3] == ["0/2", "ErrImagePull"]


def test_completed_with_a_running_container_reads_running_or_notready() -> None:
    containers = [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]
    statuses = [terminated("a", reason="Completed"), running("b")]
    ready = {
        "phase": "Running",
        "containerStatuses": statuses,
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    assert cells("", "Pod", pod(ready, containers=containers))[1:3] == ["1/2", "Running"]
    not_ready = {"phase": "Running", "containerStatuses": statuses}
    assert cells("", "Pod", pod(not_ready, containers=containers))[2] == "NotReady"


def test_init_containers() -> None:
    init = [{"name": "i1", "image": "x"}, {"name": "i2", "image": "y"}]
    statuses = [terminated("i1", reason="Completed"), waiting("PodInitializing", "i2")]
    status = {"phase": "Pending", "initContainerStatuses": statuses}
    assert cells("", "Pod", pod(status, initContainers=init))[2] == "Init:1/2"
    crash = {"phase": "Pending", "initContainerStatuses": [waiting("CrashLoopBackOff", "i1", 4)]}
    row = cells("", "Pod", pod(crash, initContainers=init))
    assert row[2:4] == ["Init:CrashLoopBackOff", "4"]
    failed = {"phase": "Pending", "initContainerStatuses": [terminated("i1", code=3)]}
    assert cells("", "Pod", pod(failed, initContainers=init))[2] == "Init:ExitCode:3"


def test_sidecar_counts_as_a_container() -> None:
    init = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    sidecar = running("proxy") | {"started": True}
    status = {
        "phase": "Running",
        "initContainerStatuses": [sidecar],
        "containerStatuses": [running()],
        "conditions": [{"type": "Initialized", "status": "True"}],
    }
    assert cells("", "Pod", pod(status, initContainers=init))[1:3] == ["2/2", "Running"]


def test_terminating_and_unknown() -> None:
    deleting = pod({"phase": "Running"})
    deleting["metadata"]["deletionTimestamp"] = ago(1)
    assert cells("", "Pod", deleting)[2] == "Terminating"
    lost = pod({"phase": "Running", "reason": "NodeLost"})
    lost["metadata"]["deletionTimestamp"] = ago(1)
    assert cells("", "Pod", lost)[2] == "Unknown"
    done = pod({"phase": "Succeeded"})
    done["metadata"]["deletionTimestamp"] = ago(1)
    assert cells("", "Pod", done)[2] == "Succeeded"


def test_pod_reason_and_scheduling_gates() -> None:
    assert cells("", "Pod", pod({"phase": "Failed", "reason": "Evicted"}))[2] == "Evicted"
    gated = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    }
    assert cells("", "Pod", pod(gated))[2] == "SchedulingGated"


def test_wide_nominated_node_and_readiness_gates() -> None:
    status = {
        "phase": "Running",
        "nominatedNodeName": "node-2",
        "conditions": [{"type": "example.com/ready", "status": "True"}],
    }
    gates = [{"conditionType": "example.com/ready"}, {"conditionType": "example.com/other"}]
    row = cells("", "Pod", pod(status, readinessGates=gates))
    assert row[5:] == ["<none>", "<none>", "node-2", "1/2"]


def test_completed_row_condition() -> None:
    from kybern.api import printers

    printer = printers.printer_for("", "Pod")
    assert printer.conditions is not None
    assert printer.conditions(pod({"phase": "Succeeded"})) == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    assert printer.conditions(pod({"phase": "Running"})) == []
