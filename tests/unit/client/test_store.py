"""The informer store: keys and indexes kept right through adds, updates and removals."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.client import store

pytestmark = pytest.mark.timeout(10)


def pod(
    name: str,
    namespace: str = "ns",
    *,
    node: str = "",
    labels: dict[str, str] | None = None,
    owner: str = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "kind": "ReplicaSet", "name": "rs"}]
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}}


def test_keys_are_namespace_slash_name_or_name() -> None:
    assert store.key_of(pod("a", "ns")) == "ns/a"
    assert store.key_of({"metadata": {"name": "node-1"}}) == "node-1"
    assert store.split_key("ns/a") == ("ns", "a")
    assert store.split_key("node-1") == ("", "node-1")


def test_builtin_indexes() -> None:
    s = store.Store()
    s.put(pod("a", "ns1", node="n1", labels={"app": "web"}, owner="u1"))
    s.put(pod("b", "ns1", node="n2", labels={"app": "db"}, owner="u1"))
    s.put(pod("c", "ns2", labels={"app": "web", "tier": "x"}))
    assert [store.key_of(o) for o in s.list("ns1")] == ["ns1/a", "ns1/b"]
    assert s.index_keys(store.LABEL, "app=web") == ["ns1/a", "ns2/c"]
    assert s.index_keys(store.LABEL, "tier") == ["ns2/c"]
    assert s.index_keys(store.OWNER, "u1") == ["ns1/a", "ns1/b"]
    assert s.index_keys(store.NODE, "n2") == ["ns1/b"]
    assert len(s) == 3
    assert s.get_by_name("c", "ns2") is not None


def test_an_update_moves_the_object_between_index_values() -> None:
    s = store.Store()
    s.put(pod("a", node="n1", labels={"app": "web"}))
    old = s.put(pod("a", node="n2", labels={"app": "db"}))
    assert old is not None
    assert old["spec"]["nodeName"] == "n1"
    assert s.index_keys(store.NODE, "n1") == []
    assert s.index_keys(store.NODE, "n2") == ["ns/a"]
    assert s.index_keys(store.LABEL, "app=web") == []
    assert "n1" not in s.index_values(store.NODE)  # empty buckets are dropped


def test_remove_clears_every_index() -> None:
    s = store.Store()
    s.put(pod("a", node="n1", owner="u"))
    assert s.remove("ns/a") is not None
    assert s.remove("ns/a") is None
    assert s.index_keys(store.NODE, "n1") == []
    assert s.index_keys(store.OWNER, "u") == []
    assert "ns/a" not in s


def test_custom_indexer_is_built_over_existing_objects() -> None:
    s = store.Store()
    s.put(pod("a", labels={"app": "web"}))
    s.put(pod("b", labels={}))
    s.add_indexer("has-app", lambda o: ["yes" if o["metadata"]["labels"].get("app") else "no"])
    assert s.index_keys("has-app", "yes") == ["ns/a"]
    s.put(pod("c", labels={"app": "x"}))
    assert s.index_keys("has-app", "yes") == ["ns/a", "ns/c"]
    with pytest.raises(KeyError):
        s.by_index("missing", "x")
