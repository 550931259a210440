"""Defaults for pod specs, shared by Pods and by every pod template.

Kubernetes applies ``SetDefaults_PodSpec`` and the nested container, probe, volume and
env defaults wherever a PodSpec appears (Pod, PodTemplate, ReplicationController,
Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob). A few defaults are for
Pods only (``SetDefaults_Pod``: requests from limits, ``enableServiceLinks``, host ports
under host networking); those live in :func:`pod_only`.
"""

from __future__ import annotations

import re

from kybern.api.defaulting._util import Obj, child, items, setdefault, setdefault_empty

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")

# Every member of core/v1 VolumeSource: a volume with none of them becomes an emptyDir.
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
)  # fmt: skip

DEFAULT_MODE = 0o644  # 420: secret, configMap, downwardAPI and projected volumes

# Declarative (+default) values of legacy in-tree volume sources.
_SOURCE_DEFAULTS: dict[str, dict[str, object]] = {
    "iscsi": {"iscsiInterface": "default"},
    "rbd": {"pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring"},
    "azureDisk": {
        "cachingMode": "ReadWrite",
        "fsType": "ext4",
        "readOnly": False,
        "kind": "Shared",
    },
    "scaleIO": {"storageMode": "ThinProvisioned", "fsType": "xfs"},
}

# A loose docker reference: [domain[:port]/]path[:tag][@digest]. Anything that does not
# parse gets IfNotPresent, like Kubernetes, which ignores the parse error.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def pull_policy(image: object) -> str:
    """``Always`` for ``:latest`` or untagged (and undigested) images, else ``IfNotPresent``."""
    if not isinstance(image, str):
        return "IfNotPresent"
    match = _REFERENCE.fullmatch(image)
    if match is None:
        return "IfNotPresent"
    tag, digest = match.group("tag"), match.group("digest")
    if tag == "latest" or (tag is None and digest is None):
        return "Always"
    return "IfNotPresent"


def pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec plus every nested default; used for pods and templates."""
    setdefault_empty(spec, "dnsPolicy", "ClusterFirst")
    setdefault_empty(spec, "restartPolicy", "Always")
    setdefault(spec, "securityContext", {})
    setdefault(spec, "terminationGracePeriodSeconds", 30)
    setdefault_empty(spec, "schedulerName", "default-scheduler")
    _service_account_alias(spec)
    for key in CONTAINER_LISTS:
        for container_obj in items(spec, key):
            container(container_obj)
    for volume_obj in items(spec, "volumes"):
        volume(volume_obj)


def pod_template(template: Obj | None) -> None:
    """Default the spec of a PodTemplateSpec (``{metadata, spec}``) if there is one."""
    spec = child(template, "spec") if template is not None else None
    if spec is not None:
        pod_spec(spec)


def pod_only(spec: Obj) -> None:
    """SetDefaults_Pod: defaults that materialise on Pods but not on templates."""
    for key in ("initContainers", "containers"):
        for container_obj in items(spec, key):
            _requests_from_limits(container_obj)
    setdefault(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for key in ("initContainers", "containers"):
            for container_obj in items(spec, key):
                for port in items(container_obj, "ports"):
                    if isinstance(port.get("containerPort"), int):
                        setdefault_empty(port, "hostPort", port["containerPort"])


def _service_account_alias(spec: Obj) -> None:
    # v1 conversion: serviceAccount is a deprecated alias; serviceAccountName wins and
    # the alias is always written back equal to it.
    name = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if isinstance(name, str) and name:
        spec["serviceAccountName"] = name
        spec["serviceAccount"] = name


def _requests_from_limits(container_obj: Obj) -> None:
    resources = child(container_obj, "resources")
    limits = child(resources, "limits") if resources is not None else None
    if resources is None or not limits:
        return
    requests = resources.get("requests")
    if requests is None:
        requests = resources["requests"] = {}
    if isinstance(requests, dict):
        for name, quantity in limits.items():
            requests.setdefault(name, quantity)


def container(obj: Obj) -> None:
    """SetDefaults_Container and everything nested in a container."""
    if obj.get("imagePullPolicy") in (None, ""):
        obj["imagePullPolicy"] = pull_policy(obj.get("image"))
    setdefault_empty(obj, "terminationMessagePath", "/dev/termination-log")
    setdefault_empty(obj, "terminationMessagePolicy", "File")
    setdefault(obj, "resources", {})  # a Go struct value: always serialised
    for port in items(obj, "ports"):
        setdefault_empty(port, "protocol", "TCP")
    for env in items(obj, "env"):
        value_from = child(env, "valueFrom")
        if value_from is not None:
            _field_refs(value_from)
    for key in PROBES:
        probe_obj = child(obj, key)
        if probe_obj is not None:
            probe(probe_obj)
    lifecycle = child(obj, "lifecycle")
    for key in ("postStart", "preStop"):
        handler = child(lifecycle, key) if lifecycle is not None else None
        if handler is not None:
            _handler(handler)


def probe(obj: Obj) -> None:
    setdefault_empty(obj, "timeoutSeconds", 1)
    setdefault_empty(obj, "periodSeconds", 10)
    setdefault_empty(obj, "successThreshold", 1)
    setdefault_empty(obj, "failureThreshold", 3)
    _handler(obj)
    grpc = child(obj, "grpc")
    if grpc is not None:
        setdefault(grpc, "service", "")


def _handler(obj: Obj) -> None:
    http_get = child(obj, "httpGet")
    if http_get is not None:
        setdefault_empty(http_get, "path", "/")
        setdefault_empty(http_get, "scheme", "HTTP")


def _field_refs(obj: Obj) -> None:
    """Defaults of env valueFrom / downward API items: fieldRef and resourceFieldRef."""
    field_ref = child(obj, "fieldRef")
    if field_ref is not None:
        setdefault_empty(field_ref, "apiVersion", "v1")
    resource_ref = child(obj, "resourceFieldRef")
    if resource_ref is not None:
        setdefault(resource_ref, "divisor", "0")  # a Quantity struct: serialised as "0"


def volume(obj: Obj) -> None:
    """SetDefaults_Volume and the per-source defaults."""
    if all(obj.get(key) is None for key in VOLUME_SOURCES):
        obj["emptyDir"] = {}
    legacy_sources(obj)
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = child(obj, key)
        if source is not None:
            setdefault(source, "defaultMode", DEFAULT_MODE)
    _downward_items(child(obj, "downwardAPI"))
    _projected(child(obj, "projected"))
    _ephemeral(child(obj, "ephemeral"))


def legacy_sources(obj: Obj) -> None:
    """Defaults of hostPath and in-tree sources shared by volumes and PersistentVolumes."""
    host_path = child(obj, "hostPath")
    if host_path is not None:
        setdefault(host_path, "type", "")
    for key, defaults in _SOURCE_DEFAULTS.items():
        source = child(obj, key)
        if source is not None:
            for field, value in defaults.items():
                setdefault_empty(source, field, value)


def _downward_items(source: Obj | None) -> None:
    for item in items(source, "items"):
        _field_refs(item)


def _projected(source: Obj | None) -> None:
    for projection in items(source, "sources"):
        _downward_items(child(projection, "downwardAPI"))
        token = child(projection, "serviceAccountToken")
        if token is not None:
            setdefault(token, "expirationSeconds", 3600)


def _ephemeral(source: Obj | None) -> None:
    template = child(source, "volumeClaimTemplate") if source is not None else None
    spec = child(template, "spec") if template is not None else None
    if spec is not None:
        pvc_spec(spec)


def pvc_spec(spec: Obj) -> None:
    """SetDefaults_PersistentVolumeClaimSpec (also used by StatefulSet claim templates)."""
    setdefault(spec, "volumeMode", "Filesystem")
