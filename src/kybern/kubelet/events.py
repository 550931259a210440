"""Events the kubelet records about pods (Pulling, Created, Started, Killing, BackOff ...).

Fire and forget, as kubelet's recorder: :meth:`Recorder.record` never blocks the pod's sync;
the Event is queued and written in the background, and a repeat of the same (pod, type,
reason, message) bumps ``count`` and ``lastTimestamp`` of the first instead of creating
another one. Failures (API server down) drop the event with a log line.

One writer drains the queue, one request at a time, as client-go's event broadcaster does:
when 100 pods start together their ~300 events trail behind instead of competing with the
pods' status writes for the API server and the agent's loop. The timestamps are those of the
moment :meth:`Recorder.record` was called. A queue over ``MAX_QUEUED`` drops new events (the
broadcaster's channel is bounded the same way).
"""

from __future__ import annotations

import asyncio
import collections
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
MAX_QUEUED = 1000


class Recorder:
    def __init__(
        self, client: kclient.Client, node_name: str, *, clock: clock_.Clock = clock_.REAL
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.clock = clock
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int]] = {}
        self._queue: collections.deque[tuple[Obj, str, str, str, str]] = collections.deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def record(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        if len(self._queue) >= MAX_QUEUED:
            log.info("event %s for pod %s dropped: queue full", reason, _name(pod))
            return
        stamp = nodestatus.rfc3339(self.clock.now())
        self._queue.append((pod, type_, reason, message, stamp))
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="kubelet-events")

    def pending(self) -> int:
        """Events recorded and not written yet."""
        return len(self._queue)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None

    async def _drain(self) -> None:
        while True:
            while self._queue:
                try:
                    await self._write(*self._queue.popleft())
                except Exception:  # one bad event must not stop the others
                    log.exception("event not written")
            self._wake.clear()
            await self._wake.wait()

    async def _write(self, pod: Obj, type_: str, reason: str, message: str, stamp: str) -> None:
        meta = pod.get("metadata") or {}
        key = (str(meta.get("uid", "")), type_, reason, message)
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


def _name(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))
