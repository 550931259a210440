"""The kind registry: every resource kybern serves, as Kubernetes v1.32 serves it.

One ``ResourceInfo`` per (group, version, resource). The API server builds routing and
discovery from it, validation picks the schema and the name rule from it, the CLI resolves
``deploy`` / ``deployments.apps`` / ``po`` through it, and storage keys objects by
``storage_resource`` so that every version of one resource (autoscaling/v1 and v2 HPAs, core and
events.k8s.io Events) shares one location and one object.

Group order (``groups()``) follows the priorities kube-apiserver gives its built-in groups
(the aggregator's ``apiVersionPriorities``): core first, then apps, events.k8s.io,
authentication.k8s.io, authorization.k8s.io (create-only reviews, never stored), autoscaling,
batch, networking.k8s.io, policy, rbac.authorization.k8s.io, storage.k8s.io,
apiextensions.k8s.io, scheduling.k8s.io, coordination.k8s.io, discovery.k8s.io. Within a group
the versions are listed preferred first (autoscaling: v2, v1), as /apis does.

Not served (yet): the core ``bindings`` and ``componentstatuses`` resources (a pod is bound
through ``pods/binding``), ``pods/proxy`` and the alpha ``pods/resize``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
# Namespaces cannot be deleted as a collection in Kubernetes.
NAMESPACE_VERBS: tuple[str, ...] = tuple(v for v in ALL_VERBS if v != "deletecollection")

POD_SUBRESOURCES: tuple[str, ...] = (
    "status",
    "binding",
    "eviction",
    "log",
    "exec",
    "attach",
    "portforward",
    "ephemeralcontainers",
)


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One served resource in one group-version."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    schema: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    storage_resource: str = ""
    storage_version: str = ""
    virtual: bool = False  # create-only, never stored (access reviews): answered, not persisted

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def has_scale(self) -> bool:
        return "scale" in self.subresources

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: the form Kubernetes uses in messages and RBAC."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _r(
    api_version: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    schema_pkg: str = "",
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    storage: tuple[str, str] | None = None,
    virtual: bool = False,
) -> ResourceInfo:
    """Build one entry; the schema name is derived from the Go package of the group."""
    group, _, version = api_version.rpartition("/")
    pkg = schema_pkg or _schema_package(group)
    storage_resource, storage_version = storage or (
        f"{plural}.{group}" if group else plural,
        api_version,
    )
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        schema=f"{pkg}.{version}.{kind}",
        short_names=short,
        categories=categories,
        subresources=sub,
        verbs=verbs,
        storage_resource=storage_resource,
        storage_version=storage_version,
        virtual=virtual,
    )


def _schema_package(group: str) -> str:
    if group == "apiextensions.k8s.io":
        return "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"
    if not group:
        return "io.k8s.api.core"
    name = group.removesuffix(".k8s.io").removesuffix(".authorization")
    return f"io.k8s.api.{name}"


_ALL = ("all",)
_ST = ("status",)
_SCALE = ("status", "scale")
_HPA_STORAGE = ("horizontalpodautoscalers.autoscaling", "autoscaling/v2")
_EVENT_STORAGE = ("events", "v1")

_RESOURCES: tuple[ResourceInfo, ...] = (
    # core/v1, in the order /api/v1 lists them (alphabetical by plural)
    _r("v1", "ConfigMap", "configmaps", short=("cm",)),
    _r("v1", "Endpoints", "endpoints", short=("ep",)),
    _r("v1", "Event", "events", short=("ev",), storage=_EVENT_STORAGE),
    _r("v1", "LimitRange", "limitranges", short=("limits",)),
    _r(
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short=("ns",),
        sub=("status", "finalize"),
        verbs=NAMESPACE_VERBS,
    ),
    _r("v1", "Node", "nodes", namespaced=False, short=("no",), sub=("status", "proxy")),
    _r("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=_ST),
    _r("v1", "PersistentVolume", "persistentvolumes", namespaced=False, short=("pv",), sub=_ST),
    _r("v1", "Pod", "pods", short=("po",), categories=_ALL, sub=POD_SUBRESOURCES),
    _r("v1", "PodTemplate", "podtemplates"),
    _r(
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        short=("rc",),
        categories=_ALL,
        sub=_SCALE,
    ),
    _r("v1", "ResourceQuota", "resourcequotas", short=("quota",), sub=_ST),
    _r("v1", "Secret", "secrets"),
    _r("v1", "ServiceAccount", "serviceaccounts", short=("sa",), sub=("token",)),
    _r("v1", "Service", "services", short=("svc",), categories=_ALL, sub=("status", "proxy")),
    # apps/v1
    _r("apps/v1", "ControllerRevision", "controllerrevisions"),
    _r("apps/v1", "DaemonSet", "daemonsets", short=("ds",), categories=_ALL, sub=_ST),
    _r("apps/v1", "Deployment", "deployments", short=("deploy",), categories=_ALL, sub=_SCALE),
    _r("apps/v1", "ReplicaSet", "replicasets", short=("rs",), categories=_ALL, sub=_SCALE),
    _r("apps/v1", "StatefulSet", "statefulsets", short=("sts",), categories=_ALL, sub=_SCALE),
    # events.k8s.io/v1: the same objects as core/v1 events
    _r("events.k8s.io/v1", "Event", "events", short=("ev",), storage=_EVENT_STORAGE),
    # autoscaling: v2 is preferred and the storage version
    _r(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        categories=_ALL,
        sub=_ST,
        storage=_HPA_STORAGE,
    ),
    _r(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        categories=_ALL,
        sub=_ST,
        storage=_HPA_STORAGE,
    ),
    # batch/v1
    _r("batch/v1", "CronJob", "cronjobs", short=("cj",), categories=_ALL, sub=_ST),
    _r("batch/v1", "Job", "jobs", categories=_ALL, sub=_ST),
    # networking.k8s.io/v1
    _r("networking.k8s.io/v1", "IngressClass", "ingressclasses", namespaced=False),
    _r("networking.k8s.io/v1", "Ingress", "ingresses", short=("ing",), sub=_ST),
    _r("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    # policy/v1
    _r("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), sub=_ST),
    # rbac.authorization.k8s.io/v1
    _r(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
    ),
    _r("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
    _r("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io/v1", "Role", "roles"),
    # storage.k8s.io/v1
    _r("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False, short=("sc",)),
    # apiextensions.k8s.io/v1
    _r(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short=("crd", "crds"),
        categories=("api-extensions",),
        sub=_ST,
    ),
    # scheduling.k8s.io/v1
    _r("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", namespaced=False, short=("pc",)),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io/v1", "Lease", "leases"),
    # discovery.k8s.io/v1
    _r("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
)

# Create-only resources that are answered and never stored: access reviews (``kubectl auth
# can-i``) and ``kubectl auth whoami``. Not in all_resources(), which lists stored kinds.
_CREATE: tuple[str, ...] = ("create",)
_VIRTUAL: tuple[ResourceInfo, ...] = (
    _r(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        namespaced=False,
        verbs=_CREATE,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        verbs=_CREATE,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=_CREATE,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        namespaced=False,
        verbs=_CREATE,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        namespaced=False,
        verbs=_CREATE,
        virtual=True,
    ),
)
_SERVED: tuple[ResourceInfo, ...] = _RESOURCES + _VIRTUAL

# Kubernetes' group priority order (see module docstring); the core group "" comes first.
GROUP_ORDER: tuple[str, ...] = (
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
)

# Preferred version first.
_GROUP_VERSIONS: dict[str, tuple[str, ...]] = {"autoscaling": ("v2", "v1")}


def all_resources() -> tuple[ResourceInfo, ...]:
    """Every stored (group, version, resource), grouped in discovery order."""
    return _RESOURCES


def served_resources() -> tuple[ResourceInfo, ...]:
    """Every served resource: the stored ones and the virtual (create-only) ones."""
    return _SERVED


def groups() -> list[tuple[str, tuple[str, ...], str]]:
    """``(group, versions preferred-first, preferred_version)`` in discovery order."""
    out = []
    for group in GROUP_ORDER:
        versions = _GROUP_VERSIONS.get(group, ("v1",))
        out.append((group, versions, versions[0]))
    return out


def preferred_version(group: str) -> str | None:
    versions = _GROUP_VERSIONS.get(group, ("v1",)) if group in GROUP_ORDER else None
    return versions[0] if versions else None


def resources_for(group: str, version: str) -> tuple[ResourceInfo, ...]:
    """The resources one group-version serves (for /api/v1, /apis/apps/v1 ...)."""
    return _by_group_version().get((group, version), ())


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    return _by_gvr().get((group, version, plural))


def for_kind(api_version: str, kind: str) -> ResourceInfo | None:
    return _by_gvk().get((api_version, kind))


def by_short_name(name: str) -> ResourceInfo | None:
    """The preferred-version resource with this short name (``po``, ``deploy``, ``hpa``)."""
    return _preferred_by_alias().get(name.lower())


def resolve(text: str) -> ResourceInfo | None:
    """Resolve what a user types: ``po``, ``pods``, ``pod``, ``Pod``, ``deployments.apps``,
    ``deployments.v1.apps``, ``hpa.autoscaling``. The core group wins ambiguities (``events``),
    as kubectl's RESTMapper does; the group's preferred version is chosen unless given."""
    name, _, rest = text.partition(".")
    if not rest:
        return by_short_name(name)
    version, _, group = rest.partition(".")
    if group and (group, version) in _by_group_version():
        return _match_alias(name, group, version)
    return _match_alias(name, rest, None)


def _match_alias(name: str, group: str, version: str | None) -> ResourceInfo | None:
    for info in _RESOURCES:
        if info.group != group or (version and info.version != version):
            continue
        named = name.lower() in _aliases(info) or name == info.kind
        if named and (version or info.version == preferred_version(group)):
            return info
    return None


def _aliases(info: ResourceInfo) -> tuple[str, ...]:
    return (info.plural, info.singular, *info.short_names)


@functools.cache
def _by_gvr() -> dict[tuple[str, str, str], ResourceInfo]:
    return {(r.group, r.version, r.plural): r for r in _SERVED}


@functools.cache
def _by_gvk() -> dict[tuple[str, str], ResourceInfo]:
    return {(r.api_version, r.kind): r for r in _SERVED}


@functools.cache
def _by_group_version() -> dict[tuple[str, str], tuple[ResourceInfo, ...]]:
    out: dict[tuple[str, str], list[ResourceInfo]] = {}
    for r in _SERVED:
        out.setdefault((r.group, r.version), []).append(r)
    return {k: tuple(v) for k, v in out.items()}


@functools.cache
def _preferred_by_alias() -> dict[str, ResourceInfo]:
    out: dict[str, ResourceInfo] = {}
    for group in reversed(GROUP_ORDER):  # earlier groups overwrite: core wins
        for r in _RESOURCES:
            if r.group == group and r.version == preferred_version(group):
                for alias in (*_aliases(r), r.kind.lower()):
                    out[alias] = r
    return out
