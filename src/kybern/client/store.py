"""The informer's cache: objects by key, plus indexes (client-go's ``cache.Indexer``).

Keys are ``namespace/name`` (``name`` for cluster-scoped objects), as client-go's
``MetaNamespaceKeyFunc``. An indexer maps an object to index values; the store keeps, per
index, value -> keys, so ``by_index("node", "node-1")`` is a dict lookup rather than a scan.
Built in: by namespace, by label (``key=value`` and bare ``key``), by owner uid, by
``spec.nodeName``; ``add_indexer`` registers more (before or after objects arrive).

Objects in the store are shared (with other informer users and, in process, with the API
server's watch cache): treat them as immutable and copy before changing one. The store is not
thread-safe; it is safe on one asyncio loop because no method awaits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]
# Aliases: inside Store, ``list`` names the method.
Objs = list[Obj]
Keys = list[str]

NAMESPACE = "namespace"
LABEL = "label"
OWNER = "owner"
NODE = "node"


def key_of(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))


def split_key(key: str) -> tuple[str, str]:
    """-> (namespace, name); namespace is '' for cluster-scoped keys."""
    namespace, _, name = key.rpartition("/")
    return namespace, name


def by_namespace(obj: Obj) -> Iterable[str]:
    return [(obj.get("metadata") or {}).get("namespace") or ""]


def by_label(obj: Obj) -> Iterable[str]:
    """``key=value`` and the bare ``key`` of every label (existence queries)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return [f"{k}={v}" for k, v in labels.items()] + list(labels)


def by_owner(obj: Obj) -> Iterable[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [ref["uid"] for ref in refs if isinstance(ref, dict) and ref.get("uid")]


def by_node(obj: Obj) -> Iterable[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


DEFAULT_INDEXERS: dict[str, IndexFunc] = {
    NAMESPACE: by_namespace,
    LABEL: by_label,
    OWNER: by_owner,
    NODE: by_node,
}


class Store:
    """Objects by key with indexes kept up to date on every change."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        for name, fn in (DEFAULT_INDEXERS if indexers is None else indexers).items():
            self.add_indexer(name, fn)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Register (or replace) an index and build it over the objects already stored."""
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)
        self._indices[name] = index

    @property
    def indexers(self) -> tuple[str, ...]:
        return tuple(self._indexers)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def get_by_name(self, name: str, namespace: str = "") -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list_keys(self) -> Keys:
        return list(self._items)

    def list(self, namespace: str = "") -> Objs:
        if namespace:
            return self.by_index(NAMESPACE, namespace)
        return list(self._items.values())

    def by_index(self, index: str, value: str) -> Objs:
        keys = self.index_keys(index, value)
        return [self._items[k] for k in keys]

    def index_keys(self, index: str, value: str) -> Keys:
        if index not in self._indices:
            raise KeyError(f"no indexer named {index!r}")
        return sorted(self._indices[index].get(value, ()))

    def index_key_set(self, index: str, value: str) -> set[str]:
        """The keys under an index value, unordered (a copy; no sort, for callers that
        combine or order them themselves)."""
        if index not in self._indices:
            raise KeyError(f"no indexer named {index!r}")
        return set(self._indices[index].get(value, ()))

    def index_values(self, index: str) -> Keys:
        return list(self._indices[index])

    def put(self, obj: Obj) -> Obj | None:
        """Add or replace; -> the object it replaced."""
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        self._index(key, obj)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _index(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
