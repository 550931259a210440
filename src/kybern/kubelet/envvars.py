"""A container's environment as kubelet v1.32 builds it, and ``$(VAR)`` expansion.

Interface for the kubelet core:

- ``ObjectSource``: ``get(kind, namespace, name) -> dict | None`` (kind ``"ConfigMap"``,
  ``"Secret"``, ``"Service"``, ``"PersistentVolumeClaim"``, ``"PersistentVolume"``; namespace
  ``""`` for cluster-scoped kinds) and ``list_services(namespace) -> list[dict]``; the agent
  backs it with informer caches.
- ``container_env(pod, container, *, source, node_name, node_ip, pod_ip, pod_ips, host_ip,
  service_account_name, master_services=("kubernetes",), node_allocatable=None,
  host_ips=None) -> EnvResult``: ``EnvResult`` is a ``list[(name, value)]`` in order whose
  ``.warnings`` holds the texts of the ``InvalidEnvironmentVariableNames`` Warning events the
  caller records on the pod. Raises :class:`ConfigError` (the container then waits with reason
  ``CreateContainerConfigError`` and the error text as message).
- ``command_args(container, env) -> (command, args)`` with ``$(VAR)`` expanded.
- ``expand(text, *mappings)`` is Kubernetes' expansion (``third_party/forked/golang/expansion``).

Resolution order is the kubelet's: envFrom sources, then ``env`` entries in order (a ``value``
is expanded against the variables so far and the service variables; ``valueFrom`` is
resolved), then service-link variables for names not yet defined.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kybern.api import quantity

Obj = dict[str, Any]


class ConfigError(Exception):
    """The container's configuration cannot be resolved (CreateContainerConfigError)."""


class ObjectSource(Protocol):
    """Read access to API objects the kubelet needs for a pod (informer caches in the agent)."""

    def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...

    def list_services(self, namespace: str) -> list[Obj]: ...


class EnvResult(list[tuple[str, str]]):
    """The ``(name, value)`` pairs in order, plus ``warnings``: InvalidEnvironmentVariableNames
    event messages for the caller to record."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = (), warnings: Iterable[str] = ()) -> None:
        super().__init__(pairs)
        self.warnings = list(warnings)


# --- $(VAR) expansion --------------------------------------------------------------------


def expand(text: str, *mappings: Mapping[str, str]) -> str:
    """Expand ``$(NAME)`` from the first mapping that has it; ``$$`` is a literal ``$``;
    undefined references and incomplete ``$(`` stay as written."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read_name(text[cursor + 1 :])
            out.append(_lookup(read, mappings) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def _read_name(rest: str) -> tuple[str, bool, int]:
    if rest[0] == "$":
        return "$", False, 1
    if rest[0] == "(":
        close = rest.find(")", 1)
        if close >= 0:
            return rest[1:close], True, close + 1
        return "$(", False, 1
    return "$" + rest[0], False, 1


def _lookup(name: str, mappings: Sequence[Mapping[str, str]]) -> str:
    for mapping in mappings:
        if name in mapping:
            return mapping[name]
    return f"$({name})"


def command_args(container: Obj, env: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The container's command and args with ``$(VAR)`` references to its environment expanded."""
    mapping = dict(env)
    command = [expand(str(c), mapping) for c in container.get("command") or []]
    args = [expand(str(a), mapping) for a in container.get("args") or []]
    return command, args


# --- names -------------------------------------------------------------------------------

_STRICT_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def valid_name(name: str, *, relaxed: bool = True) -> bool:
    """Whether ``name`` may be an environment variable name. v1.32 enables the beta
    RelaxedEnvironmentVariableValidation gate: any printable ASCII but ``=``."""
    if not relaxed:
        return bool(_STRICT_NAME.match(name))
    return bool(name) and "=" not in name and all(" " <= ch <= "~" for ch in name)


# --- object references -------------------------------------------------------------------


def _decode_secret(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return value


def _data(kind: str, obj: Obj) -> dict[str, str]:
    if kind == "Secret":
        data = {k: _decode_secret(str(v)) for k, v in (obj.get("data") or {}).items()}
        data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
        return data
    return {k: str(v) for k, v in (obj.get("data") or {}).items()}


class _Objects:
    """Per-call cache of ConfigMaps and Secrets, as the kubelet keeps one while building env."""

    def __init__(self, source: ObjectSource, namespace: str) -> None:
        self.source = source
        self.namespace = namespace
        self._cache: dict[tuple[str, str], dict[str, str] | None] = {}

    def data(self, kind: str, name: str, *, optional: bool) -> dict[str, str] | None:
        key = (kind, name)
        if key not in self._cache:
            obj = self.source.get(kind, self.namespace, name)
            self._cache[key] = None if obj is None else _data(kind, obj)
        data = self._cache[key]
        if data is None and not optional:
            raise ConfigError(f'{kind.lower()} "{name}" not found')
        return data


# --- fieldRef / resourceFieldRef ---------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def go_quote(value: str) -> str:
    """Go's ``%q`` for the strings the downward API writes (JSON escaping matches for text)."""
    return json.dumps(value, ensure_ascii=False)


def format_map(values: Mapping[str, str]) -> str:
    """``key="value"`` lines in key order, as the downward API renders labels/annotations."""
    return "\n".join(f"{k}={go_quote(values[k])}" for k in sorted(values))


@dataclass(frozen=True)
class PodRuntimeFields:
    """The pod fields only the kubelet knows (addresses)."""

    pod_ip: str = ""
    pod_ips: tuple[str, ...] = ()
    host_ip: str = ""
    host_ips: tuple[str, ...] = ()


def field_value(pod: Obj, path: str, runtime: PodRuntimeFields) -> str:
    """The value of a downward API ``fieldRef.fieldPath``; ConfigError when unsupported."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple: dict[str, str] = {
        "metadata.name": str(meta.get("name", "")),
        "metadata.namespace": str(meta.get("namespace", "")),
        "metadata.uid": str(meta.get("uid", "")),
        "spec.nodeName": str(spec.get("nodeName", "")),
        "spec.serviceAccountName": str(spec.get("serviceAccountName", "")),
        "status.hostIP": runtime.host_ip,
        "status.hostIPs": ",".join(
            runtime.host_ips or ((runtime.host_ip,) if runtime.host_ip else ())
        ),
        "status.podIP": runtime.pod_ip,
        "status.podIPs": ",".join(runtime.pod_ips or ((runtime.pod_ip,) if runtime.pod_ip else ())),
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".")[1]) or {})
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldPath: {path}")


_NODE_DEFAULTED = {"limits.cpu": "cpu", "limits.memory": "memory"}
_NODE_DEFAULTED["limits.ephemeral-storage"] = "ephemeral-storage"


def resource_value(
    selector: Obj, container: Obj, node_allocatable: Mapping[str, Any] | None = None
) -> str:
    """The value of a ``resourceFieldRef`` for ``container``: ceil(value / divisor), with unset
    limits read from the node's allocatable as the kubelet does."""
    resource = str(selector.get("resource", ""))
    kind, _, name = resource.partition(".")
    standard = kind in ("limits", "requests") and name in ("cpu", "memory", "ephemeral-storage")
    if not standard and not (kind == "requests" and name.startswith("hugepages-")):
        raise ConfigError(f"unsupported container resource : {resource}")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and resource in _NODE_DEFAULTED and node_allocatable:
        raw = node_allocatable.get(name)
    divisor = selector.get("divisor")
    if divisor in (None, "", "0", 0):
        divisor = "1"
    try:
        if name == "cpu":
            value, per = quantity.milli_value(raw or 0), quantity.milli_value(divisor)
        else:
            value, per = quantity.int_value(raw or 0), quantity.int_value(divisor)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return str(math.ceil(value / per)) if per else "0"


# --- service links -----------------------------------------------------------------------


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def _service_ip_set(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") not in (None, "", "None")


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def service_vars(service: Obj) -> list[tuple[str, str]]:
    """The variables one Service contributes (``FromServices`` in kubelet/envvars)."""
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    if not _service_ip_set(service) or not ports:
        return []
    prefix = _env_name(str((service.get("metadata") or {}).get("name", "")))
    ip = str(spec["clusterIP"])
    out = [(f"{prefix}_SERVICE_HOST", ip), (f"{prefix}_SERVICE_PORT", str(ports[0].get("port")))]
    out += [
        (f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}", str(p.get("port")))
        for p in ports
        if p.get("name")
    ]
    return out + _link_vars(prefix, ip, ports)


def _link_vars(prefix: str, ip: str, ports: list[Obj]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for index, port in enumerate(ports):
        proto = str(port.get("protocol") or "TCP")
        number = int(port.get("port", 0))
        url = f"{proto.lower()}://{_host_port(ip, number)}"
        if index == 0:
            out.append((f"{prefix}_PORT", url))
        base = f"{prefix}_PORT_{number}_{proto.upper()}"
        out += [
            (base, url),
            (f"{base}_PROTO", proto.lower()),
            (f"{base}_PORT", str(number)),
            (f"{base}_ADDR", ip),
        ]
    return out


def service_env(
    source: ObjectSource,
    namespace: str,
    *,
    enable_service_links: bool,
    master_services: Sequence[str] = ("kubernetes",),
) -> dict[str, str]:
    """Service variables for a pod in ``namespace``: the master services of ``default``
    always, the namespace's own services when service links are enabled (they win)."""
    chosen: dict[str, Obj] = {}
    for svc in source.list_services("default"):
        name = (svc.get("metadata") or {}).get("name", "")
        if name in master_services and _service_ip_set(svc):
            chosen[name] = svc
    if enable_service_links:
        for svc in source.list_services(namespace):
            if _service_ip_set(svc):
                chosen[(svc.get("metadata") or {}).get("name", "")] = svc
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(service_vars(chosen[name]))
    return env


# --- the container's environment ---------------------------------------------------------


def _env_from(
    container: Obj, objects: _Objects, env: dict[str, str], *, relaxed: bool
) -> list[str]:
    warnings: list[str] = []
    for entry in container.get("envFrom") or []:
        prefix = str(entry.get("prefix") or "")
        for key, kind, word in (
            ("configMapRef", "ConfigMap", "configMap"),
            ("secretRef", "Secret", "secret"),
        ):
            ref = entry.get(key)
            if ref is None:
                continue
            name = str(ref.get("name", ""))
            data = objects.data(kind, name, optional=bool(ref.get("optional")))
            invalid = _merge_prefixed(env, data or {}, prefix, relaxed=relaxed)
            if invalid:
                warnings.append(
                    f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {word} "
                    f"{objects.namespace}/{name} were skipped since they are considered "
                    "invalid environment variable names."
                )
    return warnings


def _merge_prefixed(
    env: dict[str, str], data: Mapping[str, str], prefix: str, *, relaxed: bool
) -> list[str]:
    invalid = []
    for key, value in data.items():
        name = prefix + key
        if valid_name(name, relaxed=relaxed):
            env[name] = value
        else:
            invalid.append(name)
    return invalid


def _key_ref(objects: _Objects, ref: Obj, kind: str) -> str | None:
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    optional = bool(ref.get("optional"))
    data = objects.data(kind, name, optional=optional)
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {objects.namespace}/{name}")
    return data[key]


def _value_from(
    value_from: Obj,
    *,
    pod: Obj,
    container: Obj,
    objects: _Objects,
    runtime: PodRuntimeFields,
    node_allocatable: Mapping[str, Any] | None,
) -> str | None:
    if "configMapKeyRef" in value_from:
        return _key_ref(objects, value_from["configMapKeyRef"], "ConfigMap")
    if "secretKeyRef" in value_from:
        return _key_ref(objects, value_from["secretKeyRef"], "Secret")
    if "fieldRef" in value_from:
        return field_value(pod, str(value_from["fieldRef"].get("fieldPath", "")), runtime)
    if "resourceFieldRef" in value_from:
        return resource_value(value_from["resourceFieldRef"], container, node_allocatable)
    return ""


def container_env(
    pod: Obj,
    container: Obj,
    *,
    source: ObjectSource,
    node_name: str,
    node_ip: str,
    pod_ip: str,
    pod_ips: Sequence[str],
    host_ip: str,
    service_account_name: str,
    master_services: Sequence[str] = ("kubernetes",),
    node_allocatable: Mapping[str, Any] | None = None,
    host_ips: Sequence[str] | None = None,
    relaxed_names: bool = True,
) -> EnvResult:
    """The container's environment, in order; see the module docstring."""
    pod = _with_node_fields(pod, node_name, service_account_name)
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    spec = pod.get("spec") or {}
    services = service_env(
        source,
        namespace,
        enable_service_links=spec.get("enableServiceLinks", True) is not False,
        master_services=master_services,
    )
    objects = _Objects(source, namespace)
    runtime = PodRuntimeFields(
        pod_ip=pod_ip,
        pod_ips=tuple(pod_ips),
        host_ip=host_ip or node_ip,
        host_ips=tuple(host_ips or ((host_ip or node_ip),)),
    )
    env: dict[str, str] = {}
    warnings = _env_from(container, objects, env, relaxed=relaxed_names)
    for entry in container.get("env") or []:
        name = str(entry.get("name", ""))
        if entry.get("valueFrom"):
            value = _value_from(
                entry["valueFrom"],
                pod=pod,
                container=container,
                objects=objects,
                runtime=runtime,
                node_allocatable=node_allocatable,
            )
            if value is None:
                continue  # optional source missing
        else:
            value = expand(str(entry.get("value") or ""), env, services)
        env[name] = value
    for name, value in services.items():
        env.setdefault(name, value)
    return EnvResult(list(env.items()), warnings)


def _with_node_fields(pod: Obj, node_name: str, service_account_name: str) -> Obj:
    spec = dict(pod.get("spec") or {})
    spec.setdefault("nodeName", node_name)
    if service_account_name:
        spec.setdefault("serviceAccountName", service_account_name)
    return {**pod, "spec": spec}
