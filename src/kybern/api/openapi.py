"""OpenAPI documents of the served API: Swagger 2.0 (``/openapi/v2``) and OpenAPI 3.0 per
group-version (``/openapi/v3/apis/apps/v1``), built from the kind registry (kybern.api.kinds)
and Kubernetes' v1.32 schemas (kybern.api.schema). Pure: plain dicts out, no I/O beyond the
schema file schema.py loads; kybern.apiserver.openapi serves, hashes and caches them.

What clients rely on, and therefore what the documents keep from Kubernetes:

- ``kubectl explain`` (v1.32, OpenAPI v3 by default) finds the kind through the
  ``x-kubernetes-group-version-kind`` of a resource path's operation, then the component schema
  whose ``x-kubernetes-group-version-kind`` list holds that GVK, and walks ``$ref``, ``items``
  and ``additionalProperties`` printing each field's ``description`` and ``type``. Types must be
  single strings (``"string"``, not ``["string", "null"]``), hence the conversion below.
- ``kubectl create/apply`` send ``fieldValidation=Strict`` only when the PATCH operation of the
  kind carries the GVK extension and a ``fieldValidation`` query parameter.
- operation ids follow Kubernetes' pattern (``readCoreV1NamespacedPod``,
  ``patchAppsV1NamespacedDeployment``, ``listAppsV1DeploymentForAllNamespaces``).

Nullable types become plain types, IntOrString becomes ``string`` with ``format:
int-or-string`` and Quantity ``string``, as Kubernetes publishes them; the single-value ``enum``
kubernetes-validate adds to ``apiVersion``/``kind`` is dropped (Kubernetes has none).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from kybern.api import kinds, schema

TITLE = "Kubernetes"
VERSION = "v1.32.0"
V2_REF = "#/definitions/"
V3_REF = "#/components/schemas/"
JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
PATCH = META + "Patch"
WATCH_EVENT = META + "WatchEvent"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
_SCALE_GVK = {"group": "autoscaling", "kind": "Scale", "version": "v1"}

# Descriptions Kubernetes publishes for the two types kubernetes-validate leaves bare.
_SPECIAL: dict[str, dict[str, Any]] = {
    schema.INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.",
        "format": "int-or-string",
        "type": "string",
    },
    schema.QUANTITY: {
        "description": 'Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= <signedNumber><suffix>\n\n\t(Note that <suffix> may be empty, from the "" case in <decimalSI>.)\n\n<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | <digit><digits> <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits> <sign>            ::= "+" | "-" <signedNumber>    ::= <number> | <sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n\t(International System of units; See: http://physics.nist.gov/cuu/Units/binary.html)\n\n<decimalSI>       ::= m | "" | k | M | G | T | P | E\n\n\t(Note that 1024 = 1Ki but 1000 = 1k; I didn\'t choose the capitalization.)\n\n<decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber> ```',
        "type": "string",
    },
}

_V3_ONE_OF = {
    schema.INT_OR_STRING: [{"type": "integer"}, {"type": "string"}],
    schema.QUANTITY: [{"type": "string"}, {"type": "number"}],
}

# -- schemas ---------------------------------------------------------------------------------


def convert(fragment: schema.Schema, ref_prefix: str) -> dict[str, Any]:
    """A kubernetes-validate fragment as an OpenAPI schema whose references start with
    ``ref_prefix``. In OpenAPI 3 a reference with siblings (a field's description) is wrapped
    in ``allOf``, as Kubernetes publishes it: ``kubectl explain`` then prints the field's own
    description before the referenced type's."""
    out = _convert(fragment, ref_prefix)
    if ref_prefix == V3_REF and "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _convert(fragment: schema.Schema, ref_prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fragment.items():
        if key == "$ref":
            out["$ref"] = ref_prefix + value[len(schema.REF_PREFIX) :]
        elif key == "type":
            names = [t for t in ([value] if isinstance(value, str) else value) if t != "null"]
            if len(names) == 1:
                out["type"] = names[0]
        elif key == "properties":
            out[key] = {name: _property(name, prop, ref_prefix) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = convert(value, ref_prefix)
        elif key != "oneOf":
            out[key] = value
    return out


def _property(name: str, fragment: schema.Schema, ref_prefix: str) -> dict[str, Any]:
    converted = convert(fragment, ref_prefix)
    if name in ("apiVersion", "kind") and len(converted.get("enum", ())) == 1:
        del converted["enum"]
    return converted


def definition(name: str, ref_prefix: str) -> dict[str, Any]:
    """The named definition, converted (IntOrString and Quantity as Kubernetes has them)."""
    if name in _SPECIAL:
        special = dict(_SPECIAL[name])
        if ref_prefix == V3_REF:  # OpenAPI 3 says what the values really are
            del special["type"]
            special["oneOf"] = _V3_ONE_OF[name]
        return special
    return convert(schema.definition(name), ref_prefix)


def _refs(fragment: Any) -> Iterator[str]:
    if isinstance(fragment, dict):
        for key, value in fragment.items():
            if key == "$ref" and isinstance(value, str):
                yield value[len(schema.REF_PREFIX) :]
            else:
                yield from _refs(value)
    elif isinstance(fragment, list):
        for item in fragment:
            yield from _refs(item)


@functools.cache
def _direct_refs(name: str) -> frozenset[str]:
    return frozenset(_refs(schema.definition(name)))


def closure(roots: Iterable[str]) -> list[str]:
    """Every definition reachable from ``roots`` through references, sorted."""
    seen: set[str] = set()
    stack = [r for r in roots if r in schema.definitions()]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(_direct_refs(name) - seen)
    return sorted(seen)


# -- operations ------------------------------------------------------------------------------


def gv_path(group: str, version: str) -> str:
    """``api/v1`` / ``apis/apps/v1``: the key of a group-version in the v3 index."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def group_versions() -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for info in kinds.all_resources():
        if (info.group, info.version) not in seen:
            seen.append((info.group, info.version))
    return seen


def _gv_name(group: str, version: str) -> str:
    """``CoreV1``, ``AppsV1``, ``RbacAuthorizationV1``, ``NetworkingV1`` (operation ids)."""
    if not group:
        return "Core" + version.capitalize()
    parts = re.split(r"[.-]", group.removesuffix(".k8s.io"))
    return "".join(p.capitalize() for p in parts) + version.capitalize()


def _tag(group: str, version: str) -> str:
    if not group:
        return f"core_{version}"
    parts = re.split(r"[.-]", group.removesuffix(".k8s.io"))
    return parts[0] + "".join(p.capitalize() for p in parts[1:]) + f"_{version}"


def _param(name: str, kind: str, description: str, where: str = "query") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "description": description, "type": kind}
    if where == "path":
        param["required"] = True
    return param


_PRETTY = _param("pretty", "string", "If 'true', then the output is pretty printed.")
_DRY_RUN = _param(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
)
_FIELD_MANAGER = _param(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
)
_FIELD_VALIDATION = _param(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
)
_FORCE = _param(
    "force",
    "boolean",
    'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.',
)
_LIST_PARAMS = [
    _param(
        "allowWatchBookmarks",
        "boolean",
        'allowWatchBookmarks requests watch events with type "BOOKMARK". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server\'s discretion.',
    ),
    _param(
        "continue",
        "string",
        "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue).",
    ),
    _param(
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    _param(
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    _param(
        "limit",
        "integer",
        "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
    ),
    _param(
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
    ),
    _param(
        "resourceVersionMatch",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
    ),
    _param(
        "sendInitialEvents",
        "boolean",
        '`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic "Bookmark" event will be sent.',
    ),
    _param(
        "timeoutSeconds",
        "integer",
        "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
    ),
    _param(
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
    ),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _param(
        "gracePeriodSeconds",
        "integer",
        "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
    ),
    _param(
        "orphanDependents",
        "boolean",
        'Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the "orphan" finalizer will be added to/removed from the object\'s finalizers list. Either this field or PropagationPolicy may be set, but not both.',
    ),
    _param(
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
    ),
]


def _operation(
    *,
    action: str,
    operation_id: str,
    description: str,
    gvk: dict[str, str],
    response: str,
    params: list[dict[str, Any]],
    body: str | None = None,
    consumes: tuple[str, ...] = ("*/*",),
    codes: tuple[tuple[str, str], ...] = (("200", "OK"),),
    tag: str,
) -> dict[str, Any]:
    """One operation in a neutral form; rendered as Swagger 2.0 or OpenAPI 3.0 below."""
    return {
        "action": action,
        "operationId": operation_id,
        "description": description,
        "gvk": gvk,
        "response": response,
        "params": params,
        "body": body,
        "consumes": consumes,
        "codes": codes,
        "tag": tag,
    }


def _resource_operations(info: kinds.ResourceInfo) -> dict[str, dict[str, dict[str, Any]]]:
    """path -> method -> neutral operation, for one resource (with status and scale)."""
    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    gv, kind, tag = _gv_name(info.group, info.version), info.kind, _tag(info.group, info.version)
    gvk = {"group": info.group, "kind": kind, "version": info.version}
    scope = "Namespaced" if info.namespaced else ""
    ns = "/namespaces/{namespace}" if info.namespaced else ""
    collection, item = f"{prefix}{ns}/{info.plural}", f"{prefix}{ns}/{info.plural}/{{name}}"
    obj, lst = info.schema, info.schema + "List"
    verbs = set(info.verbs)
    paths: dict[str, dict[str, dict[str, Any]]] = {collection: {}, item: {}}

    def op(**kw: Any) -> dict[str, Any]:
        return _operation(gvk=kw.pop("gvk", gvk), tag=tag, **kw)

    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    if "list" in verbs:
        paths[collection]["get"] = op(
            action="list",
            operation_id=f"list{gv}{scope}{kind}",
            description=f"list or watch objects of kind {kind}",
            response=lst,
            params=_LIST_PARAMS,
        )
    if "create" in verbs:
        paths[collection]["post"] = op(
            action="post",
            operation_id=f"create{gv}{scope}{kind}",
            description=f"create {_article(kind)} {kind}",
            response=obj,
            params=write,
            body=obj,
            codes=(("200", "OK"), ("201", "Created"), ("202", "Accepted")),
        )
    if "deletecollection" in verbs:
        paths[collection]["delete"] = op(
            action="deletecollection",
            operation_id=f"delete{gv}Collection{scope}{kind}",
            description=f"delete collection of {kind}",
            response=STATUS,
            params=[*_DELETE_PARAMS, *_LIST_PARAMS],
            body=DELETE_OPTIONS,
        )
    _item_operations(paths[item], op, gv=gv, scope=scope, kind=kind, obj=obj, verbs=verbs)
    for sub in ("status", "scale"):
        if sub in info.subresources:
            target = SCALE if sub == "scale" else obj
            sub_gvk = _SCALE_GVK if sub == "scale" else gvk
            paths[f"{item}/{sub}"] = _subresource_operations(
                op, gv=gv, scope=scope, kind=kind, sub=sub, target=target, sub_gvk=sub_gvk
            )
    if info.namespaced and "list" in verbs:
        paths[f"{prefix}/{info.plural}"] = {
            "get": op(
                action="list",
                operation_id=f"list{gv}{kind}ForAllNamespaces",
                description=f"list or watch objects of kind {kind}",
                response=lst,
                params=_LIST_PARAMS,
            )
        }
    if "watch" in verbs:
        paths.update(_watch_operations(info, op, prefix=prefix, gv=gv, scope=scope, ns=ns))
    return paths


def _article(kind: str) -> str:
    return "an" if kind[0] in "AEIOU" else "a"


def _item_operations(
    out: dict[str, dict[str, Any]],
    op: Any,
    *,
    gv: str,
    scope: str,
    kind: str,
    obj: str,
    verbs: set[str],
) -> None:
    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    if "get" in verbs:
        out["get"] = op(
            action="get",
            operation_id=f"read{gv}{scope}{kind}",
            description=f"read the specified {kind}",
            response=obj,
            params=[],
        )
    if "update" in verbs:
        out["put"] = op(
            action="put",
            operation_id=f"replace{gv}{scope}{kind}",
            description=f"replace the specified {kind}",
            response=obj,
            params=write,
            body=obj,
            codes=(("200", "OK"), ("201", "Created")),
        )
    if "patch" in verbs:
        out["patch"] = op(
            action="patch",
            operation_id=f"patch{gv}{scope}{kind}",
            description=f"partially update the specified {kind}",
            response=obj,
            params=[*write, _FORCE],
            body=PATCH,
            consumes=PATCH_TYPES,
            codes=(("200", "OK"), ("201", "Created")),
        )
    if "delete" in verbs:
        out["delete"] = op(
            action="delete",
            operation_id=f"delete{gv}{scope}{kind}",
            description=f"delete {_article(kind)} {kind}",
            response=STATUS,
            params=_DELETE_PARAMS,
            body=DELETE_OPTIONS,
            codes=(("200", "OK"), ("202", "Accepted")),
        )


def _subresource_operations(
    op: Any, *, gv: str, scope: str, kind: str, sub: str, target: str, sub_gvk: dict[str, str]
) -> dict[str, dict[str, Any]]:
    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    suffix = sub.capitalize()
    return {
        "get": op(
            action="get",
            operation_id=f"read{gv}{scope}{kind}{suffix}",
            description=f"read {sub} of the specified {kind}",
            response=target,
            params=[],
            gvk=sub_gvk,
        ),
        "put": op(
            action="put",
            operation_id=f"replace{gv}{scope}{kind}{suffix}",
            description=f"replace {sub} of the specified {kind}",
            response=target,
            params=write,
            body=target,
            codes=(("200", "OK"), ("201", "Created")),
            gvk=sub_gvk,
        ),
        "patch": op(
            action="patch",
            operation_id=f"patch{gv}{scope}{kind}{suffix}",
            description=f"partially update {sub} of the specified {kind}",
            response=target,
            params=[*write, _FORCE],
            body=PATCH,
            consumes=PATCH_TYPES,
            codes=(("200", "OK"), ("201", "Created")),
            gvk=sub_gvk,
        ),
    }


def _watch_operations(
    info: kinds.ResourceInfo, op: Any, *, prefix: str, gv: str, scope: str, ns: str
) -> dict[str, dict[str, dict[str, Any]]]:
    kind = info.kind
    out = {
        f"{prefix}/watch{ns}/{info.plural}": {
            "get": op(
                action="watchlist",
                operation_id=f"watch{gv}{scope}{kind}List",
                description=f"watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.",
                response=WATCH_EVENT,
                params=_LIST_PARAMS,
            )
        },
        f"{prefix}/watch{ns}/{info.plural}/{{name}}": {
            "get": op(
                action="watch",
                operation_id=f"watch{gv}{scope}{kind}",
                description=f"watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
                response=WATCH_EVENT,
                params=_LIST_PARAMS,
            )
        },
    }
    if info.namespaced:
        out[f"{prefix}/watch/{info.plural}"] = {
            "get": op(
                action="watchlist",
                operation_id=f"watch{gv}{kind}ListForAllNamespaces",
                description=f"watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.",
                response=WATCH_EVENT,
                params=_LIST_PARAMS,
            )
        }
    return out


def _path_parameters(path: str, kind: str) -> list[dict[str, Any]]:
    params = []
    if "{name}" in path:
        params.append(_param("name", "string", f"name of the {kind}", "path"))
    if "{namespace}" in path:
        params.append(
            _param(
                "namespace",
                "string",
                "object name and auth scope, such as for teams and projects",
                "path",
            )
        )
    params.append(_PRETTY)
    return params


def _operations(
    resources: Iterable[kinds.ResourceInfo],
) -> dict[str, dict[str, dict[str, Any]]]:
    paths: dict[str, dict[str, dict[str, Any]]] = {}
    for info in resources:
        if info.schema not in schema.definitions():
            continue
        for path, methods in _resource_operations(info).items():
            if methods:
                paths.setdefault(path, {}).update(methods)
    return paths


def _roots(resources: Iterable[kinds.ResourceInfo]) -> list[str]:
    roots = [STATUS, DELETE_OPTIONS, PATCH, WATCH_EVENT, META + "APIResourceList"]
    for info in resources:
        roots += [info.schema, info.schema + "List"]
        if info.has_scale:
            roots.append(SCALE)
    return roots


# -- OpenAPI 3.0 -----------------------------------------------------------------------------


def _v3_param(param: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in param.items() if k != "type"}
    out["schema"] = {"type": param["type"], "uniqueItems": True}
    return out


def _v3_operation(neutral: dict[str, Any]) -> dict[str, Any]:
    ref = {"$ref": V3_REF + neutral["response"]}
    produces: tuple[str, ...] = (JSON, YAML, PROTOBUF)
    if neutral["action"] in ("watch", "watchlist", "list"):
        produces += (f"{JSON};stream=watch", f"{PROTOBUF};stream=watch")
    operation: dict[str, Any] = {
        "description": neutral["description"],
        "operationId": neutral["operationId"],
    }
    if neutral["params"]:
        operation["parameters"] = [_v3_param(p) for p in neutral["params"]]
    if neutral["body"]:
        body_ref = {"$ref": V3_REF + neutral["body"]}
        operation["requestBody"] = {
            "content": {ct: {"schema": body_ref} for ct in neutral["consumes"]},
            "required": neutral["action"] != "delete" and neutral["action"] != "deletecollection",
        }
    operation["responses"] = {
        code: {"content": {ct: {"schema": ref} for ct in produces}, "description": text}
        for code, text in neutral["codes"]
    }
    operation["responses"]["401"] = {"description": "Unauthorized"}
    operation["tags"] = [neutral["tag"]]
    operation["x-kubernetes-action"] = neutral["action"]
    operation["x-kubernetes-group-version-kind"] = dict(neutral["gvk"])
    return operation


def v3_document(group: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version (``/openapi/v3/apis/<g>/<v>``)."""
    resources = kinds.resources_for(group, version)
    paths: dict[str, Any] = {}
    by_path = _operations(resources)
    kind_of = {p: next(iter(m.values()))["gvk"]["kind"] for p, m in by_path.items()}
    for path in sorted(by_path):
        item: dict[str, Any] = {m: _v3_operation(o) for m, o in sorted(by_path[path].items())}
        item["parameters"] = [_v3_param(p) for p in _path_parameters(path, kind_of[path])]
        paths[path] = item
    schemas = {name: definition(name, V3_REF) for name in closure(_roots(resources))}
    return {
        "openapi": "3.0.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                }
            },
        },
        "security": [{"BearerToken": []}],
    }


# -- Swagger 2.0 -----------------------------------------------------------------------------


def _v2_operation(neutral: dict[str, Any]) -> dict[str, Any]:
    params = [{"uniqueItems": True, **p} for p in neutral["params"]]
    if neutral["body"]:
        params.insert(
            0,
            {
                "name": "body",
                "in": "body",
                "required": neutral["action"] not in ("delete", "deletecollection"),
                "schema": {"$ref": V2_REF + neutral["body"]},
            },
        )
    produces = [JSON, YAML, PROTOBUF]
    if neutral["action"] in ("watch", "watchlist", "list"):
        produces += [f"{JSON};stream=watch", f"{PROTOBUF};stream=watch"]
    operation: dict[str, Any] = {
        "description": neutral["description"],
        "consumes": list(neutral["consumes"]),
        "produces": produces,
        "schemes": ["https"],
        "tags": [neutral["tag"]],
        "operationId": neutral["operationId"],
    }
    if params:
        operation["parameters"] = params
    ref = {"$ref": V2_REF + neutral["response"]}
    operation["responses"] = {
        code: {"description": text, "schema": ref} for code, text in neutral["codes"]
    }
    operation["responses"]["401"] = {"description": "Unauthorized"}
    operation["x-kubernetes-action"] = neutral["action"]
    operation["x-kubernetes-group-version-kind"] = dict(neutral["gvk"])
    return operation


def v2_document() -> dict[str, Any]:
    """The Swagger 2.0 document of the whole API (``/openapi/v2``)."""
    resources = kinds.all_resources()
    by_path = _operations(resources)
    paths: dict[str, Any] = {}
    for path in sorted(by_path):
        kind = next(iter(by_path[path].values()))["gvk"]["kind"]
        item: dict[str, Any] = {m: _v2_operation(o) for m, o in sorted(by_path[path].items())}
        item["parameters"] = [{"uniqueItems": True, **p} for p in _path_parameters(path, kind)]
        paths[path] = item
    definitions = {name: definition(name, V2_REF) for name in closure(_roots(resources))}
    return {
        "swagger": "2.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
            }
        },
        "security": [{"BearerToken": []}],
    }
