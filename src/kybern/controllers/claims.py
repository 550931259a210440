"""Claiming dependents by selector and controller reference (Kubernetes' ControllerRefManager).

A controller owns the objects whose controller ownerReference names it. On each reconcile it
claims what its selector matches: its own matching objects stay, its own objects that stopped
matching are released (the reference removed), and matching orphans are adopted (a controller
reference added). An owner being deleted neither adopts nor releases; an orphan being deleted
is not adopted. Both writes are strategic merge patches that carry the object's uid, so they
never touch a same-named successor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from kybern import client as kclient
from kybern.api import errors, labels
from kybern.controllers import pods

log = logging.getLogger(__name__)
Obj = dict[str, Any]


async def claim(
    client: kclient.Client,
    owner: Obj,
    selector: labels.Selector,
    candidates: list[Obj],
    *,
    api_version: str,
    kind: str,
) -> list[Obj]:
    """The candidates `owner` controls after adopting and releasing as its selector says."""
    uid = owner["metadata"]["uid"]
    owner_deleting = bool(owner["metadata"].get("deletionTimestamp"))
    owned = []
    for obj in candidates:
        ref = pods.controller_ref(obj)
        matches = selector.matches(obj["metadata"].get("labels"))
        if ref is not None and ref.get("uid") == uid:
            if matches:
                owned.append(obj)
            elif not owner_deleting:
                await patch_refs(client, obj, [{"$patch": "delete", "uid": uid}], api_version, kind)
                log.info("%s: released %s", kclient.key_of(owner), kclient.key_of(obj))
        elif ref is None and matches and not owner_deleting:
            if obj["metadata"].get("deletionTimestamp"):
                continue
            adopted = await patch_refs(
                client, obj, [pods.owner_reference(owner)], api_version, kind
            )
            if adopted is not None:
                owned.append(adopted)
    return owned


async def patch_refs(
    client: kclient.Client, obj: Obj, refs: list[Obj], api_version: str, kind: str
) -> Obj | None:
    """Merge `refs` into obj's ownerReferences (by uid); None when it is gone or changed."""
    meta = obj["metadata"]
    body = {"metadata": {"ownerReferences": refs, "uid": meta["uid"]}}
    try:
        return await client.patch(
            api_version,
            kind,
            meta["name"],
            body,
            namespace=meta["namespace"],
            patch_type="strategic",
        )
    except (kclient.NotFound, kclient.Invalid):
        return None


def label_selector_of(owner: Obj) -> labels.Selector:
    """An apps/v1-style owner's `spec.selector` (a metav1.LabelSelector)."""
    return labels.from_label_selector((owner.get("spec") or {}).get("selector"))


def owner_keys(
    obj: Obj,
    kind: str,
    owners: Iterable[Obj],
    selector_of: Callable[[Obj], labels.Selector] = label_selector_of,
) -> list[str]:
    """The owners an event about `obj` concerns: its controller when that is a `kind`; for an
    orphan, every owner whose (valid) selector would adopt it."""
    ref = pods.controller_ref(obj)
    namespace = obj["metadata"].get("namespace", "")
    if ref is not None:
        return [f"{namespace}/{ref['name']}"] if ref.get("kind") == kind else []
    obj_labels = obj["metadata"].get("labels") or {}
    keys = []
    for owner in owners:
        try:
            if selector_of(owner).matches(obj_labels):
                keys.append(kclient.key_of(owner))
        except errors.BadRequest:
            continue
    return keys
