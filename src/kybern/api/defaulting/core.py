"""Defaults for the core ("") API group: pods, services, namespaces, secrets, volumes, ...

Sources: Kubernetes' ``pkg/apis/core/v1/defaults.go`` (scheme defaults, applied on every
decode) and the registry strategies' ``PrepareForCreate`` (applied only when ``create``).
Go serialises zero-valued struct fields that have no ``omitempty``; where clients rely on
them (the Python client rejects a StatefulSet status without ``replicas``, a node without
``nodeInfo`` strings, a container status without ``imageID``) we fill them in too.
"""

from __future__ import annotations

from kybern.api.defaulting import podspec, qos
from kybern.api.defaulting._util import (
    Obj,
    child,
    ensure,
    items,
    setdefault,
    setdefault_empty,
)

# Service IP families are allocated by the apiserver in Kubernetes; kybern is single-stack
# and defaults them here on create.
PRIMARY_IP_FAMILY = "IPv4"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
NAMESPACE_FINALIZER = "kubernetes"

_CONTAINER_STATUS_ZERO = {
    "name": "",
    "ready": False,
    "restartCount": 0,
    "image": "",
    "imageID": "",
    "state": {},
    "lastState": {},
}
_NODE_INFO_FIELDS = (
    "machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
    "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture",
)  # fmt: skip


def pod(obj: Obj, create: bool) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        podspec.pod_spec(spec)
        podspec.pod_only(spec)
    status = ensure(obj, "status")
    if status is None:
        return
    if create:
        setdefault_empty(status, "phase", "Pending")
    if spec is not None and status.get("qosClass") in (None, ""):
        status["qosClass"] = qos.qos_class(spec)
    _pod_status(status)


def _pod_status(status: Obj) -> None:
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for container_status in items(status, key):
            for field, zero in _CONTAINER_STATUS_ZERO.items():
                setdefault(container_status, field, zero)
    for condition in items(status, "conditions"):
        condition.setdefault("lastProbeTime", None)
        condition.setdefault("lastTransitionTime", None)


def pod_template(obj: Obj, create: bool) -> None:
    podspec.pod_template(child(obj, "template"))


def replication_controller(obj: Obj, create: bool) -> None:
    spec = child(obj, "spec")
    if spec is None:
        return
    template = child(spec, "template")
    labels = _template_labels(template)
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        metadata = ensure(obj, "metadata")
        if metadata is not None and not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    setdefault(spec, "replicas", 1)
    podspec.pod_template(template)
    status = ensure(obj, "status")
    if status is not None:
        setdefault(status, "replicas", 0)


def _template_labels(template: Obj | None) -> Obj | None:
    metadata = child(template, "metadata") if template is not None else None
    labels = child(metadata, "labels") if metadata is not None else None
    return labels


def service(obj: Obj, create: bool) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        _session_affinity(spec)
        setdefault_empty(spec, "type", "ClusterIP")
        _service_ports(spec)
        _traffic_policies(spec)
        if create:
            _cluster_ips(spec)
            _ip_families(spec)
    status = ensure(obj, "status")
    if status is not None:
        ensure(status, "loadBalancer")
        if spec is not None and spec.get("type") == "LoadBalancer":
            _ingress_ip_mode(status)


def _session_affinity(spec: Obj) -> None:
    setdefault_empty(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = child(spec, "sessionAffinityConfig")
        client_ip = child(config, "clientIP") if config is not None else None
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}


def _service_ports(spec: Obj) -> None:
    for port in items(spec, "ports"):
        setdefault_empty(port, "protocol", "TCP")
        target = port.get("targetPort")
        if target is None or target == 0 or target == "":
            number = port.get("port")
            if isinstance(number, int) and not isinstance(number, bool):
                port["targetPort"] = number


def _traffic_policies(spec: Obj) -> None:
    kind = spec.get("type")
    externally_accessible = kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally_accessible:
        setdefault_empty(spec, "externalTrafficPolicy", "Cluster")
    if kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        setdefault(spec, "internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        setdefault(spec, "allocateLoadBalancerNodePorts", True)


def _ingress_ip_mode(status: Obj) -> None:
    load_balancer = child(status, "loadBalancer")
    for ingress in items(load_balancer, "ingress"):
        if ingress.get("ip"):
            setdefault(ingress, "ipMode", "VIP")


def _cluster_ips(spec: Obj) -> None:
    # The strategy's normalizeClusterIPs: clusterIP and clusterIPs[0] mirror each other.
    cluster_ip, cluster_ips = spec.get("clusterIP"), spec.get("clusterIPs")
    first = cluster_ips[0] if isinstance(cluster_ips, list) and cluster_ips else None
    if isinstance(cluster_ip, str) and cluster_ip and not cluster_ips:
        spec["clusterIPs"] = [cluster_ip]
    elif not cluster_ip and isinstance(first, str):
        spec["clusterIP"] = first


def _ip_families(spec: Obj) -> None:
    if spec.get("type") == "ExternalName":
        return
    families = spec.get("ipFamilies")
    cluster_ips = spec.get("clusterIPs")
    if spec.get("ipFamilyPolicy") is None:
        dual = (isinstance(families, list) and len(families) == 2) or (
            isinstance(cluster_ips, list) and len(cluster_ips) == 2
        )
        headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        policy = "RequireDualStack" if dual or headless_without_selector else "SingleStack"
        spec["ipFamilyPolicy"] = policy
    if not families:
        spec["ipFamilies"] = [_family_of(spec.get("clusterIP"))]
    headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
    families = spec["ipFamilies"]
    single = spec["ipFamilyPolicy"] == "SingleStack"
    if headless_selectorless and not single and isinstance(families, list) and len(families) == 1:
        # Kubernetes lets these span both families even on a single-stack cluster.
        spec["ipFamilies"] = [*families, "IPv6" if families[0] == "IPv4" else "IPv4"]


def _family_of(cluster_ip: object) -> str:
    if isinstance(cluster_ip, str) and ":" in cluster_ip:
        return "IPv6"
    if isinstance(cluster_ip, str) and cluster_ip.count(".") == 3:
        return "IPv4"
    return PRIMARY_IP_FAMILY


def namespace(obj: Obj, create: bool) -> None:
    metadata = child(obj, "metadata")
    name = metadata.get("name") if metadata is not None else None
    if metadata is not None and isinstance(name, str) and name:
        labels = ensure(metadata, "labels")
        if labels is not None:
            labels[NAMESPACE_NAME_LABEL] = name
    spec = ensure(obj, "spec")
    if create and spec is not None:
        finalizers = spec.get("finalizers")
        if finalizers is None:
            spec["finalizers"] = [NAMESPACE_FINALIZER]
        elif isinstance(finalizers, list) and NAMESPACE_FINALIZER not in finalizers:
            finalizers.append(NAMESPACE_FINALIZER)
    status = ensure(obj, "status")
    if status is not None:
        setdefault_empty(status, "phase", "Active")


def secret(obj: Obj, create: bool) -> None:
    setdefault_empty(obj, "type", "Opaque")


def persistent_volume(obj: Obj, create: bool) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        setdefault_empty(spec, "persistentVolumeReclaimPolicy", "Retain")
        setdefault(spec, "volumeMode", "Filesystem")
        podspec.legacy_sources(spec)
    status = ensure(obj, "status")
    if status is not None:
        setdefault_empty(status, "phase", "Pending")


def persistent_volume_claim(obj: Obj, create: bool) -> None:
    """Also used for StatefulSet volumeClaimTemplates, which Kubernetes defaults alike."""
    spec = child(obj, "spec")
    if spec is not None:
        podspec.pvc_spec(spec)
    status = ensure(obj, "status")
    if status is not None:
        setdefault_empty(status, "phase", "Pending")


def endpoints(obj: Obj, create: bool) -> None:
    for subset in items(obj, "subsets"):
        for port in items(subset, "ports"):
            setdefault_empty(port, "protocol", "TCP")


def node(obj: Obj, create: bool) -> None:
    ensure(obj, "spec")
    status = ensure(obj, "status")
    if status is None:
        return
    capacity = child(status, "capacity")
    if status.get("allocatable") is None and capacity is not None:
        status["allocatable"] = dict(capacity)
    node_info = ensure(status, "nodeInfo")
    if node_info is not None:
        for field in _NODE_INFO_FIELDS:
            setdefault(node_info, field, "")
    endpoints_obj = ensure(status, "daemonEndpoints")
    kubelet = ensure(endpoints_obj, "kubeletEndpoint") if endpoints_obj is not None else None
    if kubelet is not None:
        setdefault(kubelet, "Port", 0)


def limit_range(obj: Obj, create: bool) -> None:
    for item in items(child(obj, "spec"), "limits"):
        if item.get("type") == "Container":
            _limit_range_item(item)


def _limit_range_item(item: Obj) -> None:
    default = dict(child(item, "default") or {})
    default_request = dict(child(item, "defaultRequest") or {})
    for name, value in (child(item, "max") or {}).items():
        default.setdefault(name, value)
    for name, value in default.items():
        default_request.setdefault(name, value)
    for name, value in (child(item, "min") or {}).items():
        default_request.setdefault(name, value)
    for key, values in (("default", default), ("defaultRequest", default_request)):
        if values and (item.get(key) is None or isinstance(item.get(key), dict)):
            item[key] = values


def event(obj: Obj, create: bool) -> None:
    """core/v1 Event: fields Go always serialises (``eventTime: null`` and friends)."""
    ensure(obj, "involvedObject")
    ensure(obj, "source")
    for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
        obj.setdefault(key, None)
    for key in ("reportingComponent", "reportingInstance"):
        setdefault(obj, key, "")


DEFAULTERS = {
    ("", "Pod"): pod,
    ("", "PodTemplate"): pod_template,
    ("", "ReplicationController"): replication_controller,
    ("", "Service"): service,
    ("", "Namespace"): namespace,
    ("", "Secret"): secret,
    ("", "PersistentVolume"): persistent_volume,
    ("", "PersistentVolumeClaim"): persistent_volume_claim,
    ("", "Endpoints"): endpoints,
    ("", "Node"): node,
    ("", "LimitRange"): limit_range,
    ("", "Event"): event,
}
