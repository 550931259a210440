"""LIST: consistent reads from the watch cache, paging with continue tokens, exact-revision
reads from the store.

Kubernetes' resourceVersion rules for lists: unset means "most recent" (a consistent read: the
cache first catches up with the store), "0" means "any" (whatever the cache holds), N with
NotOlderThan waits until the cache has seen N, and Exact reads the store at N. A continue
token pins the revision of the first page; later pages come from the cache when nothing in the
resource changed since, else from the store at that revision (410 Expired once compacted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kybern.api import fields, kinds, labels
from kybern.apiserver import errors, query, registry, watchcache
from kybern.storage import errors as storage_errors

Matcher = Callable[[dict[str, Any]], bool]

_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue value from the "
    "response to get a consistent list from the point the new list was started."
)


def matcher(info: kinds.ResourceInfo, label_selector: str, field_selector: str) -> Matcher | None:
    """A predicate over objects in the request's version, or None when it selects all."""
    by_label = labels.parse(label_selector) if label_selector else None
    # Compiling per request refuses an unsupported field at once (400), even on empty lists.
    by_field = (
        fields.parse(field_selector).compile(info.group, info.kind) if field_selector else None
    )
    if by_label is None and by_field is None:
        return None

    def matches(obj: dict[str, Any]) -> bool:
        if by_label is not None and not by_label.matches(
            (obj.get("metadata") or {}).get("labels") or {}
        ):
            return False
        return by_field is None or by_field(obj)

    return matches


def versioned_matcher(info: kinds.ResourceInfo, match: Matcher | None) -> Matcher:
    """`match` applied to stored objects (converted to the request's version first)."""
    if match is None:
        return lambda obj: True
    if info.api_version == info.storage_version:
        return match
    return lambda obj: match(registry.to_version(info, obj))


async def list_objects(
    reg: registry.Registry, info: kinds.ResourceInfo, namespace: str, opts: query.ListOptions
) -> dict[str, Any]:
    match = matcher(info, opts.label_selector, opts.field_selector)
    prefix = watchcache.collection_prefix(
        info.storage_resource, namespace if info.namespaced else ""
    )
    start_after = ""
    cache = reg.cache
    resource = cache.resource(info.storage_resource)
    if opts.continue_token:
        revision, start_after = query.decode_continue(opts.continue_token)
        if revision < reg.backend.compacted_rev():
            raise errors.StatusError(410, "Expired", _EXPIRED)
        from_cache = resource.last_change <= revision <= cache.revision
    elif opts.resource_version_match == "Exact":
        revision = opts.resource_version or 0
        if revision == 0:
            raise errors.bad_request(
                "resourceVersionMatch=Exact requires a non-zero resourceVersion"
            )
        from_cache = resource.last_change <= revision <= cache.revision
    elif opts.resource_version == 0:
        revision, from_cache = cache.revision, True
    elif opts.resource_version:
        await _wait(cache, opts.resource_version)
        revision, from_cache = cache.revision, True
    else:
        revision, from_cache = await _consistent(reg)
    accept = None if match is None else versioned_matcher(info, match)
    if from_cache:
        items, more, remaining = _from_cache(resource, prefix, start_after, accept, opts.limit)
    else:
        items, more, remaining = await _from_store(
            reg, prefix, revision, start_after, accept, opts.limit
        )
    return _list_body(info, items, revision, more, remaining if match is None else None)


async def _consistent(reg: registry.Registry) -> tuple[int, bool]:
    """(revision, from the cache?) of a consistent read: the cache once it has caught up
    with the store; when it cannot within its wait, the store at its current revision
    (Kubernetes falls back to etcd the same way rather than failing the read)."""
    try:
        await reg.cache.sync()
    except TimeoutError:
        return reg.backend.current_rev(), False
    return reg.cache.revision, True


async def _wait(cache: watchcache.WatchCache, revision: int) -> None:
    try:
        await cache.wait_for(revision)
    except TimeoutError:
        raise errors.from_exception(
            storage_errors.FutureRevision(revision, cache.revision)
        ) from None


def _from_cache(
    resource: watchcache.ResourceCache,
    prefix: str,
    start_after: str,
    accept: Matcher | None,
    limit: int,
) -> tuple[list[dict[str, Any]], bool, int]:
    objects = resource.objects
    if accept is None:
        # Everything in the range: the page is a slice of the sorted keys, and what remains
        # is counted by position (not by walking 100,000 keys for every page).
        keys, lo, hi = resource.key_range(prefix, start_after)
        end = min(hi, lo + limit) if limit else hi
        return [objects[key] for key in keys[lo:end]], end < hi, hi - end
    pairs = ((key, objects[key]) for key in resource.keys_in(prefix, start_after))
    return _page(pairs, accept, limit)


def _page(
    pairs: Iterable[tuple[str, dict[str, Any]]], accept: Matcher, limit: int
) -> tuple[list[dict[str, Any]], bool, int]:
    """Up to `limit` accepted objects; more is True when another accepted one follows
    (remaining is not counted: a selected list reports no remainingItemCount)."""
    items: list[dict[str, Any]] = []
    for _, obj in pairs:
        if not accept(obj):
            continue
        if limit and len(items) >= limit:
            return items, True, 0
        items.append(obj)
    return items, False, 0


async def _from_store(
    reg: registry.Registry,
    prefix: str,
    revision: int,
    start_after: str,
    accept: Matcher | None,
    limit: int,
) -> tuple[list[dict[str, Any]], bool, int]:
    try:
        result = await reg.backend.list(prefix, rev=revision, start_after=start_after)
    except storage_errors.Compacted:
        raise errors.StatusError(410, "Expired", _EXPIRED) from None
    kvs = result.kvs
    if accept is None:  # decode only the page
        end = min(len(kvs), limit) if limit else len(kvs)
        return [watchcache.decode(kv) for kv in kvs[:end]], end < len(kvs), len(kvs) - end
    pairs = ((kv.key, watchcache.decode(kv)) for kv in kvs)
    return _page(pairs, accept, limit)


def _list_body(
    info: kinds.ResourceInfo,
    items: list[dict[str, Any]],
    revision: int,
    more: bool,
    remaining: int | None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if more and items:
        last = items[-1]["metadata"]
        meta["continue"] = query.encode_continue(
            revision,
            watchcache.object_key(
                info.storage_resource,
                last.get("namespace", "") if info.namespaced else "",
                last["name"],
            ),
        )
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    return {
        "kind": info.list_kind,
        "apiVersion": info.api_version,
        "metadata": meta,
        "items": [registry.to_version(info, obj) for obj in items],
    }
