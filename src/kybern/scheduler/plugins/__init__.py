"""The in-tree plugins: a registry of factories by name and the default profile.

Each plugin lives in its own module with ``NAME``, ``new(args)`` and a pure helper.
The default profile lists them in kube-scheduler's order with its score weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kybern.scheduler import preemption
from kybern.scheduler.plugins import (
    balancedallocation,
    imagelocality,
    interpodaffinity,
    nodeaffinity,
    nodename,
    nodeports,
    noderesourcesfit,
    nodeunschedulable,
    podtopologyspread,
    tainttoleration,
)

Factory = Callable[[Mapping[str, Any]], object]

REGISTRY: dict[str, Factory] = {
    nodeunschedulable.NAME: nodeunschedulable.new,
    nodename.NAME: nodename.new,
    tainttoleration.NAME: tainttoleration.new,
    nodeaffinity.NAME: nodeaffinity.new,
    nodeports.NAME: nodeports.new,
    noderesourcesfit.NAME: noderesourcesfit.new,
    podtopologyspread.NAME: podtopologyspread.new,
    interpodaffinity.NAME: interpodaffinity.new,
    preemption.NAME: preemption.new,
    balancedallocation.NAME: balancedallocation.new,
    imagelocality.NAME: imagelocality.new,
}

DEFAULT_PLUGINS = tuple(REGISTRY)

DEFAULT_WEIGHTS: dict[str, int] = {
    tainttoleration.NAME: 3,
    nodeaffinity.NAME: 2,
    noderesourcesfit.NAME: 1,
    podtopologyspread.NAME: 2,
    interpodaffinity.NAME: 2,
    balancedallocation.NAME: 1,
    imagelocality.NAME: 1,
}


def build(
    names: tuple[str, ...] = DEFAULT_PLUGINS, args: Mapping[str, Mapping[str, Any]] | None = None
) -> list[object]:
    """Instantiate plugins by name, each with its args (KubeSchedulerConfiguration style)."""
    args = args or {}
    return [REGISTRY[name](args.get(name, {})) for name in names]
