"""The ``process`` container runtime: containers as host processes (see :mod:`.runtime`).

Registered in :mod:`kybern.runtime.registry` as ``kybern.runtime.process:create``.
"""

from __future__ import annotations

from kybern.runtime import registry
from kybern.runtime.process.runtime import ProcessRuntime


def create(options: registry.Options) -> ProcessRuntime:
    return ProcessRuntime(options)


__all__ = ["ProcessRuntime", "create"]
