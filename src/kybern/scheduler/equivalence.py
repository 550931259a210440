"""Borg's equivalence classes: pods with identical scheduling requirements share results.

Most pending pods come from a few templates (a Deployment's 1,000 replicas are one
class). For a class, the Filter status and raw Score vector computed on a node stay valid
while that node's NodeInfo ``generation`` is unchanged, so after the first pod of a class
the next one only re-evaluates the nodes that changed (usually just the node the previous
pod went to). A class is dropped when nodes come or go (cache ``epoch``), after the
``window`` (seconds), and the least recently created classes go beyond ``max_classes``.

Only pods whose plugins read nothing but the node itself use it: no topology spread
constraints, no pod (anti-)affinity, and no pod with affinity terms anywhere in the cluster.
Normalisation still runs every cycle over the cached raw scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kybern.scheduler import framework, podinfo

DEFAULT_WINDOW = 30.0
DEFAULT_MAX_CLASSES = 4096


class Result:
    __slots__ = ("generation", "scores", "status")

    def __init__(self, generation: int, status: framework.Status) -> None:
        self.generation = generation
        self.status = status
        self.scores: tuple[int, ...] | None = None


@dataclass(slots=True)
class EquivalenceClass:
    epoch: int
    created: float
    results: dict[str, Result] = field(default_factory=dict)


class EquivalenceCache:
    def __init__(
        self, *, window: float = DEFAULT_WINDOW, max_classes: int = DEFAULT_MAX_CLASSES
    ) -> None:
        self.window = window
        self.max_classes = max_classes
        self._classes: dict[bytes, EquivalenceClass] = {}
        self.lookups = 0  # node results asked for, and how many had to be computed
        self.misses = 0

    def results(self, key: bytes, *, epoch: int, now: float) -> dict[str, Result]:
        found = self._classes.get(key)
        if found is None or found.epoch != epoch or now - found.created > self.window:
            if found is None and len(self._classes) >= self.max_classes:
                del self._classes[next(iter(self._classes))]
            found = self._classes[key] = EquivalenceClass(epoch, now)
        return found.results

    @property
    def hits(self) -> int:
        return self.lookups - self.misses

    def clear(self) -> None:
        self._classes.clear()

    def __len__(self) -> int:
        return len(self._classes)


def eligible(pod: podinfo.PodInfo, snapshot: framework.Snapshot) -> bool:
    return not (pod.spread_constraints or pod.has_pod_affinity or snapshot.affinity_pods)
