"""API discovery: legacy (/api, /apis, APIResourceList) and aggregated (apidiscovery.k8s.io/v2).

Both views are built once from the kind registry (kybern.api.kinds) and encoded once; clients
that ask for ``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`` get the
aggregated document with the exact content type kubectl checks, everyone else the legacy one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Any

import orjson

from kybern.api import kinds

AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# (kind as group/version/kind, verbs) of each subresource.
_SUBRESOURCES: dict[str, tuple[tuple[str, str, str], tuple[str, ...]]] = {
    "scale": (("autoscaling", "v1", "Scale"), ("get", "patch", "update")),
    "binding": (("", "v1", "Binding"), ("create",)),
    "eviction": (("policy", "v1", "Eviction"), ("create",)),
    "log": (("", "v1", "Pod"), ("get",)),
    "exec": (("", "v1", "PodExecOptions"), ("create", "get")),
    "attach": (("", "v1", "PodAttachOptions"), ("create", "get")),
    "portforward": (("", "v1", "PodPortForwardOptions"), ("create", "get")),
    "proxy": (("", "v1", "PodProxyOptions"), ("create", "delete", "get", "patch", "update")),
    "finalize": (("", "v1", "Namespace"), ("update",)),
    "token": (("authentication.k8s.io", "v1", "TokenRequest"), ("create",)),
}
_SAME_KIND_VERBS = ("get", "patch", "update")


def wants_aggregated(accept: str) -> bool:
    return "g=apidiscovery.k8s.io" in accept and "as=APIGroupDiscoveryList" in accept


def _subresource(
    info: kinds.ResourceInfo, name: str
) -> tuple[tuple[str, str, str], tuple[str, ...]]:
    if name in _SUBRESOURCES:
        gvk, verbs = _SUBRESOURCES[name]
        if name == "proxy" and info.kind != "Pod":
            gvk = ("", "v1", f"{info.kind}ProxyOptions")
        return gvk, verbs
    return (info.group, info.version, info.kind), _SAME_KIND_VERBS


def storage_version_hash(info: kinds.ResourceInfo) -> str:
    digest = hashlib.sha256(f"{info.group}/{info.version}/{info.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def resource_list(group: str, version: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for info in kinds.resources_for(group, version):
        entry: dict[str, Any] = {
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": list(info.verbs),
        }
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        if not info.virtual:  # Kubernetes gives no hash for never-stored resources
            entry["storageVersionHash"] = storage_version_hash(info)
        entries.append(entry)
        for sub in info.subresources:
            (g, v, kind), verbs = _subresource(info, sub)
            sub_entry: dict[str, Any] = {
                "name": f"{info.plural}/{sub}",
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": kind,
                "verbs": list(verbs),
            }
            if (g, v) != (info.group, info.version):
                sub_entry["group"], sub_entry["version"] = g, v
            entries.append(sub_entry)
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


def _group_versions(group: str) -> tuple[tuple[str, ...], str]:
    for name, versions, preferred in kinds.groups():
        if name == group:
            return versions, preferred
    return (), ""


def api_group(group: str) -> dict[str, Any] | None:
    versions, preferred = _group_versions(group)
    if not versions:
        return None
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{preferred}", "version": preferred},
    }


@functools.cache
def legacy_api() -> bytes:
    return orjson.dumps(
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }
    )


@functools.cache
def legacy_apis() -> bytes:
    groups = []
    for group, _, _ in kinds.groups():
        if group:
            described = api_group(group)
            assert described is not None
            groups.append({k: v for k, v in described.items() if k not in ("kind", "apiVersion")})
    return orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


@functools.cache
def legacy_resource_list(group: str, version: str) -> bytes:
    return orjson.dumps(resource_list(group, version))


def _aggregated_resource(info: kinds.ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subs = []
    for sub in info.subresources:
        (g, v, kind), verbs = _subresource(info, sub)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": g, "version": v, "kind": kind},
                "verbs": list(verbs),
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry


def _aggregated_group(group: str) -> dict[str, Any]:
    versions, _ = _group_versions(group)
    return {
        "metadata": {"name": group, "creationTimestamp": None},
        "versions": [
            {
                "version": version,
                "resources": [_aggregated_resource(i) for i in kinds.resources_for(group, version)],
                "freshness": "Current",
            }
            for version in versions
        ],
    }


@functools.cache
def aggregated(core: bool) -> bytes:
    """/api (core=True) or /apis (core=False) as an APIGroupDiscoveryList."""
    items = [_aggregated_group(g) for g, _, _ in kinds.groups() if (g == "") == core]
    return orjson.dumps(
        {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }
    )
