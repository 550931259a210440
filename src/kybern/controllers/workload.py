"""What the pod-owning workload controllers (ReplicaSet, ReplicationController, DaemonSet,
StatefulSet) share: ``PodOwnerController`` holds their caches (owners, pods), expectations,
event recorder and PodControl, maps pod events to owner keys (the controller of the pod, or
every owner whose selector would adopt an orphan), and reads the owner of a key with its
selector; ``candidates`` gathers the pods an owner owns or might adopt (the input of
``claims.claim``).

An owner that is gone drops its expectations (Kubernetes' DeleteExpectations); an owner whose
selector does not parse is a TerminalError (retrying cannot fix it; the next change can).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kybern import client as kclient
from kybern.api import errors as api_errors
from kybern.api import labels
from kybern.client import store
from kybern.controllers import claims, events, podcontrol, pods, runtime

Obj = dict[str, Any]
SelectorOf = Callable[[Obj], labels.Selector]


class PodOwnerController:
    """The base of a controller of ``api_version``/``kind`` objects that own pods."""

    name: str
    api_version: str
    kind: str
    selector_of: SelectorOf = staticmethod(claims.label_selector_of)

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or informers.clock
        self.sets = informers.informer_for(self.api_version, self.kind).store
        pod_informer = informers.informer_for("v1", "Pod")
        self.pods = pod_informer.store
        self.expectations = pods.Expectations(
            self.pods, lambda: pod_informer.last_resource_version, self.clock
        )
        self.recorder = events.Recorder(client, f"{self.name}-controller", clock=self.clock)
        self.pod_control = podcontrol.PodControl(client, self.recorder, self.expectations)
        self.add_caches(informers)

    def add_caches(self, informers: kclient.SharedInformerFactory) -> None:
        """Where a subclass takes the other caches it reads (informers are created up front,
        before the factory starts)."""

    def pod_keys(self, pod: Obj) -> list[str]:
        """The controller of the pod if it is one of ours; else every owner that would adopt it."""
        namespace = pod["metadata"].get("namespace", "")
        return claims.owner_keys(pod, self.kind, self.sets.list(namespace), self.selector_of)

    def load(self, key: str) -> tuple[Obj, labels.Selector] | None:
        """The owner at ``key`` (with its apiVersion and kind, which cached objects may lack)
        and its selector; None when it is gone."""
        owner = self.sets.get(key)
        if owner is None:
            self.expectations.forget(key)
            return None
        owner = {**owner, "apiVersion": self.api_version, "kind": self.kind}
        try:
            return owner, self.selector_of(owner)
        except api_errors.BadRequest as exc:
            raise runtime.TerminalError(f"{key}: invalid selector: {exc}") from exc


def candidates(pod_store: kclient.Store, owner: Obj, selector: labels.Selector) -> list[Obj]:
    """Pods ``owner`` controls plus pods it might adopt, from indexes rather than a namespace
    scan when the selector pins one label value (the usual ``app=web``): the owner's pods by
    the owner-uid index first, then the other candidates, each part in key order."""
    namespace = owner["metadata"].get("namespace", "")
    # Index keys, not objects: a set per index and one sort each, whatever the size.
    owned = pod_store.index_key_set(store.OWNER, owner["metadata"]["uid"])
    pinned = next(
        (r.key for r in selector.requirements if selector.requires_exact_match(r.key)), None
    )
    if pinned is None:
        pool = pod_store.index_key_set(store.NAMESPACE, namespace)
    else:
        value = selector.requires_exact_match(pinned)
        pool = pod_store.index_key_set(store.LABEL, f"{pinned}={value}")
        pool = {key for key in pool if store.split_key(key)[0] == namespace}
    get = pod_store.get
    found = [get(key) for key in sorted(owned)]
    found += [get(key) for key in sorted(pool - owned)]
    return [pod for pod in found if pod is not None]
