"""The agent's pod network stand-in: sandboxes wait until the node's podCIDR is known and the
network prepared; the gc gets the runtime's live sandboxes; a failing prepare is retried."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kybern.client import clock as clock_
from kybern.client import errors
from kybern.kubelet import network
from kybern.network import config as network_config
from kybern.network import invoke, result
from kybern.runtime import cri, fake

Obj = dict[str, Any]


class NodeClient:
    """Answers GET Node: 404 until registered, then the node with ``cidr`` once assigned."""

    def __init__(self) -> None:
        self.node: Obj | None = None

    async def get(self, api_version: str, kind: str, name: str, *, namespace: str = "") -> Obj:
        if self.node is None:
            raise errors.NotFound({"code": 404, "reason": "NotFound", "message": name})
        return self.node


class StubNetwork:
    def __init__(self) -> None:
        self.added: list[str] = []

    async def setup(self, **kwargs: Any) -> result.Attachment:
        self.added.append(kwargs["container_id"])
        return result.Attachment(
            ip="10.42.3.2", prefix_length=24, gateway="10.42.3.1", interface="eth0"
        )


@pytest.fixture
def prepared(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[network_config.NetworkConfig, list[str]]]:
    calls: list[tuple[network_config.NetworkConfig, list[str]]] = []
    failures = [invoke.CNIError(plugin="bridge", command="VERSION", code=1, msg="boom")]

    async def prepare(cfg: network_config.NetworkConfig, *, conf_dir: Path, live: Any) -> Any:
        calls.append((cfg, list(live)))
        if failures:
            raise failures.pop()
        return StubNetwork()

    monkeypatch.setattr(network.node, "prepare", prepare)
    return calls


async def test_sandboxes_wait_for_the_pod_cidr_then_attach(
    tmp_path: Path, prepared: list[tuple[network_config.NetworkConfig, list[str]]]
) -> None:
    clock = clock_.FakeClock()
    client = NodeClient()
    runtime = fake.FakeRuntime()
    live = await runtime.run_pod_sandbox(
        cri.PodSandboxConfig(metadata=cri.PodMeta(name="p", namespace="ns", uid="u"))
    )
    net = network.NodeNetwork(node_name="n1", data_dir=tmp_path, clock=clock)
    ready = asyncio.Event()
    task = asyncio.create_task(net.run(client, runtime, ready))  # type: ignore[arg-type]
    attach = asyncio.create_task(
        net.setup(netns=tmp_path / "ns", container_id="s1", namespace="ns", name="p", uid="u")
    )
    await asyncio.sleep(0)
    client.node = {"metadata": {"name": "n1"}, "spec": {}}  # registered, no CIDR yet
    await clock.run_for(network.POLL)
    assert not attach.done()
    client.node["spec"]["podCIDR"] = "10.42.3.0/24"
    await clock.run_for(network.POLL)
    ready.set()  # the agent has reloaded its runtime's sandboxes
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(prepared) == 1  # the first prepare failed: retried after RETRY
    assert not attach.done()
    await clock.run_for(network.RETRY)
    got = await asyncio.wait_for(attach, 1)
    await asyncio.wait_for(task, 1)
    assert got.ip == "10.42.3.2"
    cfg, seen_live = prepared[-1]
    assert str(cfg.pod_cidr) == "10.42.3.0/24"
    assert seen_live == [live]
    assert net.pod_cidr == "10.42.3.0/24"
