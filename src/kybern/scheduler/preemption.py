"""DefaultPreemption (PostFilter): make room for a pod by evicting lower-priority pods.

For each node whose Filter status was Unschedulable (not Unresolvable), remove every pod
of lower priority, check the pod fits, then reprieve victims one by one (most important
first, PodDisruptionBudget-protected pods first) while it still fits. The node with the
fewest PDB violations, then the lowest highest-victim priority, the lowest priority sum,
the fewest victims and the latest start among its top victims wins. The pod gets that node
as ``nominatedNodeName``; the caller deletes the victims.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kybern.api import labels
from kybern.scheduler import diagnosis, framework, podinfo

NAME = "DefaultPreemption"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."
_NOT_HELPFUL = framework.Status.unschedulable(NOT_HELPFUL, resolvable=False)
_NO_VICTIMS = framework.Status.unschedulable(NO_VICTIMS, plugin=NAME, resolvable=False)
_INT32_MAX = 2**31 - 1


@dataclass(slots=True)
class Candidate:
    node: str
    victims: list[podinfo.PodInfo]
    pdb_violations: int


@dataclass(frozen=True, slots=True)
class Budget:
    namespace: str
    selector: labels.Selector
    allowed: int


def budgets(pdbs: Sequence[Mapping[str, Any]]) -> list[Budget]:
    found = []
    for pdb in pdbs:
        meta = pdb.get("metadata") or {}
        selector = labels.from_label_selector((pdb.get("spec") or {}).get("selector"))
        allowed = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
        found.append(Budget(meta.get("namespace") or "default", selector, allowed))
    return found


def more_important(pod: podinfo.PodInfo) -> tuple[int, str]:
    """Sort key: higher priority first, then the earlier started (created) pod."""
    return (-pod.priority, _start(pod))


def _start(pod: podinfo.PodInfo) -> str:
    return (pod.obj.get("status") or {}).get("startTime") or pod.creation


def split_by_pdb(
    pods: Sequence[podinfo.PodInfo], pdbs: Sequence[Budget]
) -> tuple[list[podinfo.PodInfo], list[podinfo.PodInfo]]:
    """(pods whose eviction would violate a budget, the others), order kept."""
    allowed = [b.allowed for b in pdbs]
    violating: list[podinfo.PodInfo] = []
    fine: list[podinfo.PodInfo] = []
    for pod in pods:
        hit = False
        for i, budget in enumerate(pdbs):
            if budget.namespace == pod.namespace and budget.selector.matches(pod.labels):
                allowed[i] -= 1
                hit = hit or allowed[i] < 0
        (violating if hit else fine).append(pod)
    return violating, fine


def eligible(pod: podinfo.PodInfo, snapshot: framework.Snapshot) -> str:
    """Why the pod may not preempt ("" when it may)."""
    if pod.preemption_never:
        return NEVER
    node = snapshot.by_name.get(pod.nominated_node) if pod.nominated_node else None
    if node is not None:
        for other in node.pods.values():
            deleting = (other.obj.get("metadata") or {}).get("deletionTimestamp")
            if deleting and other.priority < pod.priority:
                return TERMINATING
    return ""


def pick(candidates: Sequence[Candidate]) -> Candidate:
    def key(c: Candidate) -> tuple[int, int, int, int, str]:
        top = c.victims[0].priority if c.victims else -_INT32_MAX
        total = sum(v.priority + _INT32_MAX + 1 for v in c.victims)
        earliest = min((_start(v) for v in c.victims if v.priority == top), default="")
        return (c.pdb_violations, top, total, len(c.victims), _invert(earliest))

    return min(candidates, key=key)


def _invert(timestamp: str) -> str:
    """Sort RFC 3339 timestamps latest first inside a min()."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in timestamp)


class DefaultPreemption:
    name = NAME

    def post_filter(
        self,
        state: framework.CycleState,
        pod: framework.PodInfo,
        snapshot: framework.Snapshot,
        statuses: Mapping[str, framework.Status],
        handle: framework.Framework,
    ) -> framework.PostFilterResult:
        why_not = eligible(pod, snapshot)
        if why_not:
            return framework.PostFilterResult(framework.Status.unschedulable(why_not))
        pdbs = budgets(snapshot.pdbs)
        results: dict[str, framework.Status] = {}
        candidates = []
        for name, status in statuses.items():
            if status.code is not framework.Code.UNSCHEDULABLE:
                continue
            found = select_victims(pod, snapshot, snapshot.by_name[name], pdbs, handle)
            if isinstance(found, Candidate):
                candidates.append(found)
            else:
                results[name] = found
        if not candidates:
            fit = diagnosis.fit_error_message(len(snapshot.nodes), results, absent=_NOT_HELPFUL)
            return framework.PostFilterResult(framework.Status.unschedulable("preemption: " + fit))
        best = pick(candidates)
        return framework.PostFilterResult(framework.SUCCESS, best.node, best.victims)


def select_victims(
    pod: podinfo.PodInfo,
    snapshot: framework.Snapshot,
    node: framework.NodeInfo,
    pdbs: Sequence[Budget],
    handle: framework.Framework,
) -> Candidate | framework.Status:
    """SelectVictimsOnNode on a copy of the node."""
    trial = node.clone()
    potential = sorted(
        (p for p in node.pods.values() if p.priority < pod.priority), key=more_important
    )
    if not potential:
        return _NO_VICTIMS
    for victim in potential:
        trial.remove_pod(victim.uid)
    status = _fits(pod, snapshot, trial, handle)
    if not status.ok:
        return status
    violating, fine = split_by_pdb(potential, pdbs)
    victims: list[podinfo.PodInfo] = []
    violations = 0
    for group, counts in ((violating, True), (fine, False)):
        for candidate in group:
            trial.add_pod(candidate)
            if not _fits(pod, snapshot, trial, handle).ok:
                trial.remove_pod(candidate.uid)
                victims.append(candidate)
                violations += counts
    victims.sort(key=more_important)
    return Candidate(node.name, victims, violations)


def _fits(
    pod: podinfo.PodInfo,
    snapshot: framework.Snapshot,
    trial: framework.NodeInfo,
    handle: framework.Framework,
) -> framework.Status:
    """Filter the pod on the trial node, with PreFilter state computed on a snapshot that
    has the trial node in place of the real one (spreading and pod affinity see it)."""
    nodes = [trial if n.name == trial.name else n for n in snapshot.nodes]
    by_name = {**snapshot.by_name, trial.name: trial}
    view = framework.Snapshot(nodes, by_name, snapshot.image_nodes, snapshot.namespace_labels)
    view.affinity_pods = snapshot.affinity_pods
    state = framework.CycleState()
    _, status, _ = handle.run_pre_filter(state, pod, view)
    if not status.ok:
        return status
    return handle.run_filter(state, pod, trial)


def new(args: Mapping[str, Any]) -> DefaultPreemption:
    return DefaultPreemption()


_: framework.PostFilterPlugin = DefaultPreemption()
