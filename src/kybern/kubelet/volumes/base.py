"""What every volume plugin shares: the error it raises, and the context it reads from.

A plugin is a module with ``PLUGIN`` (its directory name under
``pods/<uid>/volumes/``, Kubernetes' escaped plugin name such as ``kubernetes.io~configmap``)
and an ``async def setup(ctx, volume, target) -> Path`` that makes the volume ready and returns
the host path to mount. Data volumes (configMap, secret, downwardAPI, projected) also have a
pure ``payload(ctx, source) -> atomic.Payload``, which ``refresh`` reuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kybern.client import clock as clock_mod
from kybern.kubelet import envvars

Obj = dict[str, Any]

# async (namespace, service_account, audience, expiration_seconds, pod) -> token
TokenSource = Callable[[str, str, str, int, Obj], Awaitable[str]]


class VolumeError(Exception):
    """A volume could not be set up; ``reason`` and ``message`` are the event's (FailedMount)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SourceError(Exception):
    """A plugin-level failure; the manager wraps it as ``MountVolume.SetUp failed ...``."""


@dataclass
class Context:
    """What plugins may read: the pod, API objects, the token source, time."""

    pod: Obj
    source: envvars.ObjectSource
    token_source: TokenSource | None = None
    clock: clock_mod.Clock = clock_mod.REAL
    node_allocatable: Mapping[str, Any] | None = None
    # (volume name, file path) -> (token, monotonic time it was fetched, expiration seconds)
    tokens: dict[tuple[str, str], tuple[str, float, int]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return str((self.pod.get("metadata") or {}).get("namespace") or "default")

    @property
    def uid(self) -> str:
        return str((self.pod.get("metadata") or {}).get("uid") or "")
