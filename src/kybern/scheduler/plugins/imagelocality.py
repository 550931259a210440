"""ImageLocality: prefer nodes that already have the pod's images, weighted by image size
and by how widely the image is spread (an image on every node gives no advantage)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kybern.scheduler import framework, nodeinfo

NAME = "ImageLocality"
MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB
_STATE_KEY = NAME + "/spread"


def scaled_sum(
    images: Sequence[str], node: framework.NodeInfo, image_nodes: Mapping[str, int], total: int
) -> int:
    score = 0
    for image in images:
        size = node.image_sizes.get(nodeinfo.normalized_image(image))
        if size is not None and total:
            score += int(size * (image_nodes.get(nodeinfo.normalized_image(image), 0) / total))
    return score


def priority(score_sum: int, containers: int) -> int:
    max_threshold = MAX_CONTAINER_THRESHOLD * max(containers, 1)
    clipped = min(max(score_sum, MIN_THRESHOLD), max_threshold)
    return framework.MAX_NODE_SCORE * (clipped - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


class ImageLocality:
    name = NAME

    def pre_score(
        self,
        state: framework.CycleState,
        pod: framework.PodInfo,
        nodes: Sequence[framework.NodeInfo],
        snapshot: framework.Snapshot,
    ) -> framework.Status:
        state.data[_STATE_KEY] = (snapshot.image_nodes, len(snapshot.nodes))
        return framework.SUCCESS

    def score(
        self, state: framework.CycleState, pod: framework.PodInfo, node: framework.NodeInfo
    ) -> int:
        if not node.image_sizes:
            return 0
        image_nodes, total = state.data[_STATE_KEY]
        return priority(scaled_sum(pod.images, node, image_nodes, total), len(pod.images))


def new(args: Mapping[str, Any]) -> ImageLocality:
    return ImageLocality()


_s: framework.ScorePlugin = ImageLocality()
_p: framework.PreScorePlugin = ImageLocality()
