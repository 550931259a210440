"""Image pulls for the kubelet: imagePullPolicy, events, and the pull backoff.

As kubelet v1.32: ``Always`` (the default for ``:latest`` or an untagged image) pulls every
time a container starts; ``IfNotPresent`` pulls when the runtime lacks the image; ``Never``
fails with ErrImageNeverPull. A failed pull is ErrImagePull; further attempts wait out a
backoff (10 s doubling to 5 min) and show ImagePullBackOff (``Back-off pulling image "x"``)
meanwhile. Events: Pulling, Pulled, Failed, BackOff.

Registry credentials come from the pod's ``imagePullSecrets`` (``kubernetes.io/dockerconfigjson``
or ``dockercfg`` Secrets, read through :attr:`Puller.secrets`), matched to the image's registry
host; a secret that cannot be read gets kubelet's ``FailedToRetrieveImagePullSecret`` warning
and the pull goes on without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kybern.client import clock as clock_
from kybern.kubelet import backoff as backoff_
from kybern.kubelet import status
from kybern.runtime import cri
from kybern.runtime.images import credentials, errors, reference

Obj = dict[str, Any]
Record = Callable[[Obj, str, str, str], None]
SecretLookup = Callable[[str, str], Obj | None]  # (namespace, name) -> Secret, None if absent


class PullWait(Exception):
    """The container cannot start yet: it waits with ``waiting`` for ``after`` seconds."""

    def __init__(self, waiting: status.Waiting, after: float) -> None:
        super().__init__(waiting.message or waiting.reason)
        self.waiting = waiting
        self.after = after


def pull_policy(container: Obj) -> str:
    image = str(container.get("image", ""))
    explicit = container.get("imagePullPolicy")
    if explicit:
        return str(explicit)
    untagged = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
    return "Always" if image.endswith(":latest") or untagged else "IfNotPresent"


class Puller:
    def __init__(self, runtime: cri.Runtime, *, record: Record, clock: clock_.Clock) -> None:
        self.runtime = runtime
        self.record = record
        self.clock = clock
        self.backoff = backoff_.Backoff()
        self._failed_at: dict[str, float] = {}
        self.secrets: SecretLookup | None = None  # set by the agent: imagePullSecrets

    async def ensure(self, pod: Obj, container: Obj) -> None:
        """Have the container's image, or raise :class:`PullWait`."""
        image = str(container.get("image", ""))
        policy = pull_policy(container)
        present = await self.runtime.image_status(image)
        if policy == "Never":
            if present is None:
                msg = f'Container image "{image}" is not present with pull policy of Never'
                self.record(pod, "Warning", "ErrImageNeverPull", msg)
                raise PullWait(status.Waiting("ErrImageNeverPull", msg), 10.0)
            return
        if present is not None and policy == "IfNotPresent":
            self.record(
                pod, "Normal", "Pulled", f'Container image "{image}" already present on machine'
            )
            return
        key = f"{(pod.get('metadata') or {}).get('uid', '')}/{container.get('name', '')}/pull"
        now = self.clock.now().timestamp()
        left = self.backoff.remaining(key, self._failed_at.get(key, 0.0), now)
        if left > 0:
            msg = f'Back-off pulling image "{image}"'
            self.record(pod, "Normal", "BackOff", msg)
            raise PullWait(status.Waiting("ImagePullBackOff", msg), left)
        await self._pull(pod, image, key)

    async def _pull(self, pod: Obj, image: str, key: str) -> None:
        self.record(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        started = self.clock.monotonic()
        try:
            await self.runtime.pull_image(image, self._auth(pod, image))
        except cri.RuntimeError_ as err:
            now = self.clock.now().timestamp()
            self._failed_at[key] = now
            self.backoff.next(key, now)
            msg = f'Failed to pull image "{image}": {err}'
            self.record(pod, "Warning", "Failed", msg)
            raise PullWait(status.Waiting("ErrImagePull", msg), 1.0) from err
        took = _go_seconds(self.clock.monotonic() - started)
        found = await self.runtime.image_status(image)
        self.record(
            pod,
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
            f"Image size: {found.size if found else 0} bytes.",
        )

    def _auth(self, pod: Obj, image: str) -> cri.AuthConfig | None:
        """The pod's imagePullSecrets' credentials for the image's registry, if any."""
        refs = (pod.get("spec") or {}).get("imagePullSecrets") or []
        names = [str(r.get("name", "")) for r in refs if isinstance(r, dict) and r.get("name")]
        if not names or self.secrets is None:
            return None
        namespace = str((pod.get("metadata") or {}).get("namespace", ""))
        found = [(name, self.secrets(namespace, name)) for name in names]
        missing = [name for name, secret in found if secret is None]
        if missing:
            self.record(
                pod,
                "Warning",
                "FailedToRetrieveImagePullSecret",
                f"Unable to retrieve some image pull secrets ({', '.join(missing)}); "
                "attempting to pull the image may not succeed.",
            )
        try:
            host = reference.parse(image).registry
            creds = credentials.from_pull_secrets(s for _, s in found if s is not None).get(host)
        except errors.ImageError:  # a malformed secret or name: the pull reports the image
            return None
        if creds is None:
            return None
        return cri.AuthConfig(
            username=creds.username,
            password=creds.password,
            identity_token=creds.identity_token,
            registry_token=creds.registry_token,
        )

    def forget(self, uid: str) -> None:
        self.backoff.forget(uid)
        for key in [k for k in self._failed_at if k.startswith(uid)]:
            del self._failed_at[key]


def _go_seconds(seconds: float) -> str:
    """A short duration as Go prints it (``1.234s``, ``512ms``)."""
    if seconds >= 1:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{seconds * 1000:.0f}ms"
