"""Events the kubelet records about pods (Pulling, Created, Started, Killing, BackOff ...).

Fire and forget, as kubelet's recorder: :meth:`Recorder.record` never blocks the pod's sync;
the Event is written in the background, and a repeat of the same (pod, type, reason, message)
bumps ``count`` and ``lastTimestamp`` of the first instead of creating another one. Failures
(API server down) drop the event with a log line.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from kybern import client as kclient
from kybern.client import clock as clock_
from kybern.client import errors
from kybern.kubelet import nodestatus

Obj = dict[str, Any]
log = logging.getLogger(__name__)
MAX_REMEMBERED = 4096


class Recorder:
    def __init__(
        self, client: kclient.Client, node_name: str, *, clock: clock_.Clock = clock_.REAL
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.clock = clock
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        task = asyncio.create_task(self._write(pod, type_, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _write(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        meta = pod.get("metadata") or {}
        key = (str(meta.get("uid", "")), type_, reason, message)
        stamp = nodestatus.rfc3339(self.clock.now())
        try:
            seen = self._seen.get(key)
            if seen is not None:
                name, namespace, count = seen
                patch = {"count": count + 1, "lastTimestamp": stamp}
                await self.client.patch("v1", "Event", name, patch, namespace=namespace)
                self._seen[key] = (name, namespace, count + 1)
                return
            event = self._event(meta, type_, reason, message, stamp)
            await self.client.create(event)
            if len(self._seen) > MAX_REMEMBERED:
                self._seen.clear()
            self._seen[key] = (event["metadata"]["name"], event["metadata"]["namespace"], 1)
        except (errors.ClientError, OSError) as exc:
            log.info("event %s for pod %s dropped: %s", reason, meta.get("name"), exc)

    def _event(self, meta: Obj, type_: str, reason: str, message: str, stamp: str) -> Obj:
        namespace = str(meta.get("namespace") or "default")
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', '')}.{secrets.token_hex(8)}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta.get("name", ""),
                "namespace": namespace,
                "uid": meta.get("uid", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": self.node_name},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node_name,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
