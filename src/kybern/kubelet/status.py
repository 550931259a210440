"""A pod's API status computed from what the runtime reports, as kubelet v1.32 writes it.

Pure (no I/O): :func:`pod_status` takes the pod, its sandbox and containers as the runtime
lists them, and what the sync learnt on the way (a container waiting in CrashLoopBackOff or
ErrImagePull, probe results, termination messages), and returns the ``status`` the kubelet
sends through ``pods/status``. It follows kubelet's ``generateAPIPodStatus`` and ``getPhase``:

- per container, the most recent runtime container is ``state`` and the one before it
  ``lastState``; ``restartCount`` is the recent one's attempt; ``containerID`` is
  ``<runtime>://<id>``; a container the runtime has not created yet waits with
  ``ContainerCreating`` (``PodInitializing`` while init containers run);
- phase: Pending while initialising or any container waits for its first start; Running while
  one runs (or all stopped and restartPolicy restarts them); Succeeded when all exited 0
  and none restarts; Failed when one failed and none restarts (or an init container failed
  with restartPolicy Never);
- conditions PodReadyToStartContainers, Initialized, Ready, ContainersReady (PodScheduled is
  kept as the scheduler wrote it), with kubelet's reasons and messages.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from kybern.kubelet import podstatus
from kybern.runtime import cri

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")
KEPT = ("qosClass", "nominatedNodeName", "resize", "resourceClaimStatuses")


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass
class Observed:
    """What one sync learnt about the pod beyond the runtime's lists."""

    sandbox: cri.PodSandboxStatus | None = None
    containers: list[cri.ContainerStatus] = field(default_factory=list)
    waiting: dict[str, Waiting] = field(default_factory=dict)  # container name -> override
    ready: dict[str, bool] = field(default_factory=dict)  # readiness probe results
    started: dict[str, bool] = field(default_factory=dict)  # startup probe results
    messages: dict[str, str] = field(default_factory=dict)  # container id -> termination msg
    terminal: bool = False  # the pod is being terminated and nothing runs any more


def rfc3339_ns(ns: int) -> str | None:
    if not ns:
        return None
    moment = datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def by_name(containers: Iterable[cri.ContainerStatus]) -> dict[str, list[cri.ContainerStatus]]:
    """Container name -> its runtime containers, most recent first."""
    out: dict[str, list[cri.ContainerStatus]] = {}
    for c in containers:
        out.setdefault(c.metadata.name, []).append(c)
    for items in out.values():
        items.sort(key=lambda c: (c.metadata.attempt, c.created_at), reverse=True)
    return out


def _terminated(c: cri.ContainerStatus, runtime: str, message: str) -> Obj:
    state: Obj = {
        "exitCode": c.exit_code,
        "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
        "startedAt": rfc3339_ns(c.started_at),
        "finishedAt": rfc3339_ns(c.finished_at),
        "containerID": f"{runtime}://{c.id}",
    }
    text = message or c.message
    if text:
        state["message"] = text
    return state


def _state(c: cri.ContainerStatus, runtime: str, observed: Observed) -> Obj:
    if c.state is cri.ContainerState.RUNNING:
        return {"running": {"startedAt": rfc3339_ns(c.started_at)}}
    if c.state is cri.ContainerState.EXITED:
        return {"terminated": _terminated(c, runtime, observed.messages.get(c.id, ""))}
    return {"waiting": {"reason": "ContainerCreating"}}


def container_status(
    spec: Obj,
    history: list[cri.ContainerStatus],
    observed: Observed,
    *,
    runtime: str,
    default_reason: str,
) -> Obj:
    """One entry of containerStatuses / initContainerStatuses."""
    name = str(spec.get("name", ""))
    status: Obj = {"name": name, "image": spec.get("image", ""), "imageID": "", "lastState": {}}
    override = observed.waiting.get(name)
    latest = history[0] if history else None
    if latest is None:
        waiting = override or Waiting(default_reason)
        status["state"] = {"waiting": _waiting(waiting)}
        status.update(ready=False, restartCount=0, started=False)
        return status
    status["imageID"] = latest.image_ref
    status["containerID"] = f"{runtime}://{latest.id}"
    status["restartCount"] = latest.metadata.attempt
    state = _state(latest, runtime, observed)
    previous = history[1] if len(history) > 1 else None
    if override is not None and latest.state is cri.ContainerState.EXITED:
        previous, state = latest, {"waiting": _waiting(override)}
    elif override is not None and latest.state is not cri.ContainerState.RUNNING:
        state = {"waiting": _waiting(override)}
    if previous is not None and previous.state is cri.ContainerState.EXITED:
        msg = observed.messages.get(previous.id, "")
        status["lastState"] = {"terminated": _terminated(previous, runtime, msg)}
    running = "running" in state
    status["state"] = state
    status["started"] = running and observed.started.get(name, True)
    status["ready"] = status["started"] and observed.ready.get(name, True)  # never before started
    return status


def _waiting(w: Waiting) -> Obj:
    out: Obj = {"reason": w.reason}
    if w.message:
        out["message"] = w.message
    return out


def sidecars(pod: Obj) -> set[str]:
    """Init containers with restartPolicy Always: they start in order, then keep running."""
    inits = (pod.get("spec") or {}).get("initContainers") or []
    return {str(c.get("name", "")) for c in inits if c.get("restartPolicy") == "Always"}


def _init_done(status: Obj, side: AbstractSet[str] = frozenset()) -> bool:
    if status["name"] in side:
        return status.get("started") is True  # a sidecar counts once it runs (and started)
    return (status["state"].get("terminated") or {}).get("exitCode") == 0


def _init_failed(status: Obj) -> bool:
    terminated: Obj | None = status["state"].get("terminated")
    if terminated is None and "waiting" in status["state"]:
        terminated = (status.get("lastState") or {}).get("terminated")
    return terminated is not None and terminated.get("exitCode") != 0


def phase(pod: Obj, inits: list[Obj], mains: list[Obj], *, terminal: bool) -> str:
    """kubelet's getPhase (sidecar init containers aside)."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    side = sidecars(pod)
    pending_init = any(not _init_done(s, side) for s in inits)
    if policy == "Never" and any(_init_failed(s) for s in inits if s["name"] not in side):
        return "Failed"
    if pending_init and not terminal:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for s in mains:
        state = s["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif (s.get("lastState") or {}).get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting and not terminal:
        return "Pending"
    if running:
        return "Running"
    if stopped == 0:
        return "Failed" if terminal else "Pending"
    if policy == "Always" and not terminal:
        return "Running"
    if stopped == succeeded and not waiting:
        return "Succeeded"
    if policy == "Never" or terminal:
        return "Failed"
    return "Running"


def _names_where(statuses: list[Obj], pred: Any) -> list[str]:
    return [s["name"] for s in statuses if pred(s)]


def conditions(
    pod: Obj, inits: list[Obj], mains: list[Obj], *, phase_: str, sandbox_ready: bool, now: str
) -> list[Obj]:
    side = sidecars(pod)
    incomplete = _names_where(inits, lambda s: not _init_done(s, side))
    unready = _names_where(mains, lambda s: not s.get("ready"))
    if not incomplete:
        initialized = ("True", "PodCompleted" if phase_ == "Succeeded" else "", "")
    else:
        msg = f"containers with incomplete status: [{' '.join(incomplete)}]"
        initialized = ("False", "ContainersNotInitialized", msg)
    if phase_ == "Succeeded":
        ready = ("False", "PodCompleted", "")
    elif unready:
        ready = (
            "False",
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(unready)}]",
        )
    else:
        ready = ("True", "", "")
    pod_ready = _readiness_gates(pod) if ready[0] == "True" else ready
    wanted = {
        "PodReadyToStartContainers": ("True" if sandbox_ready else "False", "", ""),
        "Initialized": initialized,
        "ContainersReady": ready,
        "Ready": pod_ready,
    }
    return podstatus.conditions(pod, now, wanted)


def _readiness_gates(pod: Obj) -> tuple[str, str, str]:
    present = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = gate.get("conditionType", "")
        cond = present.get(kind)
        if cond is None:
            msg = f'corresponding condition of pod readiness gate "{kind}" does not exist.'
            return ("False", "ReadinessGatesNotReady", msg)
        if cond.get("status") != "True":
            msg = (
                f'the status of pod readiness gate "{kind}" is not "True", but {cond.get("status")}'
            )
            return ("False", "ReadinessGatesNotReady", msg)
    return ("True", "", "")


def pod_status(
    pod: Obj,
    observed: Observed,
    *,
    runtime: str,
    host_ip: str,
    now: datetime.datetime,
) -> Obj:
    """The complete ``status`` to write (see the module docstring)."""
    spec = pod.get("spec") or {}
    previous = pod.get("status") or {}
    history = by_name(observed.containers)
    inits = [
        container_status(
            c,
            history.get(c.get("name", ""), []),
            observed,
            runtime=runtime,
            default_reason="PodInitializing",
        )
        for c in spec.get("initContainers") or []
    ]
    side = sidecars(pod)
    for s in inits:
        if s["name"] not in side:
            s["ready"] = _init_done(s)  # a running (non-sidecar) init container is never ready
        if "terminated" in s["state"] or "waiting" in s["state"]:
            s["started"] = False
    initializing = any(not _init_done(s, side) for s in inits)
    default = "PodInitializing" if initializing else "ContainerCreating"
    mains = [
        container_status(
            c, history.get(c.get("name", ""), []), observed, runtime=runtime, default_reason=default
        )
        for c in spec.get("containers") or []
    ]
    phase_ = phase(pod, inits, mains, terminal=observed.terminal)
    if previous.get("phase") in TERMINAL:
        phase_ = previous["phase"]  # a terminal phase never changes
    stamp = podstatus.rfc3339(now)
    sandbox = observed.sandbox
    sandbox_ready = sandbox is not None and sandbox.state is cri.SandboxState.READY
    status: Obj = {k: previous[k] for k in KEPT if k in previous}
    status["phase"] = phase_
    status["conditions"] = conditions(
        pod, inits, mains, phase_=phase_, sandbox_ready=sandbox_ready, now=stamp
    )
    status.update(_addresses(spec, sandbox, host_ip))
    status["startTime"] = previous.get("startTime") or stamp
    if inits:
        status["initContainerStatuses"] = inits
    status["containerStatuses"] = mains
    return status


def _addresses(spec: Obj, sandbox: cri.PodSandboxStatus | None, host_ip: str) -> Obj:
    out: Obj = {"hostIP": host_ip, "hostIPs": [{"ip": host_ip}]}
    ip = host_ip if spec.get("hostNetwork") else (sandbox.ip if sandbox else "")
    if ip:
        ips = [ip, *(sandbox.additional_ips if sandbox and not spec.get("hostNetwork") else ())]
        out["podIP"] = ip
        out["podIPs"] = [{"ip": i} for i in ips]
    return out


def same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two statuses say the same (what decides if a write is needed)."""
    return dict(a) == dict(b)
