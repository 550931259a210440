"""The scheduling framework: Status, CycleState, Snapshot, one Protocol per extension point,
and the Framework that runs a profile's plugins in order with their score weights.

Plugins never raise to say "no": they return a :class:`Status` whose ``code`` says what
happened (``UNSCHEDULABLE`` is data). Scores are integers in ``0..MAX_NODE_SCORE``.
Extension points, in cycle order (kube-scheduler's names): PreFilter, Filter, PostFilter
(preemption), PreScore, Score (+ NormalizeScore), Reserve, Permit, Bind.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kybern.scheduler import nodeinfo, podinfo

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
DEFAULT_PERCENTAGE_BASE = 50

PodInfo = podinfo.PodInfo
NodeInfo = nodeinfo.NodeInfo


class Code(enum.Enum):
    SUCCESS = "Success"
    ERROR = "Error"
    UNSCHEDULABLE = "Unschedulable"
    UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"
    WAIT = "Wait"
    SKIP = "Skip"


@dataclass(frozen=True, slots=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        return self.code is Code.SUCCESS

    @property
    def rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @staticmethod
    def unschedulable(*reasons: str, plugin: str = "", resolvable: bool = True) -> Status:
        code = Code.UNSCHEDULABLE if resolvable else Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        return Status(code, reasons, plugin)

    @staticmethod
    def error(message: str, plugin: str = "") -> Status:
        return Status(Code.ERROR, (message,), plugin)


SUCCESS = Status()
SKIP = Status(Code.SKIP)


class CycleState:
    """Per-cycle scratch space: plugins store what PreFilter/PreScore computed, by key."""

    __slots__ = ("data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()


@dataclass(slots=True)
class Snapshot:
    """The cluster as one cycle sees it: nodes in a stable (zone-interleaved) order."""

    nodes: list[NodeInfo]
    by_name: dict[str, NodeInfo]
    image_nodes: dict[str, int] = field(default_factory=dict)  # image -> nodes that have it
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pdbs: Sequence[Mapping[str, Any]] = ()
    affinity_pods: int = 0  # pods with any pod (anti-)affinity term, cluster-wide

    @property
    def has_pods_with_affinity(self) -> bool:
        return self.affinity_pods > 0


# --- extension points ------------------------------------------------------------------


@runtime_checkable
class Plugin(Protocol):
    name: str


@runtime_checkable
class PreFilterPlugin(Protocol):
    name: str

    def pre_filter(
        self, state: CycleState, pod: PodInfo, snapshot: Snapshot
    ) -> tuple[set[str] | None, Status]:
        """The node names worth filtering (None: all) and a Status (SKIP: no Filter call)."""
        ...


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status: ...


@runtime_checkable
class PostFilterPlugin(Protocol):
    name: str

    def post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        snapshot: Snapshot,
        statuses: Mapping[str, Status],
        handle: Framework,
    ) -> PostFilterResult:
        """Try to make the pod schedulable later (preemption); ``statuses`` holds each
        node's Filter status."""
        ...


@runtime_checkable
class PreScorePlugin(Protocol):
    name: str

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], snapshot: Snapshot
    ) -> Status: ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    name: str

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        """Rescale raw scores (in node order) to 0..100 in place."""
        ...


@runtime_checkable
class ReservePlugin(Protocol):
    name: str

    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None: ...


@runtime_checkable
class PermitPlugin(Protocol):
    name: str

    def permit(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...


@runtime_checkable
class BindPlugin(Protocol):
    name: str

    async def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...


@dataclass(slots=True)
class PostFilterResult:
    status: Status
    nominated_node: str = ""
    victims: list[PodInfo] = field(default_factory=list)


def num_feasible_nodes_to_find(percentage: int, num_all_nodes: int) -> int:
    """percentageOfNodesToScore: stop filtering after this many feasible nodes. The
    adaptive default (percentage 0) is 50% - nodes/125, at least 5%, at least 100 nodes."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_all_nodes
    adaptive = percentage
    if adaptive <= 0:
        adaptive = DEFAULT_PERCENTAGE_BASE - num_all_nodes // 125
        adaptive = max(adaptive, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * adaptive // 100, MIN_FEASIBLE_NODES_TO_FIND)


def default_normalize_score(scores: list[int], *, reverse: bool = False) -> None:
    """Scale to 0..100 by the highest score (Kubernetes' DefaultNormalizeScore)."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, value in enumerate(scores):
        scaled = MAX_NODE_SCORE * value // top
        scores[i] = MAX_NODE_SCORE - scaled if reverse else scaled


class Framework:
    """One profile: plugins sorted into extension points, in the order given."""

    def __init__(
        self,
        plugins: Sequence[object],
        *,
        weights: Mapping[str, int] | None = None,
        percentage_of_nodes_to_score: int = 0,
    ) -> None:
        weights = weights or {}
        self.plugins = list(plugins)
        self.pre_filters = [p for p in plugins if isinstance(p, PreFilterPlugin)]
        self.filters = [p for p in plugins if isinstance(p, FilterPlugin)]
        self.post_filters = [p for p in plugins if isinstance(p, PostFilterPlugin)]
        self.pre_scores = [p for p in plugins if isinstance(p, PreScorePlugin)]
        self.scores = [p for p in plugins if isinstance(p, ScorePlugin)]
        self.weights = [int(weights.get(p.name, 1)) for p in self.scores]
        self._normalizers = [
            p if isinstance(p, NormalizeScorePlugin) else None for p in self.scores
        ]
        self.reserves = [p for p in plugins if isinstance(p, ReservePlugin)]
        self.permits = [p for p in plugins if isinstance(p, PermitPlugin)]
        self.binders = [p for p in plugins if isinstance(p, BindPlugin)]
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score

    def run_pre_filter(
        self, state: CycleState, pod: PodInfo, snapshot: Snapshot
    ) -> tuple[set[str] | None, Status, list[str]]:
        """Node names to consider (None: all), a status, and the plugins that narrowed it."""
        names: set[str] | None = None
        narrowing: list[str] = []
        for plugin in self.pre_filters:
            result, status = plugin.pre_filter(state, pod, snapshot)
            if status.code is Code.SKIP:
                state.skip_filter.add(plugin.name)
                continue
            if not status.ok:
                return names, _with_plugin(status, plugin.name), narrowing
            if result is not None:
                narrowing.append(plugin.name)
                names = set(result) if names is None else names & result
        return names, SUCCESS, narrowing

    def run_filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        skip = state.skip_filter
        for plugin in self.filters:
            if skip and plugin.name in skip:
                continue
            status = plugin.filter(state, pod, node)
            if status.code is not Code.SUCCESS:
                return _with_plugin(status, plugin.name)
        return SUCCESS

    def run_pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], snapshot: Snapshot
    ) -> Status:
        for plugin in self.pre_scores:
            status = plugin.pre_score(state, pod, nodes, snapshot)
            if status.code is Code.SKIP:
                state.skip_score.add(plugin.name)
            elif not status.ok:
                return _with_plugin(status, plugin.name)
        return SUCCESS

    def active_scores(self, state: CycleState) -> list[int]:
        """Indexes (into ``self.scores``) of the score plugins PreScore did not skip."""
        skip = state.skip_score
        return [i for i, p in enumerate(self.scores) if p.name not in skip]

    def raw_scores(
        self, state: CycleState, pod: PodInfo, node: NodeInfo, active: Sequence[int]
    ) -> tuple[int, ...]:
        scores = self.scores
        return tuple(scores[i].score(state, pod, node) for i in active)

    def combine(
        self, state: CycleState, pod: PodInfo, raw: Sequence[tuple[int, ...]], active: list[int]
    ) -> list[int]:
        """Normalize each plugin's column of raw scores and sum them with weights."""
        totals = [0] * len(raw)
        for column, index in enumerate(active):
            values = [row[column] for row in raw]
            normalizer = self._normalizers[index]
            if normalizer is not None:
                normalizer.normalize_score(state, pod, values)
            weight = self.weights[index]
            totals = [t + v * weight for t, v in zip(totals, values, strict=True)]
        return totals

    def run_reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        for index, plugin in enumerate(self.reserves):
            status = plugin.reserve(state, pod, node_name)
            if not status.ok:
                for done in reversed(self.reserves[: index + 1]):
                    done.unreserve(state, pod, node_name)
                return _with_plugin(status, plugin.name)
        return SUCCESS

    def run_unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        for plugin in reversed(self.reserves):
            plugin.unreserve(state, pod, node_name)

    def run_permit(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        for plugin in self.permits:
            status = plugin.permit(state, pod, node_name)
            if not status.ok:
                return _with_plugin(status, plugin.name)
        return SUCCESS


def _with_plugin(status: Status, name: str) -> Status:
    if status.plugin:
        return status
    return Status(status.code, status.reasons, name)
