"""Why a pod did not fit: Kubernetes' FitError summary, the FailedScheduling message.

``0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint
{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3
Preemption is not helpful for scheduling.`` -- reasons counted per node, sorted as
strings, nodes without a status counted under the "absent" status; the PostFilter
(preemption) message is appended as is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from kybern.scheduler import framework


@dataclass(slots=True)
class Diagnosis:
    num_all_nodes: int
    statuses: dict[str, framework.Status] = field(default_factory=dict)
    absent: framework.Status | None = None
    pre_filter_msg: str = ""
    post_filter_msg: str = ""

    def message(self) -> str:
        return fit_error_message(
            self.num_all_nodes,
            self.statuses,
            absent=self.absent,
            pre_filter_msg=self.pre_filter_msg,
            post_filter_msg=self.post_filter_msg,
        )


def fit_error_message(
    num_all_nodes: int,
    statuses: Mapping[str, framework.Status],
    *,
    absent: framework.Status | None = None,
    pre_filter_msg: str = "",
    post_filter_msg: str = "",
) -> str:
    message = f"0/{num_all_nodes} nodes are available:"
    if pre_filter_msg:
        message += f" {pre_filter_msg}."
    else:
        histogram: Counter[str] = Counter()
        for status in statuses.values():
            histogram.update(status.reasons)
        if absent is not None and len(statuses) < num_all_nodes:
            for reason in absent.reasons:
                histogram[reason] += num_all_nodes - len(statuses)
        parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
        if parts:
            message += f" {', '.join(parts)}."
    if post_filter_msg:
        message += f" {post_filter_msg}"
    return message
