"""Static pods' mirror pods: how the API server sees the pods the agent runs from files.

A static pod (:mod:`kybern.kubelet.staticpods`) runs from its manifest whatever the API says;
the kubelet keeps one mirror pod per static pod in the API server (same name and namespace,
annotation ``kubernetes.io/config.mirror`` = the static pod's UID) and writes the static pod's
status to it. :class:`Mirrors` makes sure the mirror exists and is the current one (a
mirror of an older manifest, or one being deleted, is replaced), and deletes mirrors whose
static pod is gone. The API server's own UID of the mirror is not the static pod's: status
writes to mirrors carry no UID precondition.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kybern import client as kclient
from kybern.client import errors
from kybern.kubelet import staticpods

Obj = dict[str, Any]
log = logging.getLogger(__name__)


def mirror_of(pod: Obj) -> str:
    """The static pod UID a mirror pod stands for ("" for a normal pod)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(staticpods.MIRROR, ""))


class Mirrors:
    def __init__(self, client: kclient.Client, pods: kclient.Informer) -> None:
        self.client = client
        self.pods = pods
        self.node_uid = ""

    async def ensure(self, static_pod: Obj) -> bool:
        """Create (or replace) the static pod's mirror; True when a new one was created."""
        meta = static_pod.get("metadata") or {}
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
        current = self.pods.store.get_by_name(name, namespace)
        if current is not None:
            current_meta = current.get("metadata") or {}
            if mirror_of(current) == meta.get("uid") and not current_meta.get("deletionTimestamp"):
                return False
            await self._delete(name, namespace, str(current_meta.get("uid", "")))
        body = staticpods.mirror_pod(static_pod, node_uid=self.node_uid)
        body.pop("status", None)
        try:
            await self.client.create(body)
        except errors.AlreadyExists:
            return False  # the informer has not seen it yet; the next sync checks again
        return True

    async def remove(self, static_pod: Obj) -> None:
        meta = static_pod.get("metadata") or {}
        current = self.pods.store.get_by_name(
            str(meta.get("name", "")), str(meta.get("namespace", ""))
        )
        if current is not None and mirror_of(current) == meta.get("uid"):
            current_meta = current.get("metadata") or {}
            await self._delete(
                str(current_meta.get("name", "")),
                str(current_meta.get("namespace", "")),
                str(current_meta.get("uid", "")),
            )

    async def _delete(self, name: str, namespace: str, uid: str) -> None:
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self.client.delete(
                "v1",
                "Pod",
                name,
                namespace=namespace,
                grace_period_seconds=0,
                preconditions={"uid": uid} if uid else None,
            )
