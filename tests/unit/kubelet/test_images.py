"""The kubelet's image pulls: pull policy defaults, events, and imagePullSecrets' credentials."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kybern.client import clock as clock_
from kybern.kubelet import images
from kybern.runtime import cri, fake

Obj = dict[str, Any]


class AuthRecordingRuntime(fake.FakeRuntime):
    def __init__(self) -> None:
        super().__init__()
        self.auths: list[cri.AuthConfig | None] = []

    async def pull_image(self, image: str, auth: cri.AuthConfig | None = None) -> str:
        self.auths.append(auth)
        return await super().pull_image(image, auth)


def pull_secret(registry_host: str, user: str, password: str) -> Obj:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {"auths": {registry_host: {"auth": token}}}
    return {
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    }


def pod(*secrets: str) -> Obj:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"imagePullSecrets": [{"name": s} for s in secrets]},
    }


@pytest.mark.parametrize(
    ("container", "policy"),
    [
        ({"image": "busybox"}, "Always"),
        ({"image": "busybox:latest"}, "Always"),
        ({"image": "busybox:1.36"}, "IfNotPresent"),
        ({"image": "127.0.0.1:5000/busybox"}, "Always"),
        ({"image": "127.0.0.1:5000/busybox:test"}, "IfNotPresent"),
        ({"image": "busybox@sha256:" + "a" * 64}, "IfNotPresent"),
        ({"image": "busybox:1.36", "imagePullPolicy": "Never"}, "Never"),
    ],
)
def test_pull_policy_defaults_as_kubernetes(container: Obj, policy: str) -> None:
    assert images.pull_policy(container) == policy


def make_puller() -> tuple[images.Puller, AuthRecordingRuntime, list[tuple[str, str, str]]]:
    runtime = AuthRecordingRuntime()
    seen: list[tuple[str, str, str]] = []
    puller = images.Puller(
        runtime, record=lambda _p, kind, reason, msg: seen.append((kind, reason, msg)),
        clock=clock_.FakeClock(),
    )  # fmt: skip
    return puller, runtime, seen


async def test_pull_uses_the_pull_secret_for_the_images_registry() -> None:
    puller, runtime, seen = make_puller()
    secrets = {
        ("ns", "other"): pull_secret("quay.io", "q", "x"),
        ("ns", "mine"): pull_secret("https://127.0.0.1:5000/v2/", "alice", "s3cret"),
    }
    puller.secrets = lambda ns, name: secrets.get((ns, name))
    await puller.ensure(pod("other", "mine"), {"name": "c", "image": "127.0.0.1:5000/app:v1"})
    assert runtime.auths == [cri.AuthConfig(username="alice", password="s3cret")]
    reasons = [r for _, r, _ in seen]
    assert reasons == ["Pulling", "Pulled"]
    assert seen[1][2].startswith('Successfully pulled image "127.0.0.1:5000/app:v1" in ')


async def test_docker_hub_secret_matches_unqualified_images() -> None:
    puller, runtime, _ = make_puller()
    secret = pull_secret("https://index.docker.io/v1/", "bob", "pw")
    puller.secrets = lambda _ns, _name: secret
    await puller.ensure(pod("hub"), {"name": "c", "image": "busybox:1.36"})
    assert runtime.auths == [cri.AuthConfig(username="bob", password="pw")]


async def test_a_missing_pull_secret_is_a_warning_and_the_pull_goes_on() -> None:
    puller, runtime, seen = make_puller()
    puller.secrets = lambda _ns, _name: None
    await puller.ensure(pod("gone"), {"name": "c", "image": "busybox:1.36"})
    assert runtime.auths == [None]
    assert (
        "Warning",
        "FailedToRetrieveImagePullSecret",
        "Unable to retrieve some image pull secrets (gone); attempting to pull the image may "
        "not succeed.",
    ) in seen


async def test_never_with_the_image_absent_is_err_image_never_pull() -> None:
    puller, runtime, seen = make_puller()
    with pytest.raises(images.PullWait) as caught:
        await puller.ensure(
            pod(), {"name": "c", "image": "busybox:1.36", "imagePullPolicy": "Never"}
        )
    assert caught.value.waiting.reason == "ErrImageNeverPull"
    assert runtime.auths == []
    assert seen[0][1] == "ErrImageNeverPull"
