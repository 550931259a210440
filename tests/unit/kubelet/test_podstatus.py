"""Pod status builders: the transitions kubelet reports."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.kubelet import podstatus

pytestmark = pytest.mark.timeout(10)
WHERE = podstatus.Placement("192.0.2.1", "10.244.0.5")
NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:00:05Z"


def pod(**spec: Any) -> dict[str, Any]:
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": NOW}
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec},
        "status": {"phase": "Pending", "conditions": [scheduled]},
    }


def test_running_status_is_ready_and_keeps_pod_scheduled() -> None:
    status = podstatus.running_status(pod(), WHERE, NOW)
    assert status["phase"] == "Running"
    assert [c["type"] for c in status["conditions"]] == podstatus.CONDITION_ORDER
    assert all(c["status"] == "True" for c in status["conditions"])
    (c,) = status["containerStatuses"]
    assert c["containerID"] == "sim://u1/app"
    assert c["imageID"] == "sim://nginx"
    assert c["state"] == {"running": {"startedAt": NOW}}
    assert status["podIPs"] == [{"ip": "10.244.0.5"}]


def test_initializing_reports_incomplete_init_containers() -> None:
    p = pod(initContainers=[{"name": "a", "image": "x"}, {"name": "b", "image": "x"}])
    status = podstatus.initializing(p, WHERE, NOW, done=1)
    init = {c["type"]: c for c in status["conditions"]}["Initialized"]
    assert init["status"] == "False"
    assert init["reason"] == "ContainersNotInitialized"
    assert init["message"] == "containers with incomplete status: [b]"
    a, b = status["initContainerStatuses"]
    assert a["state"]["terminated"]["reason"] == "Completed"
    assert "running" in b["state"]
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"


@pytest.mark.parametrize(
    ("code", "phase", "reason"), [(0, "Succeeded", "Completed"), (2, "Failed", "Error")]
)
def test_finished_status(code: int, phase: str, reason: str) -> None:
    running = pod()
    running["status"] = podstatus.running_status(running, WHERE, NOW)
    status = podstatus.finished_status(running, LATER, exit_code=code)
    assert status["phase"] == phase
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (code, reason)
    assert (term["startedAt"], term["finishedAt"]) == (NOW, LATER)
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "False",
        "PodCompleted",
        LATER,
    )


def test_restart_counts_and_keeps_last_state() -> None:
    running = pod(restartPolicy="OnFailure")
    running["status"] = podstatus.running_status(running, WHERE, NOW)
    status = podstatus.restarted_status(running, LATER, exit_code=1)
    (c,) = status["containerStatuses"]
    assert c["restartCount"] == 1
    assert c["lastState"]["terminated"]["exitCode"] == 1
    assert c["state"]["running"]["startedAt"] == LATER
