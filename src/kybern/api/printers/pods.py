"""Pods: NAME READY STATUS RESTARTS AGE (+ IP NODE NOMINATED NODE READINESS GATES).

STATUS is kubectl's summary, not the phase alone: the pod's reason (``Evicted``), then the
first init container still working (``Init:0/2``, ``Init:CrashLoopBackOff``,
``Init:ExitCode:1``), then the first app container waiting or terminated with a reason
(``ContainerCreating``, ``CrashLoopBackOff``, ``Completed``, ``Error``, ``ExitCode:2``),
``Terminating`` once deletion started (``Unknown`` for pods on a lost node), and
``SchedulingGated`` while scheduling gates hold the pod. RESTARTS carries ``(5m ago)`` after
the last restart. This follows printPod in Kubernetes' printers.go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kybern.api.printers import base
from kybern.api.printers.base import Cell, Column, Obj

_STATUS = "io.k8s.api.core.v1.PodStatus"
_SPEC = "io.k8s.api.core.v1.PodSpec"

COLUMNS = (
    base.NAME,
    Column("Ready", doc="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", doc="The aggregate status of the containers in this pod."),
    Column(
        "Restarts",
        doc="The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted.",
    ),
    base.AGE,
    Column("IP", doc=(_STATUS, "podIP"), priority=1),
    Column("Node", doc=(_SPEC, "nodeName"), priority=1),
    Column("Nominated Node", doc=(_STATUS, "nominatedNodeName"), priority=1),
    Column("Readiness Gates", doc=(_SPEC, "readinessGates"), priority=1),
)

_TERMINAL = ("Succeeded", "Failed")
_COMPLETED_MESSAGES = {
    "Succeeded": "The pod has completed successfully.",
    "Failed": "The pod failed.",
}


@dataclass(slots=True)
class _Tally:
    """What the container loops accumulate."""

    reason: str
    restarts: int = 0
    ready: int = 0
    last_restart: float | None = None

    def restarted(self, status: Mapping[str, Any]) -> None:
        self.restarts += base.as_int(status.get("restartCount"))
        self.last_restart = _later(self.last_restart, _last_termination(status))


def row(pod: Obj, now: float) -> list[Cell]:
    spec = base.as_map(pod.get("spec"))
    status = base.as_map(pod.get("status"))
    total, tally = _summarize(spec, status)
    reason = _final_reason(pod, status, tally.reason)
    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart is not None:
        restarts = f"{tally.restarts} ({base.since_epoch(tally.last_restart, now)} ago)"
    cells: list[Cell] = [base.name(pod), f"{tally.ready}/{total}", reason, restarts]
    cells.append(base.age(pod, now))
    cells += [
        _pod_ip(status),
        _or_none(spec.get("nodeName")),
        _or_none(status.get("nominatedNodeName")),
    ]
    cells.append(_readiness_gates(spec, status))
    return cells


def _summarize(spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[int, _Tally]:
    init_specs = {
        base.text(c.get("name")): c
        for c in base.as_list(spec.get("initContainers"))
        if isinstance(c, Mapping)
    }
    sidecars = {n for n, c in init_specs.items() if c.get("restartPolicy") == "Always"}
    total = len(base.as_list(spec.get("containers"))) + len(sidecars)
    tally = _Tally(reason=_base_reason(status))
    sidecar_tally = _Tally(reason="")
    initializing = _init_containers(status, init_specs, sidecars, tally, sidecar_tally)
    if not initializing or _condition_true(status, "Initialized"):
        tally.restarts, tally.last_restart = sidecar_tally.restarts, sidecar_tally.last_restart
        _app_containers(status, tally)
    return total, tally


def _base_reason(status: Mapping[str, Any]) -> str:
    reason = base.text(status.get("reason")) or base.text(status.get("phase"))
    for cond in base.as_list(status.get("conditions")):
        if (
            base.get(cond, "type") == "PodScheduled"
            and base.get(cond, "reason") == "SchedulingGated"
        ):
            reason = "SchedulingGated"
    return reason


def _init_containers(
    status: Mapping[str, Any],
    init_specs: Mapping[str, Any],
    sidecars: set[str],
    tally: _Tally,
    sidecar_tally: _Tally,
) -> bool:
    """The init container loop; True while the pod is still initializing."""
    statuses = [
        s for s in base.as_list(status.get("initContainerStatuses")) if isinstance(s, Mapping)
    ]
    for index, container in enumerate(statuses):
        tally.restarted(container)
        is_sidecar = base.text(container.get("name")) in sidecars
        if is_sidecar:
            sidecar_tally.restarted(container)
        state = base.as_map(container.get("state"))
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(terminated, Mapping) and base.as_int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and container.get("started") is True:
            if container.get("ready") is True:
                tally.ready += 1
            continue
        if isinstance(terminated, Mapping):
            tally.reason = "Init:" + _terminated_reason(terminated)
        elif isinstance(waiting, Mapping) and base.text(waiting.get("reason")) not in (
            "",
            "PodInitializing",
        ):
            tally.reason = "Init:" + base.text(waiting.get("reason"))
        else:
            tally.reason = f"Init:{index}/{len(init_specs)}"
        return True
    return False


def _app_containers(status: Mapping[str, Any], tally: _Tally) -> None:
    has_running = False
    statuses = [s for s in base.as_list(status.get("containerStatuses")) if isinstance(s, Mapping)]
    for container in reversed(statuses):  # the first container's reason wins
        tally.restarted(container)
        state = base.as_map(container.get("state"))
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if isinstance(waiting, Mapping) and base.text(waiting.get("reason")):
            tally.reason = base.text(waiting.get("reason"))
        elif isinstance(terminated, Mapping):
            tally.reason = _terminated_reason(terminated)
        elif container.get("ready") is True and isinstance(state.get("running"), Mapping):
            has_running = True
            tally.ready += 1
    if tally.reason == "Completed" and has_running:
        tally.reason = "Running" if _condition_true(status, "Ready") else "NotReady"


def _terminated_reason(terminated: Mapping[str, Any]) -> str:
    reason = base.text(terminated.get("reason"))
    if reason:
        return reason
    signal = base.as_int(terminated.get("signal"))
    if signal:
        return f"Signal:{signal}"
    return f"ExitCode:{base.as_int(terminated.get('exitCode'))}"


def _final_reason(pod: Obj, status: Mapping[str, Any], reason: str) -> str:
    if base.get(pod, "metadata", "deletionTimestamp") is None:
        return reason
    if status.get("reason") == "NodeLost":
        return "Unknown"
    if status.get("phase") not in _TERMINAL:
        return "Terminating"
    return reason


def _last_termination(status: Mapping[str, Any]) -> float | None:
    finished = base.get(status, "lastState", "terminated", "finishedAt")
    return base.timestamp(finished)


def _later(current: float | None, candidate: float | None) -> float | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


def _condition_true(status: Mapping[str, Any], kind: str) -> bool:
    for cond in base.as_list(status.get("conditions")):
        if base.get(cond, "type") == kind:
            return bool(base.get(cond, "status") == "True")
    return False


def _pod_ip(status: Mapping[str, Any]) -> str:
    ips = base.as_list(status.get("podIPs"))
    first = base.text(base.get(ips[0], "ip")) if ips else base.text(status.get("podIP"))
    return first or "<none>"


def _or_none(value: Any) -> str:
    return base.text(value) or "<none>"


def _readiness_gates(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    gates = base.as_list(spec.get("readinessGates"))
    if not gates:
        return "<none>"
    conditions = base.as_list(status.get("conditions"))
    true = 0
    for gate in gates:
        wanted = base.get(gate, "conditionType")
        for cond in conditions:
            if base.get(cond, "type") == wanted:
                true += base.get(cond, "status") == "True"
                break
    return f"{true}/{len(gates)}"


def conditions(pod: Obj) -> list[dict[str, str]]:
    """Row conditions: ``Completed`` for pods that succeeded or failed."""
    phase = base.get(pod, "status", "phase")
    message = _COMPLETED_MESSAGES.get(phase) if isinstance(phase, str) else None
    if message is None:
        return []
    return [{"type": "Completed", "status": "True", "reason": str(phase), "message": message}]
