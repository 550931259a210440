"""The official Python client (``kubernetes`` from PyPI) against a real ``kybern server``.

Every served kind goes through create -> get -> list -> replace -> patch (merge and JSON) ->
delete with the typed API classes, so the client's own models deserialise every answer: a
wrong JSON type or a missing required field fails here the way it fails for users.
"""

from __future__ import annotations

import datetime
import inspect
from typing import Any

import kubernetes
import pytest

from tests.compat.helpers import JSON_PATCH, MERGE, STRATEGIC, api_error
from tests.compat.kinds_table import CASES, object_name

pytestmark = pytest.mark.compat


def _rv(obj: Any) -> int:
    rv = obj.metadata.resource_version
    assert isinstance(rv, str), rv
    assert rv.isdigit(), rv
    return int(rv)


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_crud_every_kind(api_client: kubernetes.client.ApiClient, ns: str, case_id: str) -> None:
    case = CASES[case_id]
    name = object_name(case_id, ns)
    model = getattr(kubernetes.client, case.model)

    created = case.call(api_client, "create", ns, body=case.manifest(name, ns))
    assert isinstance(created, model)
    assert created.metadata.name == name
    assert created.metadata.uid
    assert isinstance(created.metadata.creation_timestamp, datetime.datetime)
    assert created.metadata.namespace == (ns if case.namespaced else None)
    created_rv = _rv(created)

    got = case.call(api_client, "read", ns, name=name)
    assert isinstance(got, model)
    assert (got.metadata.uid, _rv(got)) == (created.metadata.uid, created_rv)

    listed = case.call(api_client, "list", ns)
    assert name in [item.metadata.name for item in listed.items]
    assert int(listed.metadata.resource_version) >= created_rv
    if case.namespaced:
        # Narrowed to this object: other tests' core/v1 Events read through events.k8s.io
        # carry `eventTime: null`, which Kubernetes sends too and the 37.x client refuses.
        everywhere = case.call(api_client, "list_all", ns, field_selector=f"metadata.name={name}")
        assert (ns, name) in [(i.metadata.namespace, i.metadata.name) for i in everywhere.items]

    # replace: the object as the client modelled it, sent back with one more label
    got.metadata.labels = {**(got.metadata.labels or {}), "replaced": "yes"}
    replaced = case.call(api_client, "replace", ns, name=name, body=got)
    assert isinstance(replaced, model)
    assert replaced.metadata.labels["replaced"] == "yes"
    assert _rv(replaced) > created_rv
    assert replaced.metadata.generation == created.metadata.generation  # metadata-only change

    stale = api_error(case.call, api_client, "replace", ns, name=name, body=got)  # old rv
    assert (stale.status, stale.reason) == (409, "Conflict")

    labels = {"metadata": {"labels": {"m": "1"}}}
    merged = case.call(api_client, "patch", ns, name=name, body=labels, _content_type=MERGE)
    assert merged.metadata.labels == {**replaced.metadata.labels, "m": "1"}
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"json": "patch"}}]
    patched = case.call(api_client, "patch", ns, name=name, body=ops, _content_type=JSON_PATCH)
    assert patched.metadata.annotations == {"json": "patch"}
    assert _rv(patched) > _rv(merged) > _rv(replaced)

    strategic = case.call(
        api_client,
        "patch",
        ns,
        name=name,
        body={"metadata": {"labels": {"s": "1"}}},
        _content_type=STRATEGIC,
    )
    assert strategic.metadata.labels == {**merged.metadata.labels, "s": "1"}

    deleted = case.call(api_client, "delete", ns, name=name)
    # Kinds whose store returns the deleted object: the client decodes it as the kind.
    returns = inspect.signature(case.method(api_client, "delete")).return_annotation
    if returns is not object:
        assert isinstance(deleted, returns)
        assert deleted.metadata.name == name
    if case.kind == "Namespace":  # no namespace controller yet: it stays Terminating
        gone = case.call(api_client, "read", ns, name=name)
        assert gone.status.phase == "Terminating"
        assert gone.metadata.deletion_timestamp is not None
        return
    missing = api_error(case.call, api_client, "read", ns, name=name)
    assert missing.status == 404


STATUS_CASES = sorted(
    case_id
    for case_id, case in CASES.items()
    if hasattr(
        getattr(kubernetes.client, case.api),
        f"read_{'namespaced_' if case.namespaced else ''}{case.snake}_status",
    )
)


@pytest.mark.parametrize("case_id", STATUS_CASES)
def test_status_subresource_every_kind(
    api_client: kubernetes.client.ApiClient, ns: str, case_id: str
) -> None:
    """Every kind whose client has a /status method: GET, PUT and merge PATCH of /status
    answer the whole object, keep the spec, and never bump the generation."""
    case = CASES[case_id]
    name = object_name(case_id, ns)
    created = case.call(api_client, "create", ns, body=case.manifest(name, ns))
    status = case.call(api_client, "read", ns, name=name, verb_suffix="_status")
    assert isinstance(status, getattr(kubernetes.client, case.model))
    assert _rv(status) == _rv(created)

    status.metadata.labels = {"ignored": "on-status-writes"}
    written = case.call(api_client, "replace", ns, name=name, body=status, verb_suffix="_status")
    assert _rv(written) >= _rv(created)
    assert "ignored" not in (written.metadata.labels or {})
    assert written.metadata.generation == created.metadata.generation

    patch = {"metadata": {"labels": {"ignored": "too"}}}
    patched = case.call(
        api_client, "patch", ns, name=name, body=patch, verb_suffix="_status", _content_type=MERGE
    )
    assert "ignored" not in (patched.metadata.labels or {})
    assert patched.metadata.generation == created.metadata.generation
    if case.kind != "Namespace":
        case.call(api_client, "delete", ns, name=name)
