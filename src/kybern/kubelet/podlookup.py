"""What the kubelet's HTTPS server asks of the running agent: which container is which.

The agent (``kybern.kubelet.agent``) implements :class:`PodLookup` from its pod workers'
state; the server (``kybern.kubelet.server``) resolves ``/containerLogs/<ns>/<pod>/<container>``,
``/exec/...``, ``/attach/...`` and ``/portForward/<ns>/<pod>`` through it. Names are the
pod's namespace and name as the API server sends them; ``uid`` (optional) pins one pod
incarnation. A missing pod or container answers None (the server turns that into a 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ContainerRef:
    container_id: str
    sandbox_id: str
    log_path: Path  # the current attempt's CRI log file
    previous_log_path: Path | None  # the attempt before (``kubectl logs --previous``)
    running: bool
    tty: bool = False
    stdin: bool = False


class PodLookup(Protocol):
    def container(
        self, namespace: str, pod: str, container: str, *, uid: str = ""
    ) -> ContainerRef | None:
        """The named container of a pod this agent runs; ``container == ""`` means the pod's
        only container (None when the pod has several, the server then asks for a name)."""
        ...

    def container_names(self, namespace: str, pod: str) -> list[str]:
        """The pod's container names in spec order (for error messages)."""
        ...

    def sandbox(self, namespace: str, pod: str, *, uid: str = "") -> str | None:
        """The pod's sandbox id (port-forward), None when the pod does not run here."""
        ...
