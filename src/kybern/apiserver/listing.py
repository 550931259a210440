"""LIST: consistent reads from the watch cache, paging with continue tokens, reads of a past
revision.

Kubernetes' resourceVersion rules for lists: unset means "most recent" (a consistent read: the
cache first catches up with the store), "0" means "any" (whatever the cache holds), N with
NotOlderThan waits until the cache has seen N, and Exact reads at N. A continue token pins
the revision of the first page. Reads at a past revision (later pages, Exact) come from the
cache too: its objects with the keys changed since put back as they were (from the first
event after that revision of each), so a page costs the page plus the events since, never the
whole collection. Only a revision older than the cache's event window is read from the store,
one page at a time; a compacted one is 410 Expired.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from kybern.api import fields, kinds, labels
from kybern.apiserver import errors, query, registry, watchcache
from kybern.storage import errors as storage_errors

Matcher = Callable[[dict[str, Any]], bool]
# (objects, more follow?, how many follow: counted only without a selector)
Page = tuple[list[dict[str, Any]], bool, int]

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
    label_test = _label_test(by_label) if by_label is not None else None

    def matches(obj: dict[str, Any]) -> bool:
        if label_test is not None and not label_test(
            (obj.get("metadata") or {}).get("labels") or {}
        ):
            return False
        return by_field is None or by_field(obj)

    return matches


def _label_test(selector: labels.Selector) -> Callable[[dict[str, str]], bool]:
    """The selector as a predicate over a labels dict. The common case, only ``key=value``
    terms (Deployment and Service selectors), becomes plain dict lookups: a selected LIST
    tests every object of the collection, and this runs once per object."""
    wanted = []
    for req in selector.requirements:
        if req.operator not in (labels.EQUALS, labels.DOUBLE_EQUALS, labels.IN):
            return selector.matches
        if len(req.values) != 1:
            return selector.matches
        wanted.append((req.key, req.values[0]))
    if selector.nothing or not wanted:
        return selector.matches
    if len(wanted) == 1:
        ((key, value),) = wanted
        return lambda found: found.get(key) == value
    return lambda found: all(found.get(key) == value for key, value in wanted)


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
    past: int | None = None  # a revision before the cache's own: read as of then
    if opts.continue_token:
        revision, start_after = query.decode_continue(opts.continue_token)
        if revision < reg.backend.compacted_rev():
            raise errors.StatusError(410, "Expired", _EXPIRED)
        past = revision
    elif opts.resource_version_match == "Exact":
        revision = opts.resource_version or 0
        if revision == 0:
            raise errors.bad_request(
                "resourceVersionMatch=Exact requires a non-zero resourceVersion"
            )
        if revision < reg.backend.compacted_rev():  # as the store would: even if cached
            raise errors.StatusError(410, "Expired", _EXPIRED)
        past = revision
    elif opts.resource_version == 0:
        revision = cache.revision
    elif opts.resource_version:
        await _wait(cache, opts.resource_version)
        revision = cache.revision
    else:
        revision, from_cache = await _consistent(reg)
        past = None if from_cache else revision
    accept = None if match is None else versioned_matcher(info, match)
    indexed = _index_value(resource, opts.field_selector)
    page = None
    if accept is not None and indexed is not None and (past is None or past <= cache.revision):
        page = _from_index(resource, indexed, past, prefix, start_after, accept, opts.limit)
    elif past is None:
        page = _from_cache(resource, prefix, start_after, accept, opts.limit)
    elif past <= cache.revision:
        page = _from_cache_at(resource, past, prefix, start_after, accept, opts.limit)
    if page is None:  # older than the cache's event window, or newer than the cache
        page = await _from_store(reg, resource, prefix, revision, start_after, accept, opts.limit)
    items, more, remaining = page
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
) -> Page:
    objects = resource.objects
    if accept is None:
        # Everything in the range: the page is a slice of the sorted keys, and what remains
        # is counted by position (not by walking 100,000 keys for every page).
        keys, lo, hi = resource.key_range(prefix, start_after)
        end = min(hi, lo + limit) if limit else hi
        return [objects[key] for key in keys[lo:end]], end < hi, hi - end
    pairs = ((key, objects[key]) for key in resource.keys_in(prefix, start_after))
    return _page(pairs, accept, limit)


def _from_cache_at(
    resource: watchcache.ResourceCache,
    revision: int,
    prefix: str,
    start_after: str,
    accept: Matcher | None,
    limit: int,
) -> Page | None:
    """A page of the collection as it was at ``revision`` (a later page of a paged list, or
    an Exact read), from the cache: the current objects with every key changed since put
    back as it was, using the first event after ``revision`` of each changed key. The cost
    is the page plus the events since ``revision``, not the size of the collection. None
    when the cache's event window no longer reaches back to ``revision``."""
    changed = resource.changes_after(revision, prefix, start_after)
    if changed is None:
        return None
    if not changed:  # nothing under the prefix changed since: the cache as it is
        return _from_cache(resource, prefix, start_after, accept, limit)
    keys, lo, hi = resource.key_range(prefix, start_after)
    objects = resource.objects
    # Keys that existed at `revision` and are gone now are not in `keys`: merge them in.
    gone = sorted(k for k, e in changed.items() if _then(e) is not None and k not in objects)

    def pairs() -> Iterator[tuple[str, dict[str, Any]]]:
        for key in heapq.merge((keys[i] for i in range(lo, hi)), gone):
            event = changed.get(key)
            obj = objects[key] if event is None else _then(event)
            if obj is not None:
                yield key, obj

    if accept is not None:
        return _page(pairs(), accept, limit)
    page = list(itertools.islice(pairs(), limit)) if limit else list(pairs())
    if not limit or len(page) < limit:
        return [obj for _, obj in page], False, 0
    last = page[-1][0]
    # What follows `last` at `revision`: the keys there now, corrected for the changed ones.
    remaining = hi - bisect.bisect_right(keys, last, lo, hi)
    for key, event in changed.items():
        if key > last:
            remaining += (_then(event) is not None) - (key in objects)
    return [obj for _, obj in page], remaining > 0, remaining


def _index_value(resource: watchcache.ResourceCache, field_selector: str) -> str | None:
    """The value the selector requires of the resource's indexed field, if it requires one."""
    if not field_selector or resource.trigger_field is None:
        return None
    return fields.parse(field_selector).requires_exact_match(resource.trigger_field)


def _from_index(
    resource: watchcache.ResourceCache,
    value: str,
    revision: int | None,
    prefix: str,
    start_after: str,
    accept: Matcher,
    limit: int,
) -> Page | None:
    """A page of a LIST whose selector requires ``value`` of the indexed field (a kubelet's
    pods): only the keys with that value are tested, plus, at a past revision, the keys
    changed since (one of them may have had the value then). None: the cache's window no
    longer reaches back to ``revision``."""
    changed: dict[str, watchcache.CachedEvent] = {}
    if revision is not None:
        found = resource.changes_after(revision, prefix, start_after)
        if found is None:
            return None
        changed = found
    candidates = sorted(
        key
        for key in resource.indexed(value).union(changed)
        if key > start_after and key.startswith(prefix)
    )
    objects = resource.objects

    def pairs() -> Iterator[tuple[str, dict[str, Any]]]:
        for key in candidates:
            event = changed.get(key)
            obj = objects.get(key) if event is None else _then(event)
            if obj is not None:
                yield key, obj

    return _page(pairs(), accept, limit)


def _then(event: watchcache.CachedEvent) -> dict[str, Any] | None:
    """The object before ``event`` (None: the key did not exist then)."""
    return None if event.type == watchcache.ADDED else event.prev


def _page(pairs: Iterable[tuple[str, dict[str, Any]]], accept: Matcher, limit: int) -> Page:
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


STORE_CHUNK = 500  # keys read from the store at a time while a selector filters them


async def _from_store(
    reg: registry.Registry,
    resource: watchcache.ResourceCache,
    prefix: str,
    revision: int,
    start_after: str,
    accept: Matcher | None,
    limit: int,
) -> Page:
    """A page read from the store at ``revision``: only the page (and one key more) is read,
    not the rest of the collection. remainingItemCount is then the cache's count of keys
    after the page: an estimate, which Kubernetes allows ("clients should not rely on the
    remainingItemCount to be set or to be exact")."""
    try:
        if accept is None:
            result = await reg.backend.list(
                prefix, rev=revision, limit=limit, start_after=start_after
            )
            items = [watchcache.decode(kv) for kv in result.kvs]
            if not result.more:
                return items, False, 0
            _, lo, hi = resource.key_range(prefix, result.kvs[-1].key)
            return items, True, max(1, hi - lo)
        return await _selected_from_store(reg, prefix, revision, start_after, accept, limit)
    except storage_errors.Compacted:
        raise errors.StatusError(410, "Expired", _EXPIRED) from None


async def _selected_from_store(
    reg: registry.Registry, prefix: str, revision: int, after: str, accept: Matcher, limit: int
) -> Page:
    items: list[dict[str, Any]] = []
    chunk = max(limit + 1, STORE_CHUNK) if limit else 0
    while True:
        result = await reg.backend.list(prefix, rev=revision, limit=chunk, start_after=after)
        for kv in result.kvs:
            obj = watchcache.decode(kv)
            if not accept(obj):
                continue
            if limit and len(items) >= limit:
                return items, True, 0
            items.append(obj)
        if not result.more or not result.kvs:
            return items, False, 0
        after = result.kvs[-1].key


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
