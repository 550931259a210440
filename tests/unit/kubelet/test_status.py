"""Pod status from runtime containers: states, reasons, restart counts, phase, conditions."""

from __future__ import annotations

import datetime
from typing import Any

from kybern.kubelet import status
from kybern.runtime import cri

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z


def pod(restart: str = "Always", inits: int = 0, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {
            "restartPolicy": restart,
            "containers": [{"name": "app", "image": "img"}],
            "initContainers": [{"name": f"init{i}", "image": "img"} for i in range(inits)],
            **spec,
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


def sandbox() -> cri.PodSandboxStatus:
    return cri.PodSandboxStatus(
        id="s",
        metadata=cri.PodMeta("p", "default", "u"),
        state=cri.SandboxState.READY,
        created_at=NS,
        ip="10.0.0.5",
    )


def container(
    name: str = "app", attempt: int = 0, state: str = "running", code: int = 0, cid: str = ""
) -> cri.ContainerStatus:
    return cri.ContainerStatus(
        id=cid or f"{name}-{attempt}",
        metadata=cri.ContainerMeta(name, attempt),
        state={"running": cri.ContainerState.RUNNING, "exited": cri.ContainerState.EXITED}[state],
        sandbox_id="s",
        image="img",
        image_ref="sha256:abc",
        created_at=NS + attempt,
        started_at=NS,
        finished_at=NS + 5_000_000_000 if state == "exited" else 0,
        exit_code=code,
    )


def build(p: dict[str, Any], *cs: cri.ContainerStatus, **extra: Any) -> dict[str, Any]:
    observed = status.Observed(sandbox=sandbox(), containers=list(cs), **extra)
    return status.pod_status(p, observed, runtime="fake", host_ip="192.0.2.1", now=NOW)


def conds(s: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in s["conditions"]}


def test_not_created_yet_is_container_creating() -> None:
    s = build(pod())
    assert s["phase"] == "Pending"
    app = s["containerStatuses"][0]
    assert app["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert (app["ready"], app["started"], app["restartCount"], app["imageID"]) == (
        False,
        False,
        0,
        "",
    )
    assert s["podIP"] == "10.0.0.5"
    assert s["hostIPs"] == [{"ip": "192.0.2.1"}]
    assert s["qosClass"] == "BestEffort"
    assert conds(s)["ContainersReady"] == ("False", "ContainersNotReady")


def test_running_is_ready() -> None:
    s = build(pod(), container())
    assert s["phase"] == "Running"
    app = s["containerStatuses"][0]
    assert app["state"] == {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    assert app["containerID"] == "fake://app-0"
    assert conds(s)["Ready"] == ("True", "")
    assert conds(s)["PodReadyToStartContainers"] == ("True", "")


def test_readiness_probe_false_keeps_pod_unready() -> None:
    s = build(pod(), container(), ready={"app": False})
    ready = next(c for c in s["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "containers with unready status: [app]"


def test_restart_count_and_last_state() -> None:
    s = build(pod(), container(attempt=2), container(attempt=1, state="exited", code=1))
    app = s["containerStatuses"][0]
    assert app["restartCount"] == 2
    assert app["lastState"]["terminated"]["exitCode"] == 1
    assert app["lastState"]["terminated"]["reason"] == "Error"


def test_crash_loop_waiting_shows_last_termination() -> None:
    waiting = {"app": status.Waiting("CrashLoopBackOff", "back-off 10s ...")}
    s = build(pod(), container(attempt=1, state="exited", code=2), waiting=waiting)
    app = s["containerStatuses"][0]
    assert app["state"] == {
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s ..."}
    }
    assert app["lastState"]["terminated"]["exitCode"] == 2
    assert s["phase"] == "Running"


def test_phases_by_restart_policy() -> None:
    ok, bad = container(state="exited", code=0), container(state="exited", code=1)
    assert build(pod("Never"), ok)["phase"] == "Succeeded"
    assert build(pod("Never"), bad)["phase"] == "Failed"
    assert build(pod("OnFailure"), ok)["phase"] == "Succeeded"
    assert build(pod("OnFailure"), bad)["phase"] == "Running"
    assert build(pod("Always"), ok)["phase"] == "Running"
    assert build(pod("Always"), bad, terminal=True)["phase"] == "Failed"
    assert build(pod("Always"), ok, terminal=True)["phase"] == "Succeeded"
    done = build(pod("Never"), ok)
    assert conds(done)["Ready"] == ("False", "PodCompleted")
    assert conds(done)["Initialized"] == ("True", "PodCompleted")


def test_init_containers() -> None:
    s = build(pod(inits=2), container("init0", state="exited"), container("init1"))
    assert s["phase"] == "Pending"
    assert [c["ready"] for c in s["initContainerStatuses"]] == [True, False]
    assert s["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    init = next(c for c in s["conditions"] if c["type"] == "Initialized")
    assert init["message"] == "containers with incomplete status: [init1]"
    failed = build(pod("Never", inits=1), container("init0", state="exited", code=1))
    assert failed["phase"] == "Failed"


def test_terminal_phase_sticks_and_transition_time_kept() -> None:
    p = pod("Never")
    p["status"] = build(p, container(state="exited"))
    again = status.pod_status(
        p,
        status.Observed(),
        runtime="fake",
        host_ip="192.0.2.1",
        now=NOW + datetime.timedelta(minutes=1),
    )
    assert again["phase"] == "Succeeded"
    assert again["startTime"] == p["status"]["startTime"]


def test_termination_message_from_observed() -> None:
    c = container(state="exited", code=1)
    s = build(pod("Never"), c, messages={c.id: "boom"})
    assert s["containerStatuses"][0]["state"]["terminated"]["message"] == "boom"


def test_running_sidecar_counts_as_initialized() -> None:
    p = pod("Never", inits=1)
    p["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    s = build(p, container("init0"), container("app"))
    assert s["phase"] == "Running"
    assert conds(s)["Initialized"] == ("True", "")
    sidecar = s["initContainerStatuses"][0]
    assert (sidecar["ready"], sidecar["started"]) == (True, True)
