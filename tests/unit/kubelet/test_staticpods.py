"""Static pods: manifests read and defaulted as the kubelet does, changes detected, mirrors."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kybern.client import clock
from kybern.kubelet import staticpods

pytestmark = pytest.mark.timeout(10)

WEB = """apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: c
    image: nginx
"""
TWO = """apiVersion: v1
kind: Pod
metadata: {name: a, namespace: kube-system}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {containers: [{name: c, image: x}]}
"""


def write(path: Path, text: str, bump: int = 0) -> None:
    path.write_text(text)
    if bump:
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump))


def test_defaults(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", WEB)
    write(tmp_path / ".hidden.yaml", WEB)
    write(tmp_path / "multi.yml", TWO)
    write(tmp_path / "bad.json", '{"kind": "Service", "metadata": {"name": "s"}}')
    pods, errors = staticpods.load(tmp_path, "Node-1")
    names = sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods)
    assert names == [
        ("default", "b-node-1"),
        ("default", "web-node-1"),
        ("kube-system", "a-node-1"),
    ]
    assert len(errors) == 1
    assert "invalid pod" in errors[0]
    web = next(p for p in pods if p["metadata"]["name"] == "web-node-1")
    uid = web["metadata"]["uid"]
    assert len(uid) == 32
    assert web["metadata"]["annotations"] == {
        "kubernetes.io/config.hash": uid,
        "kubernetes.io/config.source": "file",
    }
    assert web["spec"]["nodeName"] == "Node-1"
    assert {"operator": "Exists", "effect": "NoExecute"} in web["spec"]["tolerations"]
    again, _ = staticpods.load(tmp_path, "Node-1")
    assert uid in {p["metadata"]["uid"] for p in again}  # stable across reads


async def test_poll_detects_add_change_remove(tmp_path: Path) -> None:
    fake = clock.FakeClock()
    source = staticpods.StaticPods(tmp_path, node_name="n1", clock=fake)
    assert not await source.poll()
    write(tmp_path / "web.yaml", WEB)
    added = await source.poll()
    assert [p["metadata"]["name"] for p in added.added] == ["web-n1"]
    seen = added.added[0]["metadata"]["annotations"]["kubernetes.io/config.seen"]
    assert seen == "2026-01-01T00:00:00Z"
    assert not await source.poll()
    write(tmp_path / "web.yaml", WEB.replace("nginx", "nginx:2"), bump=1_000_000)
    changed = await source.poll()
    assert [p["metadata"]["name"] for p in changed.added] == ["web-n1"]
    assert [p["metadata"]["name"] for p in changed.removed] == ["web-n1"]
    assert changed.added[0]["metadata"]["uid"] != changed.removed[0]["metadata"]["uid"]
    (tmp_path / "web.yaml").unlink()
    gone = await source.poll()
    assert len(gone.removed) == 1
    assert source.pods() == []


async def test_run_polls_on_the_clock(tmp_path: Path) -> None:
    fake = clock.FakeClock()
    source = staticpods.StaticPods(tmp_path, node_name="n1", clock=fake, interval=20)
    diffs: list[staticpods.Diff] = []
    task = asyncio.create_task(source.run(diffs.append))
    try:
        await wait_for(lambda: fake.sleepers == 1)
        write(tmp_path / "web.yaml", WEB)
        await fake.run_for(19)
        assert diffs == []
        fake.advance(1)
        await wait_for(lambda: len(diffs) == 1)
    finally:
        task.cancel()


async def wait_for(condition: object, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


def test_mirror_pod(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", WEB)
    (pod,), _ = staticpods.load(tmp_path, "n1")
    mirror = staticpods.mirror_pod(pod, node_uid="node-uid")
    meta = mirror["metadata"]
    assert "uid" not in meta
    assert meta["annotations"]["kubernetes.io/config.mirror"] == pod["metadata"]["uid"]
    assert meta["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "node-uid", "controller": True}
    ]
    assert staticpods.is_mirror(mirror)
    assert not staticpods.is_mirror(pod)
