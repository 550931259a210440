"""ControllerRevision history of a workload's pod template (Kubernetes' pkg/controller/history),
shared by the StatefulSet and DaemonSet controllers.

- A revision ``<owner>-<hash>`` stores ``{"spec": {"template": ..., "$patch": "replace"}}``
  (``revision_data``); ``hash`` is ``deploymentutil.template_hash`` of that data plus the
  owner's ``status.collisionCount``. Pods carry the hash (DaemonSet) or the revision name
  (StatefulSet) in ``controller-revision-hash``.
- ``ensure_revision`` finds the revision holding the owner's current template among the ones
  it controls; a match that is not the newest was rolled back to (``kubectl rollout undo``
  patches the template back) and is renumbered as the newest. Otherwise it creates one
  (labels: the selector's matchLabels; annotations: the owner's, which is where
  ``kubectl rollout history`` reads ``kubernetes.io/change-cause``). A same-named revision
  with other data is a hash collision: the collision count goes up and the name changes.
- ``truncate`` deletes the oldest revisions beyond ``revisionHistoryLimit`` that are not live
  (no pod uses them and they are neither the current nor the update revision).
"""

from __future__ import annotations

import copy
from collections.abc import Set
from typing import Any

import orjson

from kybern import client as kclient
from kybern.client import store
from kybern.controllers import deploymentutil, pods

Obj = dict[str, Any]

API_VERSION = "apps/v1"
KIND = "ControllerRevision"
DEFAULT_HISTORY_LIMIT = 10


def revision_data(owner: Obj) -> Obj:
    """What a ControllerRevision of ``owner`` stores (Kubernetes' getPatch). Shaped as Go's
    typed round trip writes it (keys sorted, a zero ``creationTimestamp: null``): kubectl
    compares these bytes with its own encoding of the live object to skip a no-op undo."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    template["$patch"] = "replace"
    data: Obj = _sorted_keys({"spec": {"template": template}})
    return data


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def template_of(revision: Obj) -> Obj:
    """The pod template a revision stores (``revision_data`` undone)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template"))
    template = template or {}
    template.pop("$patch", None)
    meta = template.get("metadata") or {}
    if "creationTimestamp" in meta and meta["creationTimestamp"] is None:
        del meta["creationTimestamp"]
    return dict(template)


def _canonical(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def revision_name(owner: Obj, collision_count: int) -> str:
    data = revision_data(owner)
    return f"{owner['metadata']['name']}-{deploymentutil.template_hash(data, collision_count)}"


def hash_of(owner: Obj, revision: Obj) -> str:
    """The ``<hash>`` of a revision named ``<owner>-<hash>``."""
    return str(revision["metadata"]["name"])[len(owner["metadata"]["name"]) + 1 :]


def selector_labels(owner: Obj) -> dict[str, str]:
    """The owner's ``spec.selector.matchLabels`` (what its revisions and claims are labelled)."""
    selector = (owner.get("spec") or {}).get("selector") or {}
    return dict(selector.get("matchLabels") or {})


def owned(revisions: kclient.Store, owner: Obj) -> list[Obj]:
    """The revisions in the cache that ``owner`` controls (by the owner-uid index)."""
    uid = owner["metadata"]["uid"]
    return [
        r
        for r in revisions.by_index(store.OWNER, uid)
        if (pods.controller_ref(r) or {}).get("uid") == uid
    ]


def collision_count(owner: Obj) -> int:
    return int((owner.get("status") or {}).get("collisionCount") or 0)


async def ensure_revision(
    client: kclient.Client, owner: Obj, revisions: list[Obj]
) -> tuple[Obj, int]:
    """The ControllerRevision of ``owner``'s current template among ``revisions`` (created,
    or renumbered as the newest on a rollback, as needed) and the collision count (a
    same-named revision with other data bumps it, as Kubernetes' hash collisions do)."""
    data = revision_data(owner)
    wanted = _canonical(data)
    latest = max((int(r.get("revision") or 0) for r in revisions), default=0)
    for rev in revisions:
        if _canonical(rev.get("data")) == wanted:
            if int(rev.get("revision") or 0) < latest:  # rolled back: make it the newest
                rev = copy.deepcopy(rev)
                rev["revision"] = latest + 1
                rev = await client.update(rev)
            return rev, collision_count(owner)
    collision = collision_count(owner)
    while True:
        name = revision_name(owner, collision)
        try:
            return await client.create(_new_revision(owner, name, data, latest + 1)), collision
        except kclient.AlreadyExists:
            meta = owner["metadata"]
            existing = await client.get(API_VERSION, KIND, name, namespace=meta["namespace"])
            same = _canonical(existing.get("data")) == wanted
            if same and (pods.controller_ref(existing) or {}).get("uid") == meta["uid"]:
                return existing, collision
            collision += 1


def _new_revision(owner: Obj, name: str, data: Obj, number: int) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": selector_labels(owner),
            # kubectl rollout history reads kubernetes.io/change-cause from here
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": [pods.owner_reference(owner)],
        },
        "data": data,
        "revision": number,
    }


async def truncate(
    client: kclient.Client, owner: Obj, revisions: list[Obj], live: Set[str]
) -> None:
    """Delete the oldest revisions beyond ``revisionHistoryLimit`` (default 10) whose names
    are not in ``live``."""
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    limit = DEFAULT_HISTORY_LIMIT if limit is None else int(limit)
    history = sorted(
        (r for r in revisions if r["metadata"]["name"] not in live),
        key=lambda r: int(r.get("revision") or 0),
    )
    for rev in history[: max(0, len(history) - limit)]:
        try:
            await client.delete(
                API_VERSION, KIND, rev["metadata"]["name"], namespace=rev["metadata"]["namespace"]
            )
        except kclient.NotFound:
            continue
