"""A representative subset of the Python-client compatibility tests, run by
``tests/compat/test_client_versions.py`` in a subprocess whose PYTHONPATH puts the
``kubernetes`` 32.x client first. Not collected by the main run (the name does not match
``test_*.py``); the server's kubeconfig comes from ``KYBERN_KUBECONFIG``.

The 32.x client has no ``_content_type`` argument: a dict patch body always goes out as a
strategic merge patch, a list body as a JSON patch.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import kubernetes
import pytest

from tests.compat.helpers import api_error, status_of
from tests.compat.kinds_table import CASES, object_name


@pytest.fixture(scope="module")
def api_client() -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=os.environ["KYBERN_KUBECONFIG"])
    yield client
    client.close()


@pytest.fixture(scope="module")
def core(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture
def ns(core: kubernetes.client.CoreV1Api) -> str:
    name = f"v32-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def test_the_client_is_32() -> None:
    assert kubernetes.__version__.startswith("32."), kubernetes.__file__


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_crud_every_kind(api_client: kubernetes.client.ApiClient, ns: str, case_id: str) -> None:
    case = CASES[case_id]
    name = object_name(case_id, ns)
    model = getattr(kubernetes.client, case.model)
    created = case.call(api_client, "create", ns, body=case.manifest(name, ns))
    assert isinstance(created, model)
    got = case.call(api_client, "read", ns, name=name)
    assert got.metadata.uid == created.metadata.uid
    assert name in [i.metadata.name for i in case.call(api_client, "list", ns).items]

    got.metadata.labels = {**(got.metadata.labels or {}), "replaced": "yes"}
    replaced = case.call(api_client, "replace", ns, name=name, body=got)
    assert replaced.metadata.labels == got.metadata.labels
    assert api_error(case.call, api_client, "replace", ns, name=name, body=got).status == 409

    ops = [{"op": "add", "path": "/metadata/labels/patched", "value": "json"}]
    patched = case.call(api_client, "patch", ns, name=name, body=ops)
    assert patched.metadata.labels == {**got.metadata.labels, "patched": "json"}
    # a dict body is a strategic merge patch
    body = {"metadata": {"labels": {"strategic": "yes"}}}
    strategic = case.call(api_client, "patch", ns, name=name, body=body)
    assert strategic.metadata.labels == {**patched.metadata.labels, "strategic": "yes"}

    case.call(api_client, "delete", ns, name=name)
    if case.kind != "Namespace":
        assert api_error(case.call, api_client, "read", ns, name=name).status == 404


def test_watch_sequence(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    made = core.create_namespaced_config_map(ns, {"metadata": {"name": "w"}, "data": {"v": "0"}})
    ops = [{"op": "replace", "path": "/data/v", "value": "1"}]
    patched = core.patch_namespaced_config_map("w", ns, ops)
    core.delete_namespaced_config_map("w", ns)
    watch = kubernetes.watch.Watch()
    seen = []
    for event in watch.stream(
        core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=10
    ):
        seen.append((event["type"], event["object"].metadata.resource_version))
        if len(seen) == 3:
            watch.stop()
    assert [t for t, _ in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert [rv for _, rv in seen[:2]] == [
        made.metadata.resource_version,
        patched.metadata.resource_version,
    ]


def test_selectors_and_paging(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    for i in range(5):
        labels = {"tier": "web" if i < 3 else "db"}
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"c{i}", "labels": labels}})
    web = core.list_namespaced_config_map(ns, label_selector="tier in (web)")
    assert [c.metadata.name for c in web.items] == ["c0", "c1", "c2"]
    named = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={ns}")
    assert len(named.items) == 5
    page = core.list_namespaced_config_map(ns, limit=2)
    assert page.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map(ns, limit=10, _continue=page.metadata._continue)
    assert [c.metadata.name for c in page.items + rest.items] == [f"c{i}" for i in range(5)]


def test_errors_are_status_objects(core: kubernetes.client.CoreV1Api, ns: str) -> None:
    exc = api_error(core.read_namespaced_config_map, "missing", ns)
    body = status_of(exc)
    assert (exc.status, body["kind"], body["reason"]) == (404, "Status", "NotFound")
    exc = api_error(core.create_namespaced_config_map, ns, {"metadata": {"name": "Bad_Name"}})
    body = status_of(exc)
    assert (exc.status, body["reason"]) == (422, "Invalid")
    assert [c["field"] for c in body["details"]["causes"]] == ["metadata.name"]
