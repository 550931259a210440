"""Claiming by selector and controller reference, as Kubernetes' ControllerRefManager does."""

from __future__ import annotations

from typing import Any

from kybern.api import labels
from kybern.controllers import claims

OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "rs", "namespace": "ns", "uid": "u1"},
}


class Recorder:
    def __init__(self) -> None:
        self.patches: list[tuple[str, Any]] = []

    async def patch(self, api_version: str, kind: str, name: str, body: Any, **_: Any) -> Any:
        self.patches.append((name, body["metadata"]["ownerReferences"]))
        return {"metadata": {"name": name, "namespace": "ns", "uid": body["metadata"]["uid"]}}


def pod(
    name: str, app: str, owner_uid: str | None = None, deleting: bool = False
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": f"pod-{name}",
        "labels": {"app": app},
    }
    if owner_uid:
        meta["ownerReferences"] = [
            {"uid": owner_uid, "controller": True, "kind": "ReplicaSet", "name": "rs"}
        ]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


async def test_claims_keeps_releases_and_adopts() -> None:
    client = Recorder()
    selector = labels.parse("app=web")
    candidates = [
        pod("mine", "web", "u1"),
        pod("strayed", "db", "u1"),
        pod("orphan", "web"),
        pod("dying-orphan", "web", deleting=True),
        pod("theirs", "web", "other"),
    ]
    owned = await claims.claim(client, OWNER, selector, candidates, api_version="v1", kind="Pod")  # type: ignore[arg-type]
    assert [o["metadata"]["name"] for o in owned] == ["mine", "orphan"]
    assert [name for name, _ in client.patches] == ["strayed", "orphan"]
    assert client.patches[0][1] == [{"$patch": "delete", "uid": "u1"}]
    assert client.patches[1][1][0]["uid"] == "u1"


async def test_owner_being_deleted_neither_adopts_nor_releases() -> None:
    client = Recorder()
    owner = {
        **OWNER,
        "metadata": {**OWNER["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"},
    }
    candidates = [pod("mine", "web", "u1"), pod("strayed", "db", "u1"), pod("orphan", "web")]
    owned = await claims.claim(
        client, owner, labels.parse("app=web"), candidates, api_version="v1", kind="Pod"
    )  # type: ignore[arg-type]
    assert [o["metadata"]["name"] for o in owned] == ["mine"]
    assert client.patches == []
