"""ServiceAccounts: a ``default`` ServiceAccount in every active namespace.

Kubernetes' serviceaccounts-controller: keyed by namespace name; a namespace appearing, or
its ``default`` account being deleted, makes it check (from the cache) that the account
exists and create it if not. Terminating namespaces are left alone (creation would be refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kybern import client as kclient
from kybern.controllers import runtime

Obj = dict[str, Any]
DEFAULT = "default"


def namespace_key(obj: Obj) -> Iterable[str]:
    """A ServiceAccount -> its namespace's key (only the ``default`` one matters)."""
    meta = obj.get("metadata") or {}
    return [str(meta["namespace"])] if meta.get("name") == DEFAULT else []


class ServiceAccountController:
    name = "serviceaccount"
    workers = 1

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
    ) -> None:
        self.client = client
        self.namespaces = informers.informer_for("v1", "Namespace").store
        self.accounts = informers.informer_for("v1", "ServiceAccount").store

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Namespace", runtime.own_key),
            runtime.Watch("v1", "ServiceAccount", namespace_key),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        namespace = self.namespaces.get(key)
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return runtime.Result()
        if (namespace.get("status") or {}).get("phase") == "Terminating":
            return runtime.Result()
        if self.accounts.get_by_name(DEFAULT, key) is not None:
            return runtime.Result()
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT, "namespace": key},
        }
        try:
            await self.client.create(account)
        except kclient.AlreadyExists:
            pass  # the cache lags behind the create: fine
        except kclient.errors.Forbidden:
            pass  # the namespace began terminating meanwhile
        return runtime.Result()
