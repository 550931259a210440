"""Property: for random valid ConfigMaps, Secrets and Pods, create -> get returns what was sent
(plus server-set fields and defaults) -> a merge patch -> get reflects exactly the patch ->
delete -> get is 404. Against a real ``kybern server`` over HTTPS."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kybern.testing import server_process
from tests.support import cluster

pytestmark = pytest.mark.compat
NS = "prop"
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

dns_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
dns_subdomain = st.lists(dns_label, min_size=1, max_size=3).map(".".join)
label_name = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,14}[A-Za-z0-9])?", fullmatch=True)
label_key = st.one_of(label_name, st.tuples(dns_subdomain, label_name).map("/".join))
label_value = st.one_of(st.just(""), label_name)
labels = st.dictionaries(label_key, label_value, max_size=5)
data_key = st.from_regex(r"[-._a-zA-Z0-9]{1,20}", fullmatch=True).filter(
    lambda k: k not in (".", "..")
)
text = st.text(max_size=40)


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, the reference the server is checked against."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _contains(actual: Any, expected: Any, path: str = "") -> None:
    """Everything sent is in the answer unchanged (the server may add more)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            _contains(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _contains(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


# A merge patch of labels: sets, changes and removes (null) keys.
label_patches = st.dictionaries(label_key, st.one_of(st.none(), label_value), max_size=4)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.RawClient]:
    proc: server_process.ServerProcess = cluster.start_server(
        tmp_path_factory.mktemp("kybern-prop")
    )
    client = cluster.RawClient(proc.kubeconfig)
    assert client.request("POST", "/api/v1/namespaces", {"metadata": {"name": NS}}).status == 201
    yield client
    proc.stop()
    assert "Traceback" not in proc.logs()


def _without_status(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {
        k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")
    }
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def _round_trip(
    raw: cluster.RawClient, plural: str, body: dict[str, Any], patch: dict[str, Any]
) -> dict[str, Any]:
    """Create, get, merge-patch, delete; -> the object as created."""
    collection = f"/api/v1/namespaces/{NS}/{plural}"
    name = body["metadata"]["name"]
    created = raw.request("POST", collection, body)
    assert created.status == 201, created.body
    made: dict[str, Any] = created.json
    _contains(made, body)
    meta = made["metadata"]
    assert meta["uid"]
    assert meta["creationTimestamp"]
    assert meta["resourceVersion"].isdigit()
    assert meta["namespace"] == NS

    got = raw.get(f"{collection}/{name}")
    assert got.status == 200
    # The control plane may write status meanwhile (the scheduler marks an unschedulable pod),
    # which moves resourceVersion and adds a managedFields entry; the rest is what was made.
    assert _without_status(got.json) == _without_status(made)

    patched = raw.request(
        "PATCH", f"{collection}/{name}", patch, content_type="application/merge-patch+json"
    )
    assert patched.status == 200, patched.body
    after = raw.get(f"{collection}/{name}").json
    assert after == patched.json
    expected = _merge(made, patch)
    unchanged = {k: v for k, v in after.items() if k != "metadata"} == {
        k: v for k, v in made.items() if k != "metadata"
    } and {k: v for k, v in after["metadata"].items() if k != "resourceVersion"} == {
        k: v for k, v in meta.items() if k != "resourceVersion"
    }
    if unchanged:  # a patch that changes nothing writes nothing: same resourceVersion
        assert after["metadata"]["resourceVersion"] == meta["resourceVersion"]
    else:
        assert int(after["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    for field in ("data", "stringData", "spec"):
        if field in expected or field in after:
            assert after.get(field) == expected.get(field), field
    assert after["metadata"].get("labels", {}) == expected["metadata"].get("labels", {})
    assert after["metadata"]["uid"] == meta["uid"]

    deleted = raw.request("DELETE", f"{collection}/{name}")
    assert deleted.status == 200, deleted.body
    missing = raw.get(f"{collection}/{name}")
    assert (missing.status, missing.json["reason"]) == (404, "NotFound")
    return made


configmaps = st.builds(
    lambda name, lbls, data: {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": lbls},
        "data": data,
    },
    dns_subdomain,
    labels,
    st.dictionaries(data_key, text, max_size=5),
)


@SETTINGS
@given(
    body=configmaps,
    label_patch=label_patches,
    data_patch=st.dictionaries(data_key, st.one_of(st.none(), text), max_size=4),
)
def test_configmap_round_trip(
    raw: cluster.RawClient,
    body: dict[str, Any],
    label_patch: dict[str, Any],
    data_patch: dict[str, Any],
) -> None:
    patch = {"metadata": {"labels": label_patch}, "data": data_patch}
    _round_trip(raw, "configmaps", body, patch)


secrets = st.builds(
    lambda name, lbls, data: {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": lbls},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    },
    dns_subdomain,
    labels,
    st.dictionaries(data_key, st.binary(max_size=40), max_size=5),
)


@SETTINGS
@given(
    body=secrets,
    label_patch=label_patches,
    data_patch=st.dictionaries(
        data_key,
        st.one_of(st.none(), st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode())),
        max_size=4,
    ),
)
def test_secret_round_trip(
    raw: cluster.RawClient,
    body: dict[str, Any],
    label_patch: dict[str, Any],
    data_patch: dict[str, Any],
) -> None:
    patch = {"metadata": {"labels": label_patch}, "data": data_patch}
    made = _round_trip(raw, "secrets", body, patch)
    assert made["type"] == "Opaque"


containers = st.lists(
    st.builds(
        lambda name, image, args: {"name": name, "image": image, "args": args},
        dns_label,
        st.sampled_from(["busybox", "busybox:1.36", "registry.local:5000/app@sha256:" + "a" * 64]),
        st.lists(text, max_size=3),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda c: c["name"],
)
pods = st.builds(
    lambda name, lbls, cs, restart: {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": lbls},
        "spec": {"containers": cs, "restartPolicy": restart},
    },
    dns_subdomain,
    labels,
    containers,
    st.sampled_from(["Always", "OnFailure", "Never"]),
)


@SETTINGS
@given(body=pods, label_patch=label_patches, grace=st.integers(0, 600))
def test_pod_round_trip(
    raw: cluster.RawClient, body: dict[str, Any], label_patch: dict[str, Any], grace: int
) -> None:
    patch = {
        "metadata": {"labels": label_patch, "annotations": {"patched": "yes"}},
        "spec": {"activeDeadlineSeconds": grace + 1},
    }
    made = _round_trip(raw, "pods", body, patch)
    spec = made["spec"]
    assert (spec["dnsPolicy"], spec["schedulerName"]) == ("ClusterFirst", "default-scheduler")
    assert spec["terminationGracePeriodSeconds"] == 30
    for container in spec["containers"]:
        tagged = ":" in container["image"].rsplit("/", 1)[-1] or "@" in container["image"]
        assert container["imagePullPolicy"] == ("IfNotPresent" if tagged else "Always")
        assert container["terminationMessagePath"] == "/dev/termination-log"
    assert (made["status"]["phase"], made["status"]["qosClass"]) == ("Pending", "BestEffort")
