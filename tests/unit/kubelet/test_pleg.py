"""PLEG: a relist wakes the pods whose sandboxes or containers changed, appeared or vanished."""

from __future__ import annotations

from kybern.kubelet import containerconfig as cc
from kybern.kubelet import pleg
from kybern.runtime import cri, fake


async def test_relist_wakes_changed_pods() -> None:
    rt = fake.FakeRuntime()
    woken: list[str] = []
    p = pleg.Pleg(rt, woken.append)
    config = cri.PodSandboxConfig(metadata=cri.PodMeta("p", "default", "u1"))
    sandbox = await rt.run_pod_sandbox(config)
    container = cri.ContainerConfig(
        metadata=cri.ContainerMeta("app"), image="img", labels={cc.POD_UID: "u1"}
    )
    cid = await rt.create_container(sandbox, container, config)
    await p.relist()
    assert woken == ["u1"]  # appeared
    woken.clear()
    await p.relist()
    assert woken == []  # nothing changed
    await rt.start_container(cid)
    await p.relist()
    assert woken == ["u1"]
    woken.clear()
    await rt.remove_pod_sandbox(sandbox)
    await p.relist()
    assert woken == ["u1"]  # vanished
