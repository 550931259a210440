"""EndpointSlices: discovery.k8s.io/v1 slices for each Service with a selector (Kubernetes'
EndpointSliceController, with a simpler reconciler).

One reconcile of ``namespace/name``:

1. Service gone: delete the slices this controller manages for it (they are also owned by
   the Service, so the garbage collector would too). Service without a selector: nothing.
2. Every selected pod with an IPv4 address that belongs in endpoints (terminating pods
   included, as Kubernetes does) becomes an endpoint: ``addresses``, ``conditions``
   (serving = Ready, or the Service publishes not-ready addresses; terminating = has a
   deletionTimestamp; ready = publishNotReadyAddresses or serving and not terminating),
   ``nodeName``, ``zone`` (the node's ``topology.kubernetes.io/zone`` label), ``targetRef``
   and ``hostname`` (as for Endpoints).
3. Ports are resolved per pod as for Endpoints (``servicepods``, shared with the Endpoints
   controller); endpoints are grouped by identical port sets
   and each group is cut into slices of at most ``MAX_ENDPOINTS_PER_SLICE`` (sorted by IP).
   A Service with no endpoints keeps one placeholder slice with no ports and no endpoints.
4. Desired slices are matched to existing slices with the same ports (by name); changed ones
   are updated, missing ones created (``generateName: <service>-``, labels
   ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``, a
   controller ownerReference to the Service), leftovers deleted.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.controllers import pods, runtime, servicepods

log = logging.getLogger(__name__)
Obj = dict[str, Any]

API_VERSION = "discovery.k8s.io/v1"
KIND = "EndpointSlice"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
STALE_RECHECK = 1.0  # seconds before looking again at a cache behind our own writes

PortsKey = servicepods.PortsKey


def slice_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {
        "name": service_port.get("name") or "",
        "port": number,
        "protocol": service_port.get("protocol") or "TCP",
    }
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def slice_labels(service: Obj) -> dict[str, str]:
    wanted = servicepods.service_labels(service)
    wanted.pop(MANAGED_BY_LABEL, None)
    wanted[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    wanted[MANAGED_BY_LABEL] = MANAGED_BY
    return wanted


def is_managed(slice_: Obj) -> bool:
    return (slice_["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


class EndpointSliceController(servicepods.ServicePodsController):
    name = "endpointslice"
    workers = 5

    def add_caches(self, informers: kclient.SharedInformerFactory) -> None:
        self.nodes = informers.informer_for("v1", "Node").store
        self.slices = informers.informer_for(API_VERSION, KIND).store
        # service key -> slice name -> resourceVersion of our last write (None: deleted);
        # Kubernetes' endpointSliceTracker: do not act on a cache older than our own writes
        self.written: dict[str, dict[str, int | None]] = {}

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Service", runtime.own_key),
            runtime.Watch("v1", "Pod", self.pod_keys),
            runtime.Watch(API_VERSION, KIND, self.slice_keys),
        ]

    def slice_keys(self, slice_: Obj) -> Iterable[str]:
        meta = slice_.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service or not is_managed(slice_):
            return []
        return [f"{meta.get('namespace', '')}/{service}"]

    def managed_slices(self, namespace: str, service: str) -> list[Obj]:
        return sorted(
            (
                s
                for s in self.slices.list(namespace)
                if is_managed(s)
                and (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == service
            ),
            key=lambda s: str(s["metadata"]["name"]),
        )

    def cache_is_stale(self, key: str) -> bool:
        namespace = key.rpartition("/")[0]
        for name, version in (self.written.get(key) or {}).items():
            cached = self.slices.get(f"{namespace}/{name}")
            if version is None:
                if cached is not None:
                    return True
            elif cached is None or _version(cached) < version:
                return True
        self.written.pop(key, None)
        return False

    async def reconcile(self, key: str) -> runtime.Result:
        namespace, _, name = key.rpartition("/")
        if self.cache_is_stale(key):
            # the slice events of our writes will enqueue the key again; look anyway later
            return runtime.Result(requeue_after=STALE_RECHECK)
        existing = self.managed_slices(namespace, name)
        service = self.services.get(key)
        if service is None:
            for slice_ in existing:
                await self.delete(key, slice_)
            return runtime.Result()
        # terminating pods included (with their conditions), as Kubernetes does
        members = self.members(service, include_terminating=True, ipv4_only=True)
        if members is None:
            return runtime.Result()
        desired = self.desired(service, members)
        await self.apply(service, desired, existing)
        return runtime.Result()

    # -- desired state -----------------------------------------------------------------

    def endpoint(self, pod: Obj, service: Obj) -> Obj:
        publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
        serving = publish or pods.is_ready(pod)
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        address = servicepods.pod_address(pod, service)
        result: Obj = {
            "addresses": [address["ip"]],
            "conditions": {
                "ready": publish or (serving and not terminating),
                "serving": serving,
                "terminating": terminating,
            },
            "targetRef": address["targetRef"],
        }
        if "hostname" in address:
            result["hostname"] = address["hostname"]
        node_name = address.get("nodeName")
        if node_name:
            result["nodeName"] = node_name
            node = self.nodes.get(node_name)
            zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)
            if zone:
                result["zone"] = zone
        return result

    def desired(self, service: Obj, members: Iterable[Obj]) -> list[tuple[list[Obj], list[Obj]]]:
        """(ports, endpoints) per wanted slice."""
        result: list[tuple[list[Obj], list[Obj]]] = []
        for ports, group in servicepods.port_groups(service, members, slice_port):
            eps = [self.endpoint(pod, service) for pod in group]
            eps.sort(key=lambda e: (e["addresses"][0], e["targetRef"]["uid"]))
            result.extend(
                (ports, eps[start : start + MAX_ENDPOINTS_PER_SLICE])
                for start in range(0, len(eps), MAX_ENDPOINTS_PER_SLICE)
            )
        if not result:
            result.append(([], []))  # the placeholder slice
        return result

    # -- writes ------------------------------------------------------------------------

    async def apply(
        self, service: Obj, desired: list[tuple[list[Obj], list[Obj]]], existing: list[Obj]
    ) -> None:
        wanted_labels = slice_labels(service)
        pool: dict[PortsKey, list[Obj]] = {}
        for slice_ in existing:
            pool.setdefault(servicepods.ports_key(slice_.get("ports") or []), []).append(slice_)
        stamp = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        for ports, eps in desired:
            reuse = pool.get(servicepods.ports_key(ports))
            if reuse:
                current = reuse.pop(0)
                if (
                    (current.get("endpoints") or []) == eps
                    and (current.get("ports") or []) == ports
                    and (current["metadata"].get("labels") or {}) == wanted_labels
                ):
                    continue
                updated = copy.deepcopy(current)
                updated.update(apiVersion=API_VERSION, kind=KIND, ports=ports, endpoints=eps)
                meta = updated["metadata"]
                meta["labels"] = wanted_labels
                meta["annotations"] = {
                    **(meta.get("annotations") or {}),
                    servicepods.LAST_CHANGE_TRIGGER_TIME: stamp,
                }
                try:
                    self.wrote(service, await self.client.update(updated))
                except kclient.NotFound:
                    await self.create(service, wanted_labels, ports, eps, stamp)
            else:
                await self.create(service, wanted_labels, ports, eps, stamp)
        for leftovers in pool.values():
            for slice_ in leftovers:
                await self.delete(kclient.key_of(service), slice_)

    def wrote(self, service: Obj, slice_: Obj) -> None:
        names = self.written.setdefault(kclient.key_of(service), {})
        names[slice_["metadata"]["name"]] = _version(slice_)

    async def create(
        self,
        service: Obj,
        wanted_labels: dict[str, str],
        ports: list[Obj],
        eps: list[Obj],
        stamp: str,
    ) -> None:
        smeta = service["metadata"]
        created = await self.client.create(
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {
                    "generateName": f"{smeta['name']}-",
                    "namespace": smeta.get("namespace", ""),
                    "labels": wanted_labels,
                    "annotations": {servicepods.LAST_CHANGE_TRIGGER_TIME: stamp},
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Service",
                            "name": smeta["name"],
                            "uid": smeta.get("uid", ""),
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "addressType": "IPv4",
                "ports": ports,
                "endpoints": eps,
            }
        )
        self.wrote(service, created)

    async def delete(self, key: str, slice_: Obj) -> None:
        meta = slice_["metadata"]
        try:
            await self.client.delete(API_VERSION, KIND, meta["name"], namespace=meta["namespace"])
        except kclient.NotFound:
            pass
        self.written.setdefault(key, {})[meta["name"]] = None


def _version(obj: Obj) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0
