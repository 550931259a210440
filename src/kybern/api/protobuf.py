"""Protobuf request bodies: what kubectl's ``create`` generators and ``auth can-i`` send.

kubectl v1.32 sends ``Content-Type: application/vnd.kubernetes.protobuf`` bodies for
``create deployment|namespace|configmap|secret|service|job|cronjob|role|rolebinding|quota|
priorityclass|...`` and for access reviews, and never falls back to JSON. A body is the magic
``k8s\\x00`` followed by a ``runtime.Unknown`` message: typeMeta (1: apiVersion 1, kind 2),
raw (2: the object's own protobuf encoding), contentEncoding (3), contentType (4).

This module turns such a body into the same JSON-shaped dict the JSON path produces, so the
rest of the server never knows the difference. Two parts:

- a small protobuf wire-format reader (varint, length-delimited, fixed32/64);
- ``_TABLE``: the field numbers of every message reachable from the kinds above, written
  from Kubernetes' published ``generated.proto`` files. Field numbers never change in
  Kubernetes, so the table only grows. The *types* of fields are not repeated here: they come
  from the kind schemas (``kybern.api.schema``), which know arrays, maps, byte fields and
  references to other messages.

Zero values need care. Kubernetes' gogo-protobuf encoder writes every non-pointer field, even
``""``, ``0`` and ``false``, while its JSON encoder omits them (``omitempty``). A zero value is
therefore kept only where JSON would keep it: for pointer fields (marked ``?`` in the table:
``replicas=1?`` — an explicit ``--replicas=0`` must survive) and for required fields (no
``omitempty``, e.g. PriorityClass ``value``). Empty messages stay ``{}`` as in JSON.

Unknown field numbers are skipped and reported (``Decoded.unknown``) so that field validation
can treat them like unknown JSON fields. Pure: no I/O beyond the schema data.
"""

from __future__ import annotations

import base64
import datetime
import functools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from kybern.api import schema

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_TIME = frozenset(
    {"io.k8s.apimachinery.pkg.apis.meta.v1.Time", "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"}
)
_RAW_JSON = frozenset(
    {
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
    }
)
_MAX_DEPTH = 64


class DecodeError(ValueError):
    """The body is not a valid Kubernetes protobuf encoding of a known kind."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # the JSON name, or "" for an inlined (embedded) message
    pointer: bool = False  # a Go pointer: an explicit zero value is kept
    inline: str = ""  # the table of an inlined message (its fields land in the parent)


@dataclass
class Decoded:
    obj: dict[str, Any]
    unknown: list[str] = field(default_factory=list)  # paths of skipped field numbers


# -- wire format ------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of one message, in order."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _BYTES:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise DecodeError("truncated length-delimited field")
            value, pos = buf[pos : pos + length], pos + length
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > len(buf):
                raise DecodeError("truncated fixed-width field")
            value, pos = int.from_bytes(buf[pos : pos + size], "little"), pos + size
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    """int32/int64 are two's complement in 64 bits on the wire."""
    return value - (1 << 64) if value >= 1 << 63 else value


# -- the envelope -----------------------------------------------------------------------------


def decode(body: bytes) -> Decoded:
    """A ``k8s\\x00`` + runtime.Unknown body as a JSON-shaped object."""
    if not body.startswith(MAGIC):
        raise DecodeError("the body does not start with the Kubernetes protobuf magic k8s\\x00")
    api_version = kind = content_encoding = ""
    raw = b""
    for number, _, value in fields(body[len(MAGIC) :]):
        if number == 1 and isinstance(value, bytes):
            for sub, _, text in fields(value):
                if sub in (1, 2) and isinstance(text, bytes):
                    if sub == 1:
                        api_version = _text(text)
                    else:
                        kind = _text(text)
        elif number == 2 and isinstance(value, bytes):
            raw = value
        elif number == 3 and isinstance(value, bytes):
            content_encoding = _text(value)
    if content_encoding:
        raise DecodeError(f"unsupported protobuf content encoding {content_encoding!r}")
    def_name = _definition_for(api_version, kind)
    result = Decoded({})
    obj = {"apiVersion": api_version, "kind": kind}
    obj.update(_message(def_name, def_name, raw, result.unknown, "", 0))
    result.obj = obj
    return result


def _definition_for(api_version: str, kind: str) -> str:
    if not kind:
        raise DecodeError("the protobuf body has no kind")
    group, _, version = api_version.rpartition("/")
    found = schema.for_gvk(group, version, kind)
    if found is None and kind == "DeleteOptions":
        found = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
    if found is None or found not in _tables():
        raise DecodeError(f"no protobuf decoding for {api_version}, Kind={kind}")
    return found


# -- messages ---------------------------------------------------------------------------------


def _message(
    def_name: str, table_name: str, buf: bytes, unknown: list[str], path: str, depth: int
) -> dict[str, Any]:
    """Decode ``buf`` with the field table ``table_name`` (normally the definition's own; an
    inlined message uses its own table but the parent's schema)."""
    if depth > _MAX_DEPTH:
        raise DecodeError("protobuf message nested too deeply")
    table = _tables().get(table_name, {})
    props = schema.properties(schema.definition(def_name))
    required = set(schema.required(schema.definition(def_name)))
    out: dict[str, Any] = {}
    for number, wire, value in fields(buf):
        spec = table.get(number)
        if spec is None:
            unknown.append(f"{path}[{number}]" if path else f"[{number}]")
            continue
        if spec.inline:
            if not isinstance(value, bytes):
                raise DecodeError(f"{path}: embedded message with wire type {wire}")
            out.update(_message(def_name, spec.inline, value, unknown, path, depth + 1))
            continue
        fragment = props.get(spec.name)
        child = f"{path}.{spec.name}" if path else spec.name
        if fragment is None:
            unknown.append(child)
            continue
        _assign(out, spec, fragment, wire, value, unknown, child, depth, spec.name in required)
    return out


def _assign(
    out: dict[str, Any],
    spec: Field,
    fragment: schema.Schema,
    wire: int,
    value: int | bytes,
    unknown: list[str],
    path: str,
    depth: int,
    required: bool,
) -> None:
    resolved = schema.resolve(fragment)
    kinds = schema.types(resolved)
    if "array" in kinds and schema.ref_name(fragment) is None:
        items = out.setdefault(spec.name, [])
        item = resolved.get("items", {})
        items.extend(_repeated(item, wire, value, unknown, path, depth))
        return
    is_map = isinstance(resolved.get("additionalProperties"), dict)
    if "object" in kinds and is_map and schema.ref_name(fragment) is None:
        key, entry = _map_entry(resolved["additionalProperties"], value, unknown, path, depth)
        out.setdefault(spec.name, {})[key] = entry
        return
    decoded = _value(fragment, wire, value, unknown, path, depth)
    if decoded is None or (_is_zero(decoded) and not (spec.pointer or required)):
        out.pop(spec.name, None)
        return
    out[spec.name] = decoded


def _is_zero(value: Any) -> bool:
    return value in ("", 0) and not isinstance(value, dict)


def _repeated(
    item: schema.Schema, wire: int, value: int | bytes, unknown: list[str], path: str, depth: int
) -> list[Any]:
    resolved = schema.resolve(item)
    scalar = schema.ref_name(item) is None and schema.types(resolved) & {
        "integer",
        "boolean",
        "number",
    }
    if scalar and wire == _BYTES and isinstance(value, bytes):  # packed
        return [_packed_scalar(resolved, v) for v in _packed(value, resolved)]
    return [_value(item, wire, value, unknown, path, depth)]


def _packed(buf: bytes, fragment: schema.Schema) -> Iterator[int]:
    pos = 0
    fmt = fragment.get("format")
    while pos < len(buf):
        if schema.types(fragment) == {"number"}:
            size = 4 if fmt == "float" else 8
            yield int.from_bytes(buf[pos : pos + size], "little")
            pos += size
        else:
            number, pos = _varint(buf, pos)
            yield number


def _packed_scalar(fragment: schema.Schema, raw: int) -> Any:
    wire = _FIXED32 if fragment.get("format") == "float" else _FIXED64
    return _scalar(fragment, wire if schema.types(fragment) == {"number"} else _VARINT, raw)


def _map_entry(
    value_schema: schema.Schema, buf: int | bytes, unknown: list[str], path: str, depth: int
) -> tuple[str, Any]:
    if not isinstance(buf, bytes):
        raise DecodeError(f"{path}: map entry is not length-delimited")
    key, entry = "", None
    for number, wire, value in fields(buf):
        if number == 1 and isinstance(value, bytes):
            key = _text(value)
        elif number == 2:
            entry = _map_value(value_schema, wire, value, unknown, f"{path}[{key}]", depth)
    if entry is None:
        entry = _empty(value_schema)
    return key, entry


def _map_value(
    value_schema: schema.Schema,
    wire: int,
    value: int | bytes,
    unknown: list[str],
    path: str,
    depth: int,
) -> Any:
    resolved = schema.resolve(value_schema)
    if "array" in schema.types(resolved) and isinstance(value, bytes):
        # map<string, ExtraValue>: ExtraValue is a message whose field 1 holds the items.
        item = resolved.get("items", {})
        return [_value(item, w, v, unknown, path, depth) for n, w, v in fields(value) if n == 1]
    return _value(value_schema, wire, value, unknown, path, depth)


def _empty(value_schema: schema.Schema) -> Any:
    """The value of a map entry whose value field was left out (the zero value)."""
    resolved = schema.resolve(value_schema)
    if schema.ref_name(value_schema) in _TIME:
        return None
    kinds = schema.types(resolved)
    if "string" in kinds:
        return "" if schema.ref_name(value_schema) != schema.QUANTITY else "0"
    if "integer" in kinds:
        return 0
    if "boolean" in kinds:
        return False
    if "array" in kinds:
        return []
    return {}


def _value(
    fragment: schema.Schema,
    wire: int,
    value: int | bytes,
    unknown: list[str],
    path: str,
    depth: int,
) -> Any:
    ref = schema.ref_name(fragment)
    if ref is not None:
        return _referenced(ref, wire, value, unknown, path, depth)
    return _scalar(schema.resolve(fragment), wire, value)


def _referenced(
    ref: str, wire: int, value: int | bytes, unknown: list[str], path: str, depth: int
) -> Any:
    if not isinstance(value, bytes):
        raise DecodeError(f"{path}: expected an embedded message, got wire type {wire}")
    if ref == schema.QUANTITY:
        return next((_text(v) for n, _, v in fields(value) if n == 1 and isinstance(v, bytes)), "")
    if ref in _TIME:
        return _time(value, micro=ref.endswith("MicroTime"))
    if ref == schema.INT_OR_STRING:
        return _int_or_string(value)
    if ref in _RAW_JSON:
        raw = next((v for n, _, v in fields(value) if n == 1 and isinstance(v, bytes)), b"")
        return _json(raw, path)
    return _message(ref, ref, value, unknown, path, depth + 1)


def _scalar(fragment: schema.Schema, wire: int, value: int | bytes) -> Any:
    kinds = schema.types(fragment)
    if isinstance(value, bytes):
        if "string" in kinds and fragment.get("format") == "byte":
            return base64.b64encode(value).decode("ascii")
        if "string" in kinds or not kinds:
            return _text(value)
        raise DecodeError(f"a length-delimited value where {sorted(kinds)} was expected")
    if "boolean" in kinds:
        return value != 0
    if "integer" in kinds:
        return _signed(value)
    if "number" in kinds:
        if wire == _FIXED64:
            return float(struct.unpack("<d", value.to_bytes(8, "little"))[0])
        if wire == _FIXED32:
            return float(struct.unpack("<f", value.to_bytes(4, "little"))[0])
        return _signed(value)
    raise DecodeError(f"a numeric value where {sorted(kinds)} was expected")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("a string field is not valid UTF-8") from None


def _time(buf: bytes, *, micro: bool) -> str | None:
    seconds = nanos = 0
    for number, _, value in fields(buf):
        if isinstance(value, int):
            if number == 1:
                seconds = _signed(value)
            elif number == 2:
                nanos = _signed(value)
    if seconds == 0 and nanos == 0:
        return None  # Go's zero time, which JSON writes as null
    try:
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        raise DecodeError(f"time out of range: {seconds}") from None
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos // 1000:06d}Z" if micro else f"{text}Z"


def _int_or_string(buf: bytes) -> int | str:
    kind, number, text = 0, 0, ""
    for n, _, value in fields(buf):
        if n == 1 and isinstance(value, int):
            kind = value
        elif n == 2 and isinstance(value, int):
            number = _signed(value)
        elif n == 3 and isinstance(value, bytes):
            text = _text(value)
    return text if kind == 1 else number


def _json(raw: bytes, path: str) -> Any:
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise DecodeError(f"{path}: embedded JSON is not valid") from None


# -- the field table --------------------------------------------------------------------------

_ENTRY = re.compile(r"^(?P<name>\w+)=(?P<number>\d+)(?P<pointer>\??)$")
_INLINE = re.compile(r"^~(?P<number>\d+)=(?P<message>\w+)$")


@functools.cache
def _tables() -> dict[str, dict[int, Field]]:
    """``_TABLE`` parsed: full message name -> field number -> Field."""
    tables: dict[str, dict[int, Field]] = {}
    package = ""
    for message, body in _table_lines():
        if message.startswith("@"):
            package = message[1:]
            continue
        entries = list(_parse_fields(body, package))
        if len({number for number, _ in entries}) != len(entries):
            raise ValueError(f"duplicate field number in protobuf table {message}")
        tables[f"{package}.{message}"] = dict(entries)
    core = "io.k8s.api.core.v1"
    # EphemeralContainer inlines EphemeralContainerCommon: the same fields as Container.
    tables[f"{core}.EphemeralContainerCommon"] = tables[f"{core}.Container"]
    return tables


def _table_lines() -> Iterator[tuple[str, str]]:
    message, body = "", ""
    for line in _TABLE.splitlines():
        if not line.strip():
            continue
        if line.startswith(" "):
            body += " " + line.strip()
            continue
        if message:
            yield message, body
        head, _, body = line.partition(":")
        message = head.strip()
    if message:
        yield message, body


def _parse_fields(body: str, package: str) -> Iterator[tuple[int, Field]]:
    for token in body.split():
        inline = _INLINE.match(token)  # ~2=VolumeSource: field 2 is an inlined VolumeSource
        if inline is not None:
            yield int(inline["number"]), Field("", inline=f"{package}.{inline['message']}")
            continue
        match = _ENTRY.match(token)
        if match is None:
            raise ValueError(f"bad protobuf table entry {token!r}")
        yield int(match["number"]), Field(match["name"], pointer=bool(match["pointer"]))


def messages() -> frozenset[str]:
    """Every message the table covers (for tests and coverage checks)."""
    return frozenset(_tables())


def table(message: str) -> dict[int, Field]:
    return dict(_tables()[message])


_TABLE = """
@io.k8s.api.core.v1
AWSElasticBlockStoreVolumeSource: volumeID=1 fsType=2 partition=3 readOnly=4
Affinity: nodeAffinity=1 podAffinity=2 podAntiAffinity=3
AppArmorProfile: type=1 localhostProfile=2?
AzureDiskVolumeSource: diskName=1 diskURI=2 cachingMode=3? fsType=4? readOnly=5? kind=6?
AzureFileVolumeSource: secretName=1 shareName=2 readOnly=3
CSIVolumeSource: driver=1 readOnly=2? fsType=3? volumeAttributes=4 nodePublishSecretRef=5
Capabilities: add=1 drop=2
CephFSVolumeSource: monitors=1 path=2 user=3 secretFile=4 secretRef=5 readOnly=6
CinderVolumeSource: volumeID=1 fsType=2 readOnly=3 secretRef=4
ClientIPConfig: timeoutSeconds=1?
ClusterTrustBundleProjection: name=1? signerName=2? labelSelector=3 optional=5? path=4
ConfigMap: metadata=1 immutable=4? data=2 binaryData=3
ConfigMapEnvSource: ~1=LocalObjectReference optional=2?
ConfigMapKeySelector: ~1=LocalObjectReference key=2 optional=3?
ConfigMapProjection: ~1=LocalObjectReference items=2 optional=4?
ConfigMapVolumeSource: ~1=LocalObjectReference items=2 defaultMode=3? optional=4?
Container: name=1 image=2 command=3 args=4 workingDir=5 ports=6 envFrom=19 env=7 resources=8
    resizePolicy=23 restartPolicy=24? volumeMounts=9 volumeDevices=21 livenessProbe=10
    readinessProbe=11 startupProbe=22 lifecycle=12 terminationMessagePath=13
    terminationMessagePolicy=20 imagePullPolicy=14 securityContext=15 stdin=16 stdinOnce=17
    tty=18
ContainerPort: name=1 hostPort=2 containerPort=3 protocol=4 hostIP=5
ContainerResizePolicy: resourceName=1 restartPolicy=2
ContainerState: waiting=1 running=2 terminated=3
ContainerStateRunning: startedAt=1
ContainerStateTerminated: exitCode=1 signal=2 reason=3 message=4 startedAt=5 finishedAt=6
    containerID=7
ContainerStateWaiting: reason=1 message=2
ContainerStatus: name=1 state=2 lastState=3 ready=4 restartCount=5 image=6 imageID=7
    containerID=8 started=9? allocatedResources=10 resources=11 volumeMounts=12 user=13
    allocatedResourcesStatus=14
ContainerUser: linux=1
DownwardAPIProjection: items=1
DownwardAPIVolumeFile: path=1 fieldRef=2 resourceFieldRef=3 mode=4?
DownwardAPIVolumeSource: items=1 defaultMode=2?
EmptyDirVolumeSource: medium=1 sizeLimit=2
EnvFromSource: prefix=1 configMapRef=2 secretRef=3
EnvVar: name=1 value=2 valueFrom=3
EnvVarSource: fieldRef=1 resourceFieldRef=2 configMapKeyRef=3 secretKeyRef=4
EphemeralContainer: ~1=EphemeralContainerCommon targetContainerName=2
EphemeralVolumeSource: volumeClaimTemplate=1
ExecAction: command=1
FCVolumeSource: targetWWNs=1 lun=2 fsType=3 readOnly=4 wwids=5
FlexVolumeSource: driver=1 fsType=2 secretRef=3 readOnly=4 options=5
FlockerVolumeSource: datasetName=1 datasetUUID=2
GCEPersistentDiskVolumeSource: pdName=1 fsType=2 partition=3 readOnly=4
GRPCAction: port=1 service=2?
GitRepoVolumeSource: repository=1 revision=2 directory=3
GlusterfsVolumeSource: endpoints=1 path=2 readOnly=3
HTTPGetAction: path=1 port=2 host=3 scheme=4 httpHeaders=5
HTTPHeader: name=1 value=2
HostAlias: ip=1 hostnames=2
HostIP: ip=1
HostPathVolumeSource: path=1 type=2?
ISCSIVolumeSource: targetPortal=1 iqn=2 lun=3 iscsiInterface=4 fsType=5 readOnly=6 portals=7
    chapAuthDiscovery=8 chapAuthSession=11 secretRef=10 initiatorName=12?
ImageVolumeSource: reference=1 pullPolicy=2
KeyToPath: key=1 path=2 mode=3?
Lifecycle: postStart=1 preStop=2
LifecycleHandler: exec=1 httpGet=2 tcpSocket=3 sleep=4
LimitRange: metadata=1 spec=2
LimitRangeItem: type=1 max=2 min=3 default=4 defaultRequest=5 maxLimitRequestRatio=6
LimitRangeSpec: limits=1
LinuxContainerUser: uid=1 gid=2 supplementalGroups=3
LoadBalancerIngress: ip=1 hostname=2 ipMode=3? ports=4
LoadBalancerStatus: ingress=1
LocalObjectReference: name=1
NFSVolumeSource: server=1 path=2 readOnly=3
Namespace: metadata=1 spec=2 status=3
NamespaceCondition: type=1 status=2 lastTransitionTime=4 reason=5 message=6
NamespaceSpec: finalizers=1
NamespaceStatus: phase=1 conditions=2
NodeAffinity: requiredDuringSchedulingIgnoredDuringExecution=1
    preferredDuringSchedulingIgnoredDuringExecution=2
NodeSelector: nodeSelectorTerms=1
NodeSelectorRequirement: key=1 operator=2 values=3
NodeSelectorTerm: matchExpressions=1 matchFields=2
ObjectFieldSelector: apiVersion=1 fieldPath=2
ObjectReference: kind=1 namespace=2 name=3 uid=4 apiVersion=5 resourceVersion=6 fieldPath=7
PersistentVolumeClaimSpec: accessModes=1 selector=4 resources=2 volumeName=3
    storageClassName=5? volumeMode=6? dataSource=7 dataSourceRef=8
    volumeAttributesClassName=9?
PersistentVolumeClaimTemplate: metadata=1 spec=2
PersistentVolumeClaimVolumeSource: claimName=1 readOnly=2
PhotonPersistentDiskVolumeSource: pdID=1 fsType=2
Pod: metadata=1 spec=2 status=3
PodAffinity: requiredDuringSchedulingIgnoredDuringExecution=1
    preferredDuringSchedulingIgnoredDuringExecution=2
PodAffinityTerm: labelSelector=1 namespaces=2 topologyKey=3 namespaceSelector=4
    matchLabelKeys=5 mismatchLabelKeys=6
PodAntiAffinity: requiredDuringSchedulingIgnoredDuringExecution=1
    preferredDuringSchedulingIgnoredDuringExecution=2
PodCondition: type=1 status=2 lastProbeTime=3 lastTransitionTime=4 reason=5 message=6
PodDNSConfig: nameservers=1 searches=2 options=3
PodDNSConfigOption: name=1 value=2
PodIP: ip=1
PodOS: name=1
PodReadinessGate: conditionType=1
PodResourceClaim: name=1 resourceClaimName=3? resourceClaimTemplateName=4?
PodResourceClaimStatus: name=1 resourceClaimName=2?
PodSchedulingGate: name=1
PodSecurityContext: seLinuxOptions=1 windowsOptions=8 runAsUser=2? runAsGroup=6?
    runAsNonRoot=3? supplementalGroups=4 supplementalGroupsPolicy=12? fsGroup=5? sysctls=7
    fsGroupChangePolicy=9? seccompProfile=10 appArmorProfile=11 seLinuxChangePolicy=13?
PodSpec: volumes=1 initContainers=20 containers=2 ephemeralContainers=34 restartPolicy=3
    terminationGracePeriodSeconds=4? activeDeadlineSeconds=5? dnsPolicy=6 nodeSelector=7
    serviceAccountName=8 serviceAccount=9 automountServiceAccountToken=21? nodeName=10
    hostNetwork=11 hostPID=12 hostIPC=13 shareProcessNamespace=27? securityContext=14
    imagePullSecrets=15 hostname=16 subdomain=17 affinity=18 schedulerName=19 tolerations=22
    hostAliases=23 priorityClassName=24 priority=25? dnsConfig=26 readinessGates=28
    runtimeClassName=29? enableServiceLinks=30? preemptionPolicy=31? overhead=32
    topologySpreadConstraints=33 setHostnameAsFQDN=35? os=36 hostUsers=37?
    schedulingGates=38 resourceClaims=39 resources=40
PodStatus: phase=1 conditions=2 message=3 reason=4 nominatedNodeName=11 hostIP=5 hostIPs=16
    podIP=6 podIPs=12 startTime=7 initContainerStatuses=10 containerStatuses=8 qosClass=9
    ephemeralContainerStatuses=13 resize=14 resourceClaimStatuses=15
PodTemplate: metadata=1 template=2
PodTemplateSpec: metadata=1 spec=2
PortStatus: port=1 protocol=2 error=3?
PortworxVolumeSource: volumeID=1 fsType=2 readOnly=3
PreferredSchedulingTerm: weight=1 preference=2
Probe: ~1=ProbeHandler initialDelaySeconds=2 timeoutSeconds=3 periodSeconds=4
    successThreshold=5 failureThreshold=6 terminationGracePeriodSeconds=7?
ProbeHandler: exec=1 httpGet=2 tcpSocket=3 grpc=4
ProjectedVolumeSource: sources=1 defaultMode=2?
QuobyteVolumeSource: registry=1 volume=2 readOnly=3 user=4 group=5 tenant=6
RBDVolumeSource: monitors=1 image=2 fsType=3 pool=4 user=5 keyring=6 secretRef=7 readOnly=8
ReplicationController: metadata=1 spec=2 status=3
ReplicationControllerCondition: type=1 status=2 lastTransitionTime=3 reason=4 message=5
ReplicationControllerSpec: replicas=1? minReadySeconds=4 selector=2 template=3
ReplicationControllerStatus: replicas=1 fullyLabeledReplicas=2 readyReplicas=4
    availableReplicas=5 observedGeneration=3 conditions=6
ResourceClaim: name=1 request=2
ResourceFieldSelector: containerName=1 resource=2 divisor=3
ResourceHealth: resourceID=1 health=2
ResourceQuota: metadata=1 spec=2 status=3
ResourceQuotaSpec: hard=1 scopes=2 scopeSelector=3
ResourceQuotaStatus: hard=1 used=2
ResourceRequirements: limits=1 requests=2 claims=3
ResourceStatus: name=1 resources=2
SELinuxOptions: user=1 role=2 type=3 level=4
ScaleIOVolumeSource: gateway=1 system=2 secretRef=3 sslEnabled=4 protectionDomain=5
    storagePool=6 storageMode=7 volumeName=8 fsType=9 readOnly=10
ScopeSelector: matchExpressions=1
ScopedResourceSelectorRequirement: scopeName=1 operator=2 values=3
SeccompProfile: type=1 localhostProfile=2?
Secret: metadata=1 immutable=5? data=2 stringData=4 type=3
SecretEnvSource: ~1=LocalObjectReference optional=2?
SecretKeySelector: ~1=LocalObjectReference key=2 optional=3?
SecretProjection: ~1=LocalObjectReference items=2 optional=4?
SecretReference: name=1 namespace=2
SecretVolumeSource: secretName=1 items=2 defaultMode=3? optional=4?
SecurityContext: capabilities=1 privileged=2? seLinuxOptions=3 windowsOptions=10
    runAsUser=4? runAsGroup=8? runAsNonRoot=5? readOnlyRootFilesystem=6?
    allowPrivilegeEscalation=7? procMount=9? seccompProfile=11 appArmorProfile=12
Service: metadata=1 spec=2 status=3
ServiceAccount: metadata=1 secrets=2 imagePullSecrets=3 automountServiceAccountToken=4
ServiceAccountTokenProjection: audience=1 expirationSeconds=2? path=3
ServicePort: name=1 protocol=2 appProtocol=6? port=3 targetPort=4 nodePort=5
ServiceSpec: ports=1 selector=2 clusterIP=3 clusterIPs=18 type=4 externalIPs=5
    sessionAffinity=7 loadBalancerIP=8 loadBalancerSourceRanges=9 externalName=10
    externalTrafficPolicy=11 healthCheckNodePort=12 publishNotReadyAddresses=13
    sessionAffinityConfig=14 ipFamilies=19 ipFamilyPolicy=17?
    allocateLoadBalancerNodePorts=20? loadBalancerClass=21? internalTrafficPolicy=22?
    trafficDistribution=23?
ServiceStatus: loadBalancer=1 conditions=2
SessionAffinityConfig: clientIP=1
SleepAction: seconds=1
StorageOSVolumeSource: volumeName=1 volumeNamespace=2 fsType=3 readOnly=4 secretRef=5
Sysctl: name=1 value=2
TCPSocketAction: port=1 host=2
Toleration: key=1 operator=2 value=3 effect=4 tolerationSeconds=5?
TopologySpreadConstraint: maxSkew=1 topologyKey=2 whenUnsatisfiable=3 labelSelector=4
    minDomains=5? nodeAffinityPolicy=6? nodeTaintsPolicy=7? matchLabelKeys=8
TypedLocalObjectReference: apiGroup=1? kind=2 name=3
TypedObjectReference: apiGroup=1? kind=2 name=3 namespace=4?
Volume: name=1 ~2=VolumeSource
VolumeDevice: name=1 devicePath=2
VolumeMount: name=1 readOnly=2 recursiveReadOnly=7? mountPath=3 subPath=4
    mountPropagation=5? subPathExpr=6
VolumeMountStatus: name=1 mountPath=2 readOnly=3 recursiveReadOnly=4?
VolumeProjection: secret=1 downwardAPI=2 configMap=3 serviceAccountToken=4
    clusterTrustBundle=5
VolumeResourceRequirements: limits=1 requests=2
VolumeSource: hostPath=1 emptyDir=2 gcePersistentDisk=3 awsElasticBlockStore=4 gitRepo=5
    secret=6 nfs=7 iscsi=8 glusterfs=9 persistentVolumeClaim=10 rbd=11 flexVolume=12
    cinder=13 cephfs=14 flocker=15 downwardAPI=16 fc=17 azureFile=18 configMap=19
    vsphereVolume=20 quobyte=21 azureDisk=22 photonPersistentDisk=23 projected=26
    portworxVolume=24 scaleIO=25 storageos=27 csi=28 ephemeral=29 image=30
VsphereVirtualDiskVolumeSource: volumePath=1 fsType=2 storagePolicyName=3 storagePolicyID=4
WeightedPodAffinityTerm: weight=1 podAffinityTerm=2
WindowsSecurityContextOptions: gmsaCredentialSpecName=1? gmsaCredentialSpec=2?
    runAsUserName=3? hostProcess=4?
@io.k8s.api.apps.v1
Deployment: metadata=1 spec=2 status=3
DeploymentCondition: type=1 status=2 lastUpdateTime=6 lastTransitionTime=7 reason=4 message=5
DeploymentSpec: replicas=1? selector=2 template=3 strategy=4 minReadySeconds=5
    revisionHistoryLimit=6? paused=7 progressDeadlineSeconds=9?
DeploymentStatus: observedGeneration=1 replicas=2 updatedReplicas=3 readyReplicas=7
    availableReplicas=4 unavailableReplicas=5 conditions=6 collisionCount=8?
DeploymentStrategy: type=1 rollingUpdate=2
ReplicaSet: metadata=1 spec=2 status=3
ReplicaSetCondition: type=1 status=2 lastTransitionTime=3 reason=4 message=5
ReplicaSetSpec: replicas=1? minReadySeconds=4 selector=2 template=3
ReplicaSetStatus: replicas=1 fullyLabeledReplicas=2 readyReplicas=4 availableReplicas=5
    observedGeneration=3 conditions=6
RollingUpdateDeployment: maxUnavailable=1 maxSurge=2
@io.k8s.api.batch.v1
CronJob: metadata=1 spec=2 status=3
CronJobSpec: schedule=1 timeZone=8? startingDeadlineSeconds=2? concurrencyPolicy=3
    suspend=4? jobTemplate=5 successfulJobsHistoryLimit=6? failedJobsHistoryLimit=7?
CronJobStatus: active=1 lastScheduleTime=4 lastSuccessfulTime=5
Job: metadata=1 spec=2 status=3
JobCondition: type=1 status=2 lastProbeTime=3 lastTransitionTime=4 reason=5 message=6
JobSpec: parallelism=1? completions=2? activeDeadlineSeconds=3? podFailurePolicy=11
    successPolicy=16 backoffLimit=7? backoffLimitPerIndex=12? maxFailedIndexes=13?
    selector=4 manualSelector=5? template=6 ttlSecondsAfterFinished=8? completionMode=9?
    suspend=10? podReplacementPolicy=14? managedBy=15?
JobStatus: conditions=1 startTime=2 completionTime=3 active=4 succeeded=5 failed=6
    completedIndexes=7 uncountedTerminatedPods=8 ready=9? failedIndexes=10? terminating=11?
JobTemplateSpec: metadata=1 spec=2
PodFailurePolicy: rules=1
PodFailurePolicyOnExitCodesRequirement: containerName=1? operator=2 values=3
PodFailurePolicyOnPodConditionsPattern: type=1 status=2
PodFailurePolicyRule: action=1 onExitCodes=2 onPodConditions=3
SuccessPolicy: rules=1
SuccessPolicyRule: succeededIndexes=1? succeededCount=2?
UncountedTerminatedPods: succeeded=1 failed=2
@io.k8s.api.rbac.v1
AggregationRule: clusterRoleSelectors=1
ClusterRole: metadata=1 rules=2 aggregationRule=3
ClusterRoleBinding: metadata=1 subjects=2 roleRef=3
PolicyRule: verbs=1 apiGroups=2 resources=3 resourceNames=4 nonResourceURLs=5
Role: metadata=1 rules=2
RoleBinding: metadata=1 subjects=2 roleRef=3
RoleRef: apiGroup=1 kind=2 name=3
Subject: kind=1 apiGroup=2 name=3 namespace=4
@io.k8s.api.scheduling.v1
PriorityClass: metadata=1 value=2 globalDefault=3 description=4 preemptionPolicy=5?
@io.k8s.api.authorization.v1
FieldSelectorAttributes: rawSelector=1 requirements=2
LabelSelectorAttributes: rawSelector=1 requirements=2
LocalSubjectAccessReview: metadata=1 spec=2 status=3
NonResourceAttributes: path=1 verb=2
NonResourceRule: verbs=1 nonResourceURLs=2
ResourceAttributes: namespace=1 verb=2 group=3 version=4 resource=5 subresource=6 name=7
    fieldSelector=8 labelSelector=9
ResourceRule: verbs=1 apiGroups=2 resources=3 resourceNames=4
SelfSubjectAccessReview: metadata=1 spec=2 status=3
SelfSubjectAccessReviewSpec: resourceAttributes=1 nonResourceAttributes=2
SelfSubjectRulesReview: metadata=1 spec=2 status=3
SelfSubjectRulesReviewSpec: namespace=1
SubjectAccessReview: metadata=1 spec=2 status=3
SubjectAccessReviewSpec: resourceAttributes=1 nonResourceAttributes=2 user=3 groups=4
    extra=5 uid=6
SubjectAccessReviewStatus: allowed=1 denied=4 reason=2 evaluationError=3
SubjectRulesReviewStatus: resourceRules=1 nonResourceRules=2 incomplete=3 evaluationError=4
@io.k8s.api.authentication.v1
BoundObjectReference: kind=1 apiVersion=2 name=3 uid=4
SelfSubjectReview: metadata=1 status=2
SelfSubjectReviewStatus: userInfo=1
TokenRequest: metadata=1 spec=2 status=3
TokenRequestSpec: audiences=1 expirationSeconds=4? boundObjectRef=3
TokenRequestStatus: token=1 expirationTimestamp=2
UserInfo: username=1 uid=2 groups=3 extra=4
@io.k8s.api.networking.v1
HTTPIngressPath: path=1 pathType=3? backend=2
HTTPIngressRuleValue: paths=1
Ingress: metadata=1 spec=2 status=3
IngressBackend: service=4 resource=3
IngressLoadBalancerIngress: ip=1 hostname=2 ports=4
IngressLoadBalancerStatus: ingress=1
IngressPortStatus: port=1 protocol=2 error=3?
IngressRule: host=1 ~2=IngressRuleValue
IngressRuleValue: http=1
IngressServiceBackend: name=1 port=2
IngressSpec: ingressClassName=4? defaultBackend=1 tls=2 rules=3
IngressStatus: loadBalancer=1
IngressTLS: hosts=1 secretName=2
ServiceBackendPort: name=1 number=2
@io.k8s.api.policy.v1
PodDisruptionBudget: metadata=1 spec=2 status=3
PodDisruptionBudgetSpec: minAvailable=1 selector=2 maxUnavailable=3
    unhealthyPodEvictionPolicy=4?
PodDisruptionBudgetStatus: observedGeneration=1 disruptedPods=2 disruptionsAllowed=3
    currentHealthy=4 desiredHealthy=5 expectedPods=6 conditions=7
@io.k8s.apimachinery.pkg.apis.meta.v1
Condition: type=1 status=2 observedGeneration=3 lastTransitionTime=4 reason=5 message=6
DeleteOptions: gracePeriodSeconds=1? preconditions=2 orphanDependents=3?
    propagationPolicy=4? dryRun=5 ignoreStoreReadErrorWithClusterBreakingPotential=6?
FieldSelectorRequirement: key=1 operator=2 values=3
LabelSelector: matchLabels=1 matchExpressions=2
LabelSelectorRequirement: key=1 operator=2 values=3
ManagedFieldsEntry: manager=1 operation=2 apiVersion=3 time=4 fieldsType=6 fieldsV1=7
    subresource=8
ObjectMeta: name=1 generateName=2 namespace=3 selfLink=4 uid=5 resourceVersion=6
    generation=7 creationTimestamp=8 deletionTimestamp=9 deletionGracePeriodSeconds=10?
    labels=11 annotations=12 ownerReferences=13 finalizers=14 managedFields=17
OwnerReference: apiVersion=5 kind=1 name=3 uid=4 controller=6? blockOwnerDeletion=7?
Preconditions: uid=1? resourceVersion=2?
"""
