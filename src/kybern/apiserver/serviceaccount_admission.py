"""ServiceAccount admission: every new pod runs as a ServiceAccount and gets its API credential.

Kubernetes' ``ServiceAccount`` admission plugin, on pod create (mirror pods excepted):

- ``spec.serviceAccountName`` defaults to ``default`` (and the deprecated ``serviceAccount``
  alias follows it);
- the ServiceAccount must exist, else ``403 Forbidden: error looking up service account
  <ns>/<name>: serviceaccount "<name>" not found``. For ``default``, which the serviceaccount
  controller creates right after the namespace, it looks again for a moment first (Kubernetes
  retries 10 times 100-200 ms apart);
- unless ``automountServiceAccountToken`` is false on the pod (or, when the pod does not say,
  on the ServiceAccount), a projected volume ``kube-api-access-<5 random chars>`` (token
  3607 s, the ``kube-root-ca.crt`` ConfigMap's ``ca.crt``, the namespace from the downward
  API, defaultMode 420) is added and mounted read-only at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` in every init and app container that does
  not mount something there already;
- the ServiceAccount's ``imagePullSecrets`` are copied when the pod names none.

Mirror pods (static pods the kubelet mirrors) are left unchanged, and refused when they name a
ServiceAccount or project a ServiceAccount token.

kybern's choice for API servers without a serviceaccount controller: Kubernetes would refuse
every pod there (no ``default`` account ever appears), which is what a cluster of ours without
the controller manager (``--disable-controller-manager``, and the API-only servers tests start)
would do too. So the refusal applies only once the controller is evidently at work, i.e. once
``kube-system/default`` exists (the controller creates it first thing, like every namespace's);
until then a pod whose ServiceAccount is missing is admitted as ``default`` with no token
volume. ``require_accounts=True``/``False`` forces either behaviour.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from kybern.apiserver import errors, watchcache

if TYPE_CHECKING:  # admission imports the plugins to build its chain
    from kybern.apiserver import admission

DEFAULT_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
TOKEN_EXPIRATION = 3607  # satokens.WARN_ONLY_EXPIRATION
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# apimachinery's SimpleNameGenerator alphabet: no vowels (no words), no look-alikes.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
DEFAULT_ATTEMPTS = 10
RETRY_INTERVAL = (0.1, 0.2)  # seconds, random in this range, as Kubernetes


def token_volume(name: str) -> dict[str, Any]:
    """The projected ``kube-api-access-*`` volume, in its defaulted form."""
    return {
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
                {
                    "configMap": {
                        "name": ROOT_CA_CONFIGMAP,
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
            "defaultMode": 420,
        },
    }


def should_automount(pod_spec: dict[str, Any], account: dict[str, Any]) -> bool:
    """The pod's ``automountServiceAccountToken`` wins, then the account's, else true."""
    if isinstance(pod_spec.get("automountServiceAccountToken"), bool):
        return bool(pod_spec["automountServiceAccountToken"])
    if isinstance(account.get("automountServiceAccountToken"), bool):
        return bool(account["automountServiceAccountToken"])
    return True


def mount_token(pod_spec: dict[str, Any], volume_name: str | None = None) -> None:
    """Add the token volume (unless one is there) and its mount where none is at MOUNT_PATH."""
    volumes = [v for v in pod_spec.get("volumes") or [] if isinstance(v, dict)]
    existing = next(
        (str(v["name"]) for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None
    )
    name = existing or volume_name or generate_name(VOLUME_PREFIX)
    mount = {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}
    needed = False
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            mounts = container.get("volumeMounts")
            mounts = mounts if isinstance(mounts, list) else []
            if any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            container["volumeMounts"] = [*mounts, dict(mount)]
            needed = True
    if needed and existing is None:
        pod_spec["volumes"] = [*(pod_spec.get("volumes") or []), token_volume(name)]


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(NAME_ALPHABET) for _ in range(5))


class ServiceAccountAdmission:
    """The admission plugin (see the module docstring)."""

    def __init__(self, cache: watchcache.WatchCache, *, require_accounts: bool | None = None):
        self.cache = cache
        self.require_accounts = require_accounts

    async def on_create(self, req: admission.Request, obj: dict[str, Any]) -> None:
        spec = obj.get("spec")
        if req.info.group or req.info.kind != "Pod" or not isinstance(spec, dict):
            return  # an Eviction (the pods/eviction create) has no spec: skipped too
        meta = obj.get("metadata") or {}
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            _check_mirror(obj, spec)
            return
        name = spec.get("serviceAccountName") or DEFAULT_ACCOUNT
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        namespace = str(meta.get("namespace", ""))
        account = await self._account(namespace, name)
        if account is None:
            if self._required():
                raise errors.forbidden(
                    "pods",
                    str(meta.get("name", "")),
                    "",
                    f"error looking up service account {namespace}/{name}: "
                    f'serviceaccount "{name}" not found',
                )
            return
        if should_automount(spec, account):
            mount_token(spec)
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [
                {"name": s.get("name", "")}
                for s in account["imagePullSecrets"]
                if isinstance(s, dict)
            ]

    async def on_update(
        self, req: admission.Request, new: dict[str, Any], old: dict[str, Any]
    ) -> None:
        return None

    async def on_delete(self, req: admission.Request, obj: dict[str, Any]) -> None:
        return None

    def _lookup(self, namespace: str, name: str) -> dict[str, Any] | None:
        key = watchcache.object_key("serviceaccounts", namespace, name)
        return self.cache.resource("serviceaccounts").objects.get(key)

    def _required(self) -> bool:
        if self.require_accounts is not None:
            return self.require_accounts
        return self._lookup("kube-system", DEFAULT_ACCOUNT) is not None

    async def _account(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._lookup(namespace, name)
        if found is not None:
            return found
        await self.cache.sync()  # created a moment ago?
        found = self._lookup(namespace, name)
        if found is not None or not self._required():
            return found
        # the controller creates `default` right after the namespace: give it a moment
        for _ in range(DEFAULT_ATTEMPTS - 1 if name == DEFAULT_ACCOUNT else 0):
            await asyncio.sleep(random.uniform(*RETRY_INTERVAL))
            await self.cache.sync()
            found = self._lookup(namespace, name)
            if found is not None:
                return found
        return None


def _check_mirror(pod: dict[str, Any], spec: dict[str, Any]) -> None:
    name = str((pod.get("metadata") or {}).get("name", ""))
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        raise errors.forbidden("pods", name, "", "a mirror pod may not reference service accounts")
    for volume in spec.get("volumes") or []:
        projected = volume.get("projected") if isinstance(volume, dict) else None
        for source in (projected or {}).get("sources") or []:
            if isinstance(source, dict) and "serviceAccountToken" in source:
                raise errors.forbidden(
                    "pods",
                    name,
                    "",
                    "a mirror pod may not use ServiceAccountToken volume projections",
                )
