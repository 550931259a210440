"""``Client``: Kubernetes verbs over plain dict objects, on any ``Transport``.

Resources are named as users name them: an apiVersion plus a kind (``"apps/v1",
"Deployment"``) or a plural (``"apps/v1", "deployments"``), resolved through the kind registry
(``kybern.api.kinds``) that the server itself serves. Objects go in and come out as dicts; a
failure raises the ``errors.ApiError`` subclass for its Status (``NotFound``, ``Conflict``...).

Objects returned are the caller's own (copied when the transport shares them with the server's
cache), except from ``list(..., shared=True)`` and ``watch(..., shared=True)``, which informers
use: those must be treated as immutable.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kybern.api import kinds
from kybern.client import errors, inprocess, transport
from kybern.client.transport import Response, Transport, WatchEvent

PATCH_TYPES = {
    "merge": transport.MERGE_PATCH,
    "json": transport.JSON_PATCH,
    "strategic": transport.STRATEGIC_MERGE_PATCH,
    "apply": transport.APPLY_PATCH,
}


@functools.cache
def resource_info(api_version: str, kind_or_resource: str) -> kinds.ResourceInfo:
    """The served resource for (apiVersion, Kind) or (apiVersion, plural)."""
    info = kinds.for_kind(api_version, kind_or_resource)
    if info is None:
        group, _, version = api_version.rpartition("/")
        info = kinds.lookup(group, version, kind_or_resource)
    if info is None:
        raise errors.ClientError(f"no resource {kind_or_resource!r} in {api_version!r}")
    return info


def path_for(
    info: kinds.ResourceInfo,
    *,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
) -> str:
    """/api/v1/namespaces/<ns>/pods/<name>/<subresource>, or the /apis/<group>/... form."""
    parts = ["/api/v1" if not info.group else f"/apis/{info.group}/{info.version}"]
    if info.namespaced and namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(info.plural)
    if name:
        parts.append(name)
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


def _check(response: Response) -> Response:
    if not response.ok:
        raise errors.from_status(response.status, response.json())
    return response


def _owned(response: Response) -> dict[str, Any]:
    obj = response.json()
    if response.shared:
        obj = inprocess.copy_object(obj)
    return obj  # type: ignore[no-any-return]


Items = list[dict[str, Any]]  # inside Client, ``list`` names the method


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Client:
    """The Kubernetes API verbs; ``transport`` decides how requests travel."""

    def __init__(self, transport_: Transport) -> None:
        self.transport = transport_

    async def close(self) -> None:
        await self.transport.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        response = await self.transport.request(
            method, path, query=query, body=body, content_type=content_type
        )
        return _owned(_check(response))

    # -- reads -------------------------------------------------------------------------

    async def get(
        self, api_version: str, kind: str, name: str, *, namespace: str = ""
    ) -> dict[str, Any]:
        info = resource_info(api_version, kind)
        return await self._call("GET", path_for(info, namespace=namespace, name=name))

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        resource_version: str | None = None,
        resource_version_match: str = "",
        shared: bool = False,
    ) -> dict[str, Any]:
        """One List object (one page when ``limit`` is set: follow ``metadata.continue``)."""
        info = resource_info(api_version, kind)
        query = _drop_empty(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=str(limit) if limit else "",
            resourceVersion=resource_version or "",
            resourceVersionMatch=resource_version_match,
            **{"continue": continue_},
        )
        response = _check(
            await self.transport.request("GET", path_for(info, namespace=namespace), query=query)
        )
        return response.json() if shared else _owned(response)

    async def list_all(
        self, api_version: str, kind: str, *, page_size: int = 500, **options: Any
    ) -> Items:
        """Every item, page after page (``options`` as for ``list``)."""
        items: Items = []
        token = ""
        while True:
            page = await self.list(api_version, kind, limit=page_size, continue_=token, **options)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    async def watch(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str = "",
        name: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = False,
        send_initial_events: bool | None = None,
        shared: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        """Events from ``resource_version`` on (none or "0": the current objects first, as
        ADDED). An ERROR event is raised as its ``errors.ApiError`` (``Gone`` on 410)."""
        info = resource_info(api_version, kind)
        if name:
            by_name = f"metadata.name={name}"
            field_selector = f"{field_selector},{by_name}" if field_selector else by_name
        query = _drop_empty(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            resourceVersion=resource_version or "",
            timeoutSeconds=str(timeout_seconds) if timeout_seconds else "",
            allowWatchBookmarks="true" if allow_bookmarks else "",
        )
        if send_initial_events is not None:
            query["sendInitialEvents"] = "true" if send_initial_events else "false"
            query["resourceVersionMatch"] = "NotOlderThan"
        events = self.transport.watch(path_for(info, namespace=namespace), query=query)
        try:
            async for event in events:
                if event.type == "ERROR":
                    status = event.object
                    raise errors.from_status(int(status.get("code") or 500), status)
                if shared:
                    yield event
                else:
                    yield WatchEvent(event.type, inprocess.copy_object(event.object))
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    # -- writes ------------------------------------------------------------------------

    async def create(
        self, obj: dict[str, Any], *, namespace: str = "", dry_run: bool = False
    ) -> dict[str, Any]:
        """POST ``obj`` (its apiVersion and kind pick the resource; the namespace comes
        from ``namespace`` or the object's metadata)."""
        info = resource_info(obj["apiVersion"], obj["kind"])
        namespace = namespace or _meta(obj)[0]
        path = path_for(info, namespace=namespace)
        return await self._call("POST", path, query=_dry(dry_run), body=obj)

    async def update(
        self, obj: dict[str, Any], *, subresource: str = "", dry_run: bool = False
    ) -> dict[str, Any]:
        """PUT ``obj``; its ``metadata.resourceVersion`` (if any) is the precondition."""
        info = resource_info(obj["apiVersion"], obj["kind"])
        namespace, name = _meta(obj)
        path = path_for(info, namespace=namespace, name=name, subresource=subresource)
        return await self._call("PUT", path, query=_dry(dry_run), body=obj)

    async def update_status(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        return await self.update(obj, subresource="status", dry_run=dry_run)

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        *,
        namespace: str = "",
        patch_type: str = "merge",
        subresource: str = "",
        field_manager: str = "",
        force: bool | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """``patch_type``: merge, json, strategic or apply (or a full media type)."""
        info = resource_info(api_version, kind)
        content_type = PATCH_TYPES.get(patch_type, patch_type)
        query = _dry(dry_run)
        if field_manager:
            query["fieldManager"] = field_manager
        if force is not None:
            query["force"] = "true" if force else "false"
        path = path_for(info, namespace=namespace, name=name, subresource=subresource)
        return await self._call("PATCH", path, query=query, body=patch, content_type=content_type)

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        *,
        namespace: str = "",
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE; answers the object (still there when finalizers or a grace period hold
        it) or a Success Status, as the server does for the kind."""
        info = resource_info(api_version, kind)
        body = _delete_options(propagation_policy, grace_period_seconds, preconditions, dry_run)
        path = path_for(info, namespace=namespace, name=name)
        return await self._call("DELETE", path, body=body)

    async def delete_collection(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        propagation_policy: str | None = None,
    ) -> dict[str, Any]:
        info = resource_info(api_version, kind)
        query = _drop_empty(labelSelector=label_selector, fieldSelector=field_selector)
        body = _delete_options(propagation_policy, None, None, False)
        path = path_for(info, namespace=namespace)
        return await self._call("DELETE", path, query=query, body=body)

    # -- subresources ------------------------------------------------------------------

    async def bind(
        self, pod: Mapping[str, Any] | str, node: str, *, namespace: str = ""
    ) -> dict[str, Any]:
        """POST pods/<name>/binding: assign a pod to a node (the scheduler's verb)."""
        namespace, name = _pod_name(pod, namespace)
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        info = resource_info("v1", "Pod")
        path = path_for(info, namespace=namespace, name=name, subresource="binding")
        return await self._call("POST", path, body=binding)

    async def evict(
        self,
        pod: Mapping[str, Any] | str,
        *,
        namespace: str = "",
        grace_period_seconds: int | None = None,
    ) -> dict[str, Any]:
        """POST pods/<name>/eviction (policy/v1 Eviction): a delete that honours
        PodDisruptionBudgets (``errors.TooManyRequests`` when a budget forbids it)."""
        namespace, name = _pod_name(pod, namespace)
        eviction: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if grace_period_seconds is not None:
            eviction["deleteOptions"] = {"gracePeriodSeconds": grace_period_seconds}
        info = resource_info("v1", "Pod")
        path = path_for(info, namespace=namespace, name=name, subresource="eviction")
        return await self._call("POST", path, body=eviction)

    async def get_scale(
        self, api_version: str, kind: str, name: str, *, namespace: str = ""
    ) -> dict[str, Any]:
        info = resource_info(api_version, kind)
        return await self._call(
            "GET", path_for(info, namespace=namespace, name=name, subresource="scale")
        )

    async def scale(
        self, api_version: str, kind: str, name: str, replicas: int, *, namespace: str = ""
    ) -> dict[str, Any]:
        """Set spec.replicas through the scale subresource; answers the autoscaling/v1 Scale."""
        return await self.patch(
            api_version,
            kind,
            name,
            {"spec": {"replicas": replicas}},
            namespace=namespace,
            subresource="scale",
        )


def _drop_empty(**params: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if v}


def _dry(dry_run: bool) -> dict[str, str]:
    return {"dryRun": "All"} if dry_run else {}


def _delete_options(
    propagation: str | None,
    grace: int | None,
    preconditions: Mapping[str, str] | None,
    dry_run: bool,
) -> dict[str, Any] | None:
    body: dict[str, Any] = {}
    if propagation:
        body["propagationPolicy"] = propagation
    if grace is not None:
        body["gracePeriodSeconds"] = grace
    if preconditions:
        body["preconditions"] = dict(preconditions)
    if dry_run:
        body["dryRun"] = ["All"]
    if not body:
        return None
    return {"apiVersion": "v1", "kind": "DeleteOptions", **body}


def _pod_name(pod: Mapping[str, Any] | str, namespace: str) -> tuple[str, str]:
    if isinstance(pod, str):
        return namespace, pod
    pod_namespace, name = _meta(pod)
    return namespace or pod_namespace, name
