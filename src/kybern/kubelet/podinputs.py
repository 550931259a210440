"""What a pod needs from the cluster before its containers start, wired to the agent's caches.

The agent resolves each container's environment (:mod:`kybern.kubelet.envvars`), the pod's
resolv.conf (:mod:`kybern.kubelet.dnsconfig`), its volumes (:mod:`kybern.kubelet.volumes`)
and projected ServiceAccount tokens (a TokenRequest on ``serviceaccounts/<name>/token``,
bound to the pod) from informer caches of ConfigMaps, Secrets, Services, PVCs and PVs, and
reports the Warning events those modules ask for (InvalidEnvironmentVariableNames,
MissingClusterDNS, DNSConfigForming).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kybern import client as kclient
from kybern.client import clock as clock_
from kybern.kubelet import containerconfig as cc
from kybern.kubelet import dnsconfig, envvars, kuberuntime
from kybern.runtime import cri

Obj = dict[str, Any]
Record = Callable[[Obj, str, str, str], None]
KINDS = ("ConfigMap", "Secret", "Service", "PersistentVolumeClaim", "PersistentVolume")


class Objects:
    """envvars.ObjectSource over informer caches."""

    def __init__(self, informers: kclient.SharedInformerFactory) -> None:
        self._informers = {kind: informers.informer_for("v1", kind) for kind in KINDS}

    async def wait_for_sync(self) -> None:
        await asyncio.gather(*(i.wait_for_sync() for i in self._informers.values()))

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        informer = self._informers.get(kind)
        return informer.store.get_by_name(name, namespace) if informer else None

    def list_services(self, namespace: str) -> list[Obj]:
        return list(self._informers["Service"].store.list(namespace))


@dataclass
class NodeFacts:
    name: str
    ip: str
    allocatable: Mapping[str, str] = field(default_factory=dict)
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    resolv_conf: Path | None = Path("/etc/resolv.conf")


class PodInputs:
    def __init__(
        self,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        node: NodeFacts,
        *,
        record: Record,
    ) -> None:
        self.client = client
        self.node = node
        self.record = record
        self.objects = Objects(informers)
        resolv = node.resolv_conf
        self._resolv = resolv if resolv is not None and resolv.exists() else None

    def volumes(self, data_dir: Path, clock: clock_.Clock) -> kuberuntime.Volumes:
        from kybern.kubelet import volumes

        manager: kuberuntime.Volumes = volumes.VolumeManager(
            data_dir, source=self.objects, clock=clock, token_source=self.token
        )
        return manager

    def env(self, pod: Obj, container: Obj, pod_ip: str) -> list[tuple[str, str]]:
        spec = pod.get("spec") or {}
        result = envvars.container_env(
            pod,
            container,
            source=self.objects,
            node_name=self.node.name,
            node_ip=self.node.ip,
            pod_ip=pod_ip,
            pod_ips=[pod_ip] if pod_ip else [],
            host_ip=self.node.ip,
            service_account_name=str(spec.get("serviceAccountName") or "default"),
            node_allocatable=self.node.allocatable,
        )
        for warning in result.warnings:
            self.record(pod, "Warning", "InvalidEnvironmentVariableNames", warning)
        return list(result)

    def dns(self, pod: Obj) -> cri.DNSConfig:
        warnings: list[str] = []
        config = dnsconfig.dns_config(
            pod,
            cluster_dns=self.node.cluster_dns,
            cluster_domain=self.node.cluster_domain,
            host_resolv_conf=self._resolv,
            node_ips=[self.node.ip],
            warnings=warnings,
        )
        for text in warnings:
            reason = "MissingClusterDNS" if "ClusterDNS" in text else "DNSConfigForming"
            self.record(pod, "Warning", reason, text)
        return config

    async def token(
        self, namespace: str, service_account: str, audience: str, expiration: int, pod: Obj
    ) -> str:
        """A ServiceAccount token bound to the pod (projected serviceAccountToken volumes)."""
        meta = cc.meta(pod)
        spec: Obj = {
            "expirationSeconds": expiration,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta.get("name", ""),
                "uid": meta.get("uid", ""),
            },
        }
        if audience:
            spec["audiences"] = [audience]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        info = kclient.resource_info("v1", "ServiceAccount")
        path = kclient.path_for(
            info, namespace=namespace, name=service_account, subresource="token"
        )
        # Client has no verb for creating a subresource; _call is its one request path
        answer = await self.client._call("POST", path, body=body)
        return str((answer.get("status") or {}).get("token") or "")
