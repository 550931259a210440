"""Pod volumes: each plugin, mounts with subPath, in-place updates, teardown."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from kybern.client import clock
from kybern.kubelet.volumes import VolumeError, VolumeManager, atomic
from kybern.kubelet.volumes import manager as manager_mod

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]


class Source:
    def __init__(self, *objs: Obj) -> None:
        self.objs: dict[tuple[str, str, str], Obj] = {}
        for obj in objs:
            self.put(obj)

    def put(self, obj: Obj) -> None:
        meta = obj["metadata"]
        self.objs[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objs.get((kind, namespace, name))

    def list_services(self, namespace: str) -> list[Obj]:
        return []


def cm(name: str, data: dict[str, str]) -> Obj:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}, "data": data}


def secret(name: str, data: dict[str, str]) -> Obj:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"kind": "Secret", "metadata": {"name": name, "namespace": "ns"}, "data": encoded}


def pod(*volumes: Obj, mounts: list[Obj] | None = None) -> Obj:
    container = {
        "name": "c",
        "resources": {"limits": {"memory": "64Mi"}},
        "volumeMounts": mounts or [],
    }
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": {"a": "1"}},
        "spec": {"containers": [container], "volumes": list(volumes), "serviceAccountName": "sa"},
    }


@pytest.fixture
def source() -> Source:
    return Source(cm("cfg", {"k1": "v1", "k2": "v2"}), secret("sec", {"pw": "s3cret"}))


@pytest.fixture
def manager(tmp_path: Path, source: Source) -> VolumeManager:
    return VolumeManager(tmp_path, source=source, use_tmpfs=False)


def content(path: Path) -> dict[str, str]:
    return {k: f.data.decode() for k, f in atomic.read(path).items()}


class TestAtomicWriter:
    def test_layout_and_swap(self, tmp_path: Path) -> None:
        target = tmp_path / "v"
        assert atomic.write(target, {"a": atomic.File(b"1"), "d/b": atomic.File(b"2", 0o600)})
        first = os.readlink(target / "..data")
        assert first.startswith("..20")
        assert os.readlink(target / "a") == "..data/a"
        assert (target / "d" / "b").read_text() == "2"
        assert (target / "d" / "b").stat().st_mode & 0o777 == 0o600
        assert not atomic.write(target, {"a": atomic.File(b"1"), "d/b": atomic.File(b"2", 0o600)})
        assert atomic.write(target, {"a": atomic.File(b"changed")})
        assert os.readlink(target / "..data") != first
        assert not (target / first).exists()
        assert not (target / "d").exists()
        assert (target / "a").read_text() == "changed"

    @pytest.mark.parametrize("bad", ["/abs", "../up", "..hidden", "a/../b"])
    def test_rejects_bad_paths(self, tmp_path: Path, bad: str) -> None:
        with pytest.raises(atomic.PayloadError):
            atomic.write(tmp_path, {bad: atomic.File(b"")})


class TestDataVolumes:
    async def test_config_map_all_keys_and_items(
        self, manager: VolumeManager, tmp_path: Path
    ) -> None:
        p = pod(
            {"name": "all", "configMap": {"name": "cfg"}},
            {
                "name": "some",
                "configMap": {
                    "name": "cfg",
                    "items": [{"key": "k2", "path": "sub/two", "mode": 0o400}],
                },
            },
        )
        paths = await manager.setup(p)
        assert paths["all"] == tmp_path / "pods/uid-1/volumes/kubernetes.io~configmap/all"
        assert content(paths["all"]) == {"k1": "v1", "k2": "v2"}
        assert (paths["all"] / "k1").stat().st_mode & 0o777 == 0o644
        assert content(paths["some"]) == {"sub/two": "v2"}
        assert (paths["some"] / "sub/two").stat().st_mode & 0o777 == 0o400

    async def test_missing_config_map_message(self, manager: VolumeManager) -> None:
        with pytest.raises(VolumeError) as err:
            await manager.setup(pod({"name": "x", "configMap": {"name": "nope"}}))
        assert err.value.reason == "FailedMount"
        assert (
            err.value.message
            == 'MountVolume.SetUp failed for volume "x" : configmap "nope" not found'
        )

    async def test_missing_key_and_optional(self, manager: VolumeManager) -> None:
        items = [{"key": "zz", "path": "zz"}]
        with pytest.raises(VolumeError, match="configmap references non-existent config key: zz"):
            await manager.setup(pod({"name": "x", "configMap": {"name": "cfg", "items": items}}))
        paths = await manager.setup(
            pod(
                {"name": "x", "configMap": {"name": "cfg", "items": items, "optional": True}},
                {"name": "y", "secret": {"secretName": "gone", "optional": True}},
            )
        )
        assert content(paths["x"]) == {}
        assert content(paths["y"]) == {}

    async def test_secret_default_mode(self, manager: VolumeManager) -> None:
        paths = await manager.setup(
            pod({"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o440}})
        )
        assert (paths["s"] / "pw").read_text() == "s3cret"
        assert (paths["s"] / "pw").stat().st_mode & 0o777 == 0o440
        with pytest.raises(VolumeError, match='secret "other" not found'):
            await manager.setup(pod({"name": "s", "secret": {"secretName": "other"}}))

    async def test_downward_api(self, manager: VolumeManager) -> None:
        items = [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {
                "path": "mem",
                "resourceFieldRef": {
                    "containerName": "c",
                    "resource": "limits.memory",
                    "divisor": "1Mi",
                },
            },
        ]
        paths = await manager.setup(pod({"name": "d", "downwardAPI": {"items": items}}))
        assert content(paths["d"]) == {"labels": 'a="1"', "name": "p", "mem": "64"}

    async def test_projected_with_token(self, tmp_path: Path, source: Source) -> None:
        calls: list[tuple[str, str, str, int]] = []

        async def token(ns: str, sa: str, aud: str, exp: int, pod: Obj) -> str:
            calls.append((ns, sa, aud, exp))
            return f"token-{len(calls)}"

        fake = clock.FakeClock()
        manager = VolumeManager(tmp_path, source=source, token_source=token, clock=fake)
        sources = [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"configMap": {"name": "cfg", "items": [{"key": "k1", "path": "ca.crt"}]}},
            {
                "downwardAPI": {
                    "items": [
                        {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                    ]
                }
            },
        ]
        p = pod({"name": "kube-api-access", "projected": {"sources": sources}})
        paths = await manager.setup(p)
        assert content(paths["kube-api-access"]) == {
            "token": "token-1",
            "ca.crt": "v1",
            "namespace": "ns",
        }
        assert calls == [("ns", "sa", "", 3600)]
        assert not await manager.refresh(p)
        fake.advance(0.81 * 3600)
        assert await manager.refresh(p)
        assert content(paths["kube-api-access"])["token"] == "token-2"

    async def test_projected_without_token_source_fails(self, manager: VolumeManager) -> None:
        with pytest.raises(
            VolumeError, match="failed to fetch token: the kubelet has no token source"
        ):
            await manager.setup(
                pod(
                    {
                        "name": "t",
                        "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]},
                    }
                )
            )


class TestRefresh:
    async def test_live_update_swaps_data(self, manager: VolumeManager, source: Source) -> None:
        p = pod(
            {"name": "c", "configMap": {"name": "cfg"}},
            mounts=[{"name": "c", "mountPath": "/etc/c"}],
        )
        paths = await manager.setup(p)
        sub = pod(
            {"name": "c", "configMap": {"name": "cfg"}},
            mounts=[{"name": "c", "mountPath": "/k1", "subPath": "k1"}],
        )
        sub_mount = manager.mounts(sub, sub["spec"]["containers"][0], paths)[0]
        assert not await manager.refresh(p)
        source.put(cm("cfg", {"k1": "new"}))
        assert await manager.refresh(p)
        assert (paths["c"] / "k1").read_text() == "new"
        assert not (paths["c"] / "k2").exists()
        assert sub_mount.host_path != str(paths["c"] / "k1")  # resolved at start: not updated

    async def test_downward_labels_follow_the_pod(self, manager: VolumeManager) -> None:
        items = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
        p = pod({"name": "d", "downwardAPI": {"items": items}})
        paths = await manager.setup(p)
        p["metadata"]["labels"] = {"a": "2", "b": "x"}
        assert await manager.refresh(p)
        assert (paths["d"] / "labels").read_text() == 'a="2"\nb="x"'

    async def test_deleted_source_keeps_content(
        self, manager: VolumeManager, source: Source
    ) -> None:
        p = pod({"name": "c", "configMap": {"name": "cfg"}})
        paths = await manager.setup(p)
        del source.objs[("ConfigMap", "ns", "cfg")]
        assert not await manager.refresh(p)
        assert (paths["c"] / "k1").read_text() == "v1"


class TestHostPathAndEmptyDir:
    async def test_empty_dir_and_size_limit(self, manager: VolumeManager) -> None:
        p = pod({"name": "e", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
        paths = await manager.setup(p)
        assert paths["e"].is_dir()
        assert paths["e"].name == "e"
        assert paths["e"].parent.name == "kubernetes.io~empty-dir"
        assert manager.empty_dir_limits("uid-1") == {"e": (paths["e"], 1048576)}
        await manager.teardown("uid-1")
        assert not paths["e"].exists()

    @pytest.mark.parametrize(
        ("kind", "message"),
        [
            ("Directory", "is not a directory"),
            ("File", "is not a file"),
            ("Socket", "is not a socket file"),
            ("CharDevice", "is not a character device"),
            ("BlockDevice", "is not a block device"),
        ],
    )
    async def test_type_checks(
        self, manager: VolumeManager, tmp_path: Path, kind: str, message: str
    ) -> None:
        missing = tmp_path / "missing"
        with pytest.raises(VolumeError) as err:
            await manager.setup(
                pod({"name": "h", "hostPath": {"path": str(missing), "type": kind}})
            )
        assert err.value.message == (
            f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: {missing} {message}'
        )

    async def test_or_create_and_existing(self, manager: VolumeManager, tmp_path: Path) -> None:
        sock_path = tmp_path / "s.sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(sock_path))
        try:
            paths = await manager.setup(
                pod(
                    {
                        "name": "d",
                        "hostPath": {
                            "path": str(tmp_path / "new/dir"),
                            "type": "DirectoryOrCreate",
                        },
                    },
                    {
                        "name": "f",
                        "hostPath": {"path": str(tmp_path / "new/file"), "type": "FileOrCreate"},
                    },
                    {"name": "s", "hostPath": {"path": str(sock_path), "type": "Socket"}},
                    {"name": "c", "hostPath": {"path": "/dev/null", "type": "CharDevice"}},
                )
            )
        finally:
            server.close()
        assert paths["d"].is_dir()
        assert paths["f"].is_file()
        assert paths["c"] == Path("/dev/null")
        await manager.teardown("uid-1")
        assert paths["d"].is_dir()  # a hostPath is never deleted

    async def test_pvc_bound_to_host_path(self, tmp_path: Path, source: Source) -> None:
        data = tmp_path / "pv"
        data.mkdir()
        source.put({"kind": "PersistentVolumeClaim", "metadata": {"name": "claim", "namespace": "ns"},
                    "spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}})  # fmt: skip
        source.put(
            {
                "kind": "PersistentVolume",
                "metadata": {"name": "pv1"},
                "spec": {"hostPath": {"path": str(data)}},
            }
        )
        manager = VolumeManager(tmp_path, source=source)
        volume = {"name": "v", "persistentVolumeClaim": {"claimName": "claim", "readOnly": True}}
        p = pod(volume, mounts=[{"name": "v", "mountPath": "/data"}])
        paths = await manager.setup(p)
        assert paths["v"] == data
        assert manager.mounts(p, p["spec"]["containers"][0], paths)[0].readonly
        with pytest.raises(VolumeError, match="error processing PVC ns/other: failed to fetch PVC"):
            await manager.setup(pod({"name": "w", "persistentVolumeClaim": {"claimName": "other"}}))


class TestMounts:
    async def test_sub_path_expr_propagation_and_read_only(self, manager: VolumeManager) -> None:
        volumes = [{"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cfg"}}]
        mounts = [
            {
                "name": "e",
                "mountPath": "/logs",
                "subPathExpr": "$(POD_NAME)",
                "mountPropagation": "HostToContainer",
            },
            {"name": "e", "mountPath": "/b", "mountPropagation": "Bidirectional"},
            {"name": "c", "mountPath": "/cfg"},
        ]
        p = pod(*volumes, mounts=mounts)
        paths = await manager.setup(p)
        result = manager.mounts(p, p["spec"]["containers"][0], paths, env=[("POD_NAME", "p")])
        assert result[0].host_path == str(paths["e"].resolve() / "p")
        assert await asyncio.to_thread(Path(result[0].host_path).is_dir)
        assert (result[0].propagation, result[1].propagation, result[2].propagation) == (
            "rslave",
            "rshared",
            "private",
        )
        assert (result[0].readonly, result[2].readonly) == (False, True)

    async def test_escaping_sub_path_fails(self, manager: VolumeManager) -> None:
        p = pod(
            {"name": "e", "emptyDir": {}},
            mounts=[{"name": "e", "mountPath": "/x", "subPathExpr": "$(V)"}],
        )
        paths = await manager.setup(p)
        with pytest.raises(VolumeError):
            manager.mounts(p, p["spec"]["containers"][0], paths, env=[("V", "../../etc")])
        bad = pod(mounts=[{"name": "nope", "mountPath": "/x"}])
        with pytest.raises(VolumeError, match="cannot find volume"):
            manager.mounts(bad, bad["spec"]["containers"][0], paths)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs needs root")
async def test_memory_empty_dir_is_a_sized_tmpfs(tmp_path: Path, source: Source) -> None:
    manager = VolumeManager(tmp_path, source=source)
    p = pod({"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}})
    paths = await manager.setup(p)
    mounted = await asyncio.to_thread(os.path.ismount, paths["m"])
    if not mounted:
        pytest.skip("the kernel refused the tmpfs mount (the manager fell back to a directory)")
    stats = await asyncio.to_thread(os.statvfs, paths["m"])
    assert stats.f_blocks * stats.f_frsize == 1048576
    await manager.teardown("uid-1")
    assert not await asyncio.to_thread(paths["m"].exists)


def test_referenced_objects() -> None:
    p = pod(
        {"name": "a", "configMap": {"name": "cfg"}},
        {"name": "b", "secret": {"secretName": "sec"}},
        {
            "name": "c",
            "projected": {"sources": [{"configMap": {"name": "ca"}}, {"secret": {"name": "s2"}}]},
        },
        {"name": "d", "emptyDir": {}},
    )
    assert manager_mod.referenced_objects(p) == {
        ("ConfigMap", "ns", "cfg"),
        ("Secret", "ns", "sec"),
        ("ConfigMap", "ns", "ca"),
        ("Secret", "ns", "s2"),
    }
