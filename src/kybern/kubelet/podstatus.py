"""Pod status as kubelet v1.32 reports it, built from the pod and what its containers do.

Pure builders (no I/O): the simulated nodes use them to walk a pod through the real
transitions, and the real kubelet will reuse them. Each returns a complete ``status`` (lists
replaced whole, as a merge patch does), keeping the PodScheduled condition the binding wrote
and every condition's ``lastTransitionTime`` while its status does not change.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# kubelet's order of pod conditions in status
CONDITION_ORDER = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
]


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Placement:
    """Where the pod runs: the node's IP and the pod's own."""

    host_ip: str
    pod_ip: str


def _names(pod: Obj, field: str) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get(field) or []]


def _images(pod: Obj, field: str) -> dict[str, str]:
    return {c.get("name", ""): c.get("image", "") for c in (pod.get("spec") or {}).get(field) or []}


def container_id(pod: Obj, name: str) -> str:
    return f"sim://{(pod.get('metadata') or {}).get('uid', '')}/{name}"


def _base(pod: Obj, name: str, image: str) -> Obj:
    return {
        "name": name,
        "image": image,
        "imageID": f"sim://{image}",
        "containerID": container_id(pod, name),
        "lastState": {},
        "restartCount": 0,
    }


def running(pod: Obj, name: str, image: str, started_at: str, *, restarts: int = 0) -> Obj:
    return {
        **_base(pod, name, image),
        "state": {"running": {"startedAt": started_at}},
        "ready": True,
        "started": True,
        "restartCount": restarts,
    }


def terminated(
    pod: Obj, name: str, image: str, *, started_at: str, finished_at: str, exit_code: int
) -> Obj:
    return {
        **_base(pod, name, image),
        "state": {"terminated": _terminated_state(pod, name, started_at, finished_at, exit_code)},
        "ready": False,
        "started": False,
    }


def _terminated_state(
    pod: Obj, name: str, started_at: str, finished_at: str, exit_code: int
) -> Obj:
    return {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": started_at,
        "finishedAt": finished_at,
        "containerID": container_id(pod, name),
    }


def waiting(name: str, image: str, reason: str) -> Obj:
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "state": {"waiting": {"reason": reason}},
        "lastState": {},
        "ready": False,
        "started": False,
        "restartCount": 0,
    }


def conditions(pod: Obj, now: str, wanted: dict[str, tuple[str, str, str]]) -> list[Obj]:
    """``wanted``: type -> (status, reason, message); PodScheduled is kept as written."""
    previous = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    out = []
    for type_ in CONDITION_ORDER:
        if type_ == "PodScheduled" and type_ not in wanted:
            if type_ in previous:
                out.append(previous[type_])
            continue
        value, reason, message = wanted[type_]
        old = previous.get(type_) or {}
        transition = old.get("lastTransitionTime") if old.get("status") == value else None
        cond: Obj = {
            "type": type_,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": transition or now,
        }
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        out.append(cond)
    return out


def _placed(pod: Obj, where: Placement, now: str) -> Obj:
    status = pod.get("status") or {}
    return {
        "hostIP": where.host_ip,
        "hostIPs": [{"ip": where.host_ip}],
        "podIP": where.pod_ip,
        "podIPs": [{"ip": where.pod_ip}],
        "startTime": status.get("startTime") or now,
    }


def initializing(pod: Obj, where: Placement, now: str, *, done: int) -> Obj:
    """Pending while init container ``done`` runs (those before it Completed)."""
    inits = list(_images(pod, "initContainers").items())
    mains = list(_images(pod, "containers").items())
    pending = [n for n, _ in inits[done:]]
    unready = [n for n, _ in mains]
    init_statuses = []
    for i, (name, image) in enumerate(inits):
        if i < done:
            s = terminated(pod, name, image, started_at=now, finished_at=now, exit_code=0)
            s["ready"] = True
            init_statuses.append(s)
        elif i == done:
            s = running(pod, name, image, now)
            s["ready"] = False
            init_statuses.append(s)
        else:
            init_statuses.append(waiting(name, image, "PodInitializing"))
    msg_init = f"containers with incomplete status: [{' '.join(pending)}]"
    msg_ready = f"containers with unready status: [{' '.join(unready)}]"
    return {
        "phase": "Pending",
        "conditions": conditions(
            pod,
            now,
            {
                "PodReadyToStartContainers": ("True", "", ""),
                "Initialized": ("False", "ContainersNotInitialized", msg_init),
                "Ready": ("False", "ContainersNotReady", msg_ready),
                "ContainersReady": ("False", "ContainersNotReady", msg_ready),
            },
        ),
        "initContainerStatuses": init_statuses,
        "containerStatuses": [waiting(n, i, "PodInitializing") for n, i in mains],
        **_placed(pod, where, now),
    }


def _completed_inits(pod: Obj, now: str) -> list[Obj]:
    previous = {
        s.get("name"): s for s in (pod.get("status") or {}).get("initContainerStatuses") or []
    }
    out = []
    for name, image in _images(pod, "initContainers").items():
        old = previous.get(name) or {}
        if "terminated" in (old.get("state") or {}):
            out.append(old)
            continue
        s = terminated(pod, name, image, started_at=now, finished_at=now, exit_code=0)
        s["ready"] = True
        out.append(s)
    return out


def running_status(pod: Obj, where: Placement, now: str, *, restarts: int = 0) -> Obj:
    """Running with every container started and ready."""
    status: Obj = {
        "phase": "Running",
        "conditions": conditions(
            pod,
            now,
            {
                "PodReadyToStartContainers": ("True", "", ""),
                "Initialized": ("True", "", ""),
                "Ready": ("True", "", ""),
                "ContainersReady": ("True", "", ""),
            },
        ),
        "containerStatuses": [
            running(pod, n, i, now, restarts=restarts)
            for n, i in _images(pod, "containers").items()
        ],
        **_placed(pod, where, now),
    }
    if _names(pod, "initContainers"):
        status["initContainerStatuses"] = _completed_inits(pod, now)
    return status


def restarted_status(pod: Obj, now: str, *, exit_code: int) -> Obj:
    """restartPolicy OnFailure after a failure: containers run again, restartCount + 1."""
    status = dict(pod.get("status") or {})
    statuses = []
    for old in status.get("containerStatuses") or []:
        started = ((old.get("state") or {}).get("running") or {}).get("startedAt") or now
        name = old.get("name", "")
        new = running(pod, name, old.get("image", ""), now, restarts=old.get("restartCount", 0) + 1)
        new["lastState"] = {"terminated": _terminated_state(pod, name, started, now, exit_code)}
        statuses.append(new)
    status["containerStatuses"] = statuses
    return status


def finished_status(pod: Obj, now: str, *, exit_code: int) -> Obj:
    """Every container terminated with ``exit_code``: Succeeded when 0, else Failed."""
    status = dict(pod.get("status") or {})
    images = _images(pod, "containers")
    previous = {s.get("name"): s for s in status.get("containerStatuses") or []}
    statuses = []
    for name, image in images.items():
        old = previous.get(name) or {}
        state = old.get("state") or {}
        if "terminated" in state:
            statuses.append(old)
            continue
        started = (state.get("running") or {}).get("startedAt") or now
        s = terminated(pod, name, image, started_at=started, finished_at=now, exit_code=exit_code)
        s["restartCount"] = old.get("restartCount", 0)
        s["imageID"] = old.get("imageID") or s["imageID"]
        statuses.append(s)
    status["containerStatuses"] = statuses
    status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    done = ("False", "PodCompleted", "")
    status["conditions"] = conditions(
        pod,
        now,
        {
            "PodReadyToStartContainers": ("False", "", ""),
            "Initialized": ("True", "PodCompleted", ""),
            "Ready": done,
            "ContainersReady": done,
        },
    )
    status.setdefault("startTime", now)
    return status
