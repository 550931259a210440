"""The admission chain: checks that run after validation and before a write is stored.

Each plugin may change the object (defaults) or refuse a create, update or delete with a
StatusError. Each call gets a :class:`Request` with what Kubernetes' admission.Attributes
carry besides the object:

- ``dry_run``: the write will not be stored (``?dryRun=All``). A plugin judges it exactly
  like a real write (the same refusals) but records nothing outside the object: ResourceQuota
  checks the quota and does not charge it.
- ``subresource``: the write is to a subresource (``status``, ``finalize``, ``eviction``),
  ``""`` for the object itself. Most plugins look only at the object itself, as in
  Kubernetes; NamespaceLifecycle also refuses a subresource create (a pod eviction) in a
  terminating namespace.

This module holds the protocol, the chain, NamespaceLifecycle and DefaultTolerationSeconds;
default_chain puts them together with LimitRanger, ServiceAccount and ResourceQuota.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kybern.api import kinds
from kybern.apiserver import errors, limitranger, quota, serviceaccount_admission, watchcache

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Request:
    """The write a plugin admits: the resource, whether it is a dry run, the subresource."""

    info: kinds.ResourceInfo
    dry_run: bool = False
    subresource: str = ""


class Plugin(Protocol):
    async def on_create(self, req: Request, obj: Obj) -> None: ...

    async def on_update(self, req: Request, new: Obj, old: Obj) -> None: ...

    async def on_delete(self, req: Request, obj: Obj) -> None: ...


class Chain:
    def __init__(self, plugins: list[Plugin]) -> None:
        self.plugins = plugins

    async def on_create(self, req: Request, obj: Obj) -> None:
        for plugin in self.plugins:
            await plugin.on_create(req, obj)

    async def on_update(self, req: Request, new: Obj, old: Obj) -> None:
        for plugin in self.plugins:
            await plugin.on_update(req, new, old)

    async def on_delete(self, req: Request, obj: Obj) -> None:
        for plugin in self.plugins:
            await plugin.on_delete(req, obj)


class NamespaceLifecycle:
    """No new content in a missing or terminating namespace; system namespaces are immortal."""

    def __init__(self, cache: watchcache.WatchCache) -> None:
        self.cache = cache

    async def on_create(self, req: Request, obj: Obj) -> None:
        # Subresource creates too: Kubernetes refuses a pod eviction in a terminating
        # namespace (kubectl drain waits on the NamespaceTerminating cause).
        info = req.info
        if not info.namespaced:
            return
        namespace = obj["metadata"].get("namespace", "")
        ns = self._namespace(namespace)
        if ns is None:
            await self.cache.sync()  # it may have been created a moment ago
            ns = self._namespace(namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating" or ns["metadata"].get(
            "deletionTimestamp"
        ):
            raise errors.StatusError(
                403,
                "Forbidden",
                f"{_what(info, obj)} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                details={
                    "name": obj["metadata"].get("name", ""),
                    "kind": info.plural,
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated",
                            "field": "metadata.namespace",
                        }
                    ],
                },
            )

    def _namespace(self, name: str) -> dict[str, Any] | None:
        key = watchcache.object_key("namespaces", "", name)
        return self.cache.resource("namespaces").objects.get(key)

    async def on_update(self, req: Request, new: Obj, old: Obj) -> None:
        return None

    async def on_delete(self, req: Request, obj: Obj) -> None:
        if req.info.kind == "Namespace" and obj["metadata"]["name"] in IMMORTAL_NAMESPACES:
            raise errors.forbidden(
                "namespaces", obj["metadata"]["name"], "", "this namespace may not be deleted"
            )


class DefaultTolerationSeconds:
    """Kubernetes' DefaultTolerationSeconds: a new pod that does not already tolerate the
    not-ready / unreachable NoExecute taints (a toleration with that key or an empty key, and
    the NoExecute or an empty effect) gets ``operator: Exists, tolerationSeconds: 300`` for
    each, so taint-based eviction moves it off a failed node after five minutes. Applied on
    create only (Kubernetes also admits updates, which matters only for pods that were
    created without the plugin)."""

    SECONDS = 300
    KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")

    async def on_create(self, req: Request, obj: Obj) -> None:
        spec = obj.get("spec")
        info = req.info
        if req.subresource or info.group or info.kind != "Pod" or not isinstance(spec, dict):
            return
        tolerations = spec.get("tolerations")
        tolerations = tolerations if isinstance(tolerations, list) else []
        for key in self.KEYS:
            if not any(_tolerates_no_execute(t, key) for t in tolerations):
                tolerations.append(
                    {
                        "key": key,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": self.SECONDS,
                    }
                )
        spec["tolerations"] = tolerations

    async def on_update(self, req: Request, new: Obj, old: Obj) -> None:
        return None

    async def on_delete(self, req: Request, obj: Obj) -> None:
        return None


def _tolerates_no_execute(toleration: Any, key: str) -> bool:
    if not isinstance(toleration, dict):
        return False
    return toleration.get("key") in (key, "", None) and toleration.get("effect") in (
        "NoExecute",
        "",
        None,
    )


def _what(info: kinds.ResourceInfo, obj: dict[str, Any]) -> str:
    resource = f"{info.plural}.{info.group}" if info.group else info.plural
    return f'{resource} "{obj["metadata"].get("name", "")}"'


def default_chain(cache: watchcache.WatchCache) -> Chain:
    # Kubernetes' order: mutating LimitRanger before ResourceQuota, which charges usage and
    # so must come last.
    return Chain(
        [
            NamespaceLifecycle(cache),
            limitranger.LimitRanger(cache),
            serviceaccount_admission.ServiceAccountAdmission(cache),
            DefaultTolerationSeconds(),
            quota.ResourceQuotaAdmission(cache, cache.backend),
        ]
    )
