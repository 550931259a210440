"""ServiceAccount admission on a stand-in watch cache: defaulting, refusals, the token volume."""

from __future__ import annotations

from typing import Any, cast

import pytest

from kybern.api import kinds
from kybern.apiserver import admission, errors, watchcache
from kybern.apiserver import serviceaccount_admission as sa_admission

pytestmark = pytest.mark.timeout(10)
PODS = kinds.lookup("", "v1", "pods")
MOUNT = sa_admission.MOUNT_PATH


class Objects:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}


class FakeCache:
    """The two things the plugin reads: ``resource(name).objects`` and ``sync()``."""

    def __init__(self) -> None:
        self.accounts = Objects()
        self.syncs = 0
        self.on_sync: list[dict[str, Any]] = []  # accounts that appear at the next sync

    def resource(self, name: str) -> Objects:
        assert name == "serviceaccounts"
        return self.accounts

    def add(self, namespace: str, name: str, **fields: Any) -> None:
        key = watchcache.object_key("serviceaccounts", namespace, name)
        self.accounts.objects[key] = {"metadata": {"name": name, "namespace": namespace}, **fields}

    async def sync(self) -> None:
        self.syncs += 1
        for account in self.on_sync:
            self.add(account["namespace"], account["name"])
        self.on_sync.clear()


def plugin(cache: FakeCache, require: bool | None = None) -> sa_admission.ServiceAccountAdmission:
    return sa_admission.ServiceAccountAdmission(
        cast(watchcache.WatchCache, cache), require_accounts=require
    )


def pod(**spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "main", "image": "busybox"}])
    return {"metadata": {"name": "web", "namespace": "team"}, "spec": spec}


async def admit(cache: FakeCache, obj: dict[str, Any], require: bool | None = None) -> None:
    assert PODS is not None
    await plugin(cache, require).on_create(admission.Request(PODS), obj)


async def test_mounting_twice_changes_nothing() -> None:
    # a generateName retry runs admission again on the same object
    cache = FakeCache()
    cache.add("team", "default")
    obj = pod()
    await admit(cache, obj)
    once = repr(obj)
    await admit(cache, obj)
    assert repr(obj) == once
    assert len(obj["spec"]["volumes"]) == 1


async def test_an_existing_api_access_volume_is_reused() -> None:
    spec = pod(volumes=[{"name": "kube-api-access-abcde", "emptyDir": {}}])["spec"]
    sa_admission.mount_token(spec)
    assert spec["volumes"] == [{"name": "kube-api-access-abcde", "emptyDir": {}}]
    assert spec["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


async def test_no_containers_need_it_no_volume() -> None:
    spec = pod(containers=[{"name": "c", "volumeMounts": [{"name": "x", "mountPath": MOUNT}]}])
    sa_admission.mount_token(spec["spec"])
    assert "volumes" not in spec["spec"]


async def test_default_account_is_awaited_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sa_admission, "RETRY_INTERVAL", (0.0, 0.0))
    cache = FakeCache()
    obj = pod()
    cache.on_sync.append({"namespace": "team", "name": "default"})
    await admit(cache, obj, require=True)
    assert obj["spec"]["volumes"]


async def test_missing_default_is_refused_after_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sa_admission, "RETRY_INTERVAL", (0.0, 0.0))
    cache = FakeCache()
    with pytest.raises(errors.StatusError) as raised:
        await admit(cache, pod(), require=True)
    assert raised.value.code == 403
    assert "error looking up service account team/default" in raised.value.message
    assert cache.syncs == sa_admission.DEFAULT_ATTEMPTS


async def test_other_accounts_are_looked_up_once() -> None:
    cache = FakeCache()
    with pytest.raises(errors.StatusError):
        await admit(cache, pod(serviceAccountName="builder"), require=True)
    assert cache.syncs == 1


async def test_kube_system_default_turns_the_refusal_on() -> None:
    cache = FakeCache()
    obj = pod(serviceAccountName="builder")
    await admit(cache, obj)  # no account controller evidently at work: admitted as is
    assert "volumes" not in obj["spec"]
    cache.add("kube-system", "default")
    with pytest.raises(errors.StatusError):
        await admit(cache, pod(serviceAccountName="builder"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"serviceAccountName": "default"}, "a mirror pod may not reference service accounts"),
        (
            {"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {}}]}}]},
            "a mirror pod may not use ServiceAccountToken volume projections",
        ),
    ],
)
async def test_mirror_pods_may_not_use_accounts(spec: dict[str, Any], message: str) -> None:
    obj = pod(**spec)
    obj["metadata"]["annotations"] = {sa_admission.MIRROR_ANNOTATION: "x"}
    with pytest.raises(errors.StatusError) as raised:
        await admit(FakeCache(), obj)
    assert raised.value.message.endswith(message)


async def test_other_kinds_pass_untouched() -> None:
    info = kinds.lookup("", "v1", "configmaps")
    assert info is not None
    obj: dict[str, Any] = {"metadata": {"name": "c", "namespace": "team"}, "spec": {}}
    await plugin(FakeCache()).on_create(admission.Request(info), obj)
    assert obj["spec"] == {}
