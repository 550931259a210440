"""Root CA publisher: a ``kube-root-ca.crt`` ConfigMap holding the cluster CA in every namespace.

Kubernetes' root-ca-cert-publisher: pods verify the API server with it (the ServiceAccount
admission plugin projects its ``ca.crt`` into every pod's ``kube-api-access-*`` volume).
Keyed by namespace name; a namespace appearing, or its ``kube-root-ca.crt`` changing or going
away, makes it check (from the cache) that the ConfigMap exists with ``data == {"ca.crt":
<CA PEM>}`` and the description annotation, creating or overwriting it if not. Namespaces that
are not Active are left alone, and a create refused because the namespace vanished or began
terminating is not retried, as in Kubernetes.

The CA comes from the controller manager's options (``root_ca_pem``, set by ``kybern server``
from its PKI). Without one (an API server without TLS) there is nothing to publish.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kybern import client as kclient
from kybern.controllers import runtime

log = logging.getLogger(__name__)

Obj = dict[str, Any]
CONFIGMAP = "kube-root-ca.crt"
DATA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
OPTION = "root_ca_pem"


def namespace_key(obj: Obj) -> Iterable[str]:
    """A ConfigMap -> its namespace's key (only ``kube-root-ca.crt`` matters)."""
    meta = obj.get("metadata") or {}
    return [str(meta["namespace"])] if meta.get("name") == CONFIGMAP else []


def wanted_data(root_ca: str) -> dict[str, str]:
    return {DATA_KEY: root_ca}


def up_to_date(configmap: Obj, root_ca: str) -> bool:
    annotations = (configmap.get("metadata") or {}).get("annotations") or {}
    return configmap.get("data") == wanted_data(root_ca) and bool(
        annotations.get(DESCRIPTION_ANNOTATION)
    )


class RootCACertPublisher:
    name = "root-ca-cert-publisher"
    workers = 1
    takes_options = True  # the manager passes ``options=`` (kybern.controllers.manager.build)

    def __init__(
        self,
        *,
        client: kclient.Client,
        informers: kclient.SharedInformerFactory,
        clock: kclient.Clock | None = None,
        options: Mapping[str, object] | None = None,
    ) -> None:
        self.client = client
        self.namespaces = informers.informer_for("v1", "Namespace").store
        self.configmaps = informers.informer_for("v1", "ConfigMap").store
        root_ca = (options or {}).get(OPTION)
        self.root_ca = root_ca.decode() if isinstance(root_ca, bytes) else str(root_ca or "")
        if not self.root_ca:
            log.info("root-ca-cert-publisher: no root CA (%s option); publishing nothing", OPTION)

    def watches(self) -> Sequence[runtime.Watch]:
        return [
            runtime.Watch("v1", "Namespace", runtime.own_key),
            runtime.Watch("v1", "ConfigMap", namespace_key),
        ]

    async def reconcile(self, key: str) -> runtime.Result:
        namespace = self.namespaces.get(key)
        if not self.root_ca or namespace is None or not _active(namespace):
            return runtime.Result()
        current = self.configmaps.get_by_name(CONFIGMAP, key)
        if current is None:
            await self._create(key)
        elif not up_to_date(current, self.root_ca):
            await self._update(current)
        return runtime.Result()

    async def _create(self, namespace: str) -> None:
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIGMAP,
                "namespace": namespace,
                "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
            },
            "data": wanted_data(self.root_ca),
        }
        try:
            await self.client.create(configmap)
        except kclient.AlreadyExists:
            pass  # the cache lags behind the create; the watch event brings us back
        except (kclient.errors.NotFound, kclient.errors.Forbidden):
            pass  # the namespace vanished or began terminating: do not retry

    async def _update(self, current: Obj) -> None:
        configmap = copy.deepcopy(current)
        configmap.setdefault("apiVersion", "v1")
        configmap.setdefault("kind", "ConfigMap")
        configmap["data"] = wanted_data(self.root_ca)
        meta = configmap.setdefault("metadata", {})
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            DESCRIPTION_ANNOTATION: DESCRIPTION,
        }
        await self.client.update(configmap)  # a Conflict requeues with backoff: a newer copy


def _active(namespace: Obj) -> bool:
    if namespace["metadata"].get("deletionTimestamp"):
        return False
    phase = (namespace.get("status") or {}).get("phase", "Active")
    return bool(phase == "Active")
