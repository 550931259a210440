"""The Event recorder: core/v1 Events about an object, deduplicated like client-go's.

``await recorder.event(obj, "Normal", "SuccessfulCreate", "Created pod: web-abc12")`` writes an
Event in the object's namespace (``default`` for cluster-scoped objects). The same event again
(same object, type, reason, message and source) does not create a second Event: the first
one's ``count`` goes up and its ``lastTimestamp`` moves (client-go's EventCorrelator with its
event-aggregation cache, simplified: identical events only). Like client-go's
EventSourceObjectSpamFilter, each (component, object) pair may record a burst of 25 events,
then one per 5 minutes; the rest are dropped (a ReplicaSet creating 10,000 pods writes 25
SuccessfulCreate Events, not 10,000). A failed write is logged, never raised: events are
best-effort and must not fail a reconcile.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

from kybern import client as kclient

log = logging.getLogger(__name__)
Obj = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"
CACHE_SIZE = 4096  # client-go's maxLruCacheEntries
SPAM_BURST = 25  # client-go's defaultSpamBurst: events per source + object at once
SPAM_QPS = 1.0 / 300.0  # ... then one every 5 minutes (defaultSpamQPS)


class Recorder:
    """Records Events as ``component`` (``source.component``, ``reportingComponent``)."""

    def __init__(
        self, client: kclient.Client, component: str, *, clock: kclient.Clock | None = None
    ) -> None:
        self.client = client
        self.component = component
        self.clock: kclient.Clock = clock or kclient.RealClock()
        # dedup key -> (namespace, event name, count); oldest dropped first
        self.seen: collections.OrderedDict[tuple[str, ...], tuple[str, str, int]] = (
            collections.OrderedDict()
        )
        # spam key (object) -> (tokens left, monotonic time of the last refill); LRU order
        self.buckets: collections.OrderedDict[tuple[str, ...], tuple[float, float]] = (
            collections.OrderedDict()
        )
        self.dropped = 0  # events the spam filter dropped

    def _now(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    async def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        involved = involved_object(obj)
        key = (
            self.component,
            involved["kind"],
            involved["namespace"],
            involved["name"],
            involved["uid"],
            type_,
            reason,
            message,
        )
        if not self._allow(key[:5]):
            self.dropped += 1
            return
        try:
            if key in self.seen and await self._bump(key):
                return
            await self._create(key, involved, type_, reason, message)
        except kclient.ClientError as exc:
            log.warning("could not record event %s %s for %s: %s", type_, reason, key[3], exc)

    def _allow(self, spam_key: tuple[str, ...]) -> bool:
        """Take a token from the object's bucket (SPAM_BURST deep, refilled at SPAM_QPS)."""
        now = self.clock.monotonic()
        tokens, last = self.buckets.pop(spam_key, (float(SPAM_BURST), now))
        tokens = min(float(SPAM_BURST), tokens + (now - last) * SPAM_QPS)
        allowed = tokens >= 1.0
        self.buckets[spam_key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self.buckets) > CACHE_SIZE:
            self.buckets.popitem(last=False)
        return allowed

    async def _bump(self, key: tuple[str, ...]) -> bool:
        namespace, name, count = self.seen[key]
        patch = {"count": count + 1, "lastTimestamp": self._now()}
        try:
            await self.client.patch("v1", "Event", name, patch, namespace=namespace)
        except kclient.NotFound:
            del self.seen[key]
            return False
        self.seen[key] = (namespace, name, count + 1)
        self.seen.move_to_end(key)
        return True

    async def _create(
        self, key: tuple[str, ...], involved: Obj, type_: str, reason: str, message: str
    ) -> None:
        namespace = involved["namespace"] or "default"
        now = self._now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{involved['name']}.{time.time_ns():x}",
                "namespace": namespace,
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": "",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        created = await self.client.create(event)
        self.seen[key] = (namespace, created["metadata"]["name"], 1)
        if len(self.seen) > CACHE_SIZE:
            self.seen.popitem(last=False)


def involved_object(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
