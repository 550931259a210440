"""PodNetwork's chaining semantics, with fake plugins (shell scripts) in a temp directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kybern.network import cni, result

pytestmark = pytest.mark.timeout(10)

ADD_RESULT = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "vethX"}, {"name": "eth0", "sandbox": "/run/netns/p"}],
    "ips": [{"interface": 1, "address": "10.42.0.7/24", "gateway": "10.42.0.1"}],
}

PLUGIN = """#!/bin/sh
log={log}
echo "$(basename "$0") $CNI_COMMAND $CNI_IFNAME" >> "$log/calls"
{{ env | grep '^CNI_' | sort; }} > "$log/env-$(basename "$0")-$CNI_COMMAND-$CNI_IFNAME"
cat > "$log/stdin-$(basename "$0")-$CNI_COMMAND-$CNI_IFNAME"
case "$CNI_COMMAND" in
  VERSION) echo '{{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}}' ;;
  ADD) {add} ;;
esac
"""


def install(directory: Path, log: Path, name: str, add: str) -> None:
    path = directory / name
    path.write_text(PLUGIN.format(log=log, add=add))
    path.chmod(0o755)


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    directory, log = tmp_path / "bin", tmp_path / "log"
    directory.mkdir()
    log.mkdir()
    result = json.dumps(ADD_RESULT)
    install(directory, log, "bridge", f"echo '{result}'")
    install(directory, log, "portmap", f"echo '{result}'")  # passes prevResult on
    install(directory, log, "loopback", 'echo \'{"cniVersion":"1.0.0"}\'')
    install(directory, log, "failing", 'echo \'{"code":11,"msg":"try later"}\'; exit 1')
    return tmp_path


def network(root: Path, *types: str) -> cni.PodNetwork:
    plugins: list[dict[str, Any]] = [{"type": t} for t in types or ("bridge",)]
    if not types:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
    return cni.PodNetwork(
        conflist={"cniVersion": "1.0.0", "name": "kybern", "plugins": plugins},
        loopback={"cniVersion": "1.0.0", "name": "cni-loopback", "type": "loopback"},
        results_dir=root / "results",
        plugin_dirs=[root / "bin"],
    )


def calls(root: Path) -> list[str]:
    return [c for c in (root / "log" / "calls").read_text().splitlines() if "VERSION" not in c]


def stdin(root: Path, plugin: str, command: str, ifname: str = "eth0") -> dict[str, Any]:
    data = json.loads((root / "log" / f"stdin-{plugin}-{command}-{ifname}").read_text())
    assert isinstance(data, dict)
    return data


def env(root: Path, plugin: str, command: str, ifname: str = "eth0") -> dict[str, str]:
    text = (root / "log" / f"env-{plugin}-{command}-{ifname}").read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


async def setup(net: cni.PodNetwork, ports: list[cni.PortMapping] | None = None) -> cni.Attachment:
    return await net.setup(
        netns=Path("/run/netns/p"), container_id="sandbox1", namespace="default",
        name="web", uid="u-1", port_mappings=ports or [],
    )  # fmt: skip


async def test_add_chains_prev_result_and_runtime_config(plugins: Path) -> None:
    net = network(plugins)
    att = await setup(net, [cni.PortMapping(8080, 80, "TCP")])
    assert (att.ip, att.gateway, att.host_interface) == ("10.42.0.7", "10.42.0.1", "vethX")
    bridge = stdin(plugins, "bridge", "ADD")
    assert bridge == {"type": "bridge", "name": "kybern", "cniVersion": "1.0.0"}
    portmap = stdin(plugins, "portmap", "ADD")
    assert portmap["prevResult"] == ADD_RESULT
    assert portmap["runtimeConfig"] == {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]
    }
    assert sorted(calls(plugins)) == ["bridge ADD eth0", "loopback ADD lo", "portmap ADD eth0"]


async def test_the_kubelet_cni_args_reach_the_plugin(plugins: Path) -> None:
    await setup(network(plugins))
    assert env(plugins, "bridge", "ADD") == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "sandbox1",
        "CNI_NETNS": "/run/netns/p",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
        "K8S_POD_INFRA_CONTAINER_ID=sandbox1;K8S_POD_UID=u-1",
        "CNI_PATH": str(plugins / "bin"),
    }


async def test_del_runs_in_reverse_with_the_cached_result(plugins: Path) -> None:
    net = network(plugins)
    await setup(net, [cni.PortMapping(8080, 80)])
    assert net.cached_ids() == ["sandbox1"]
    (plugins / "log" / "calls").unlink()
    await net.teardown(netns=plugins / "gone", container_id="sandbox1")
    main = [c for c in calls(plugins) if c.endswith("eth0")]
    assert main == ["portmap DEL eth0", "bridge DEL eth0"]
    assert "loopback DEL lo" in calls(plugins)
    assert stdin(plugins, "bridge", "DEL")["prevResult"] == ADD_RESULT
    assert stdin(plugins, "portmap", "DEL")["runtimeConfig"]["portMappings"][0]["hostPort"] == 8080
    assert env(plugins, "bridge", "DEL")["CNI_NETNS"] == ""  # the namespace is gone
    assert "K8S_POD_NAME=web" in env(plugins, "bridge", "DEL")["CNI_ARGS"]  # from the cache
    assert net.cached_ids() == []
    await net.teardown(netns=None, container_id="sandbox1")  # idempotent


async def test_a_failed_add_is_rolled_back_and_raised(plugins: Path) -> None:
    net = network(plugins, "bridge", "failing")
    with pytest.raises(cni.CNIError, match=r"failing ADD failed \(code 11: try again later\)"):
        await setup(net)
    assert "bridge DEL eth0" in calls(plugins)
    assert net.cached_ids() == []


async def test_check_needs_a_cached_result(plugins: Path) -> None:
    net = network(plugins)
    with pytest.raises(cni.CNIError, match="no cached result"):
        await net.check(
            netns=Path("/run/netns/p"), container_id="nope", namespace="d", name="n", uid="u"
        )
    await setup(net)
    await net.check(
        netns=Path("/run/netns/p"), container_id="sandbox1", namespace="d", name="n", uid="u"
    )
    assert stdin(plugins, "portmap", "CHECK")["prevResult"] == ADD_RESULT


async def test_cached_attachment_survives_a_new_instance(plugins: Path) -> None:
    await setup(network(plugins))
    assert network(plugins).cached("sandbox1") == result.parse(ADD_RESULT, ifname="eth0")
    assert network(plugins).cached("other") is None


def test_port_mappings_come_from_host_ports() -> None:
    containers: list[dict[str, Any]] = [
        {"ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9090}]},
        {"ports": [{"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "1.2.3.4"}]},
        {"name": "no-ports"},
    ]
    assert cni.port_mappings(containers) == [
        cni.PortMapping(8080, 80, "TCP"),
        cni.PortMapping(53, 53, "UDP", "1.2.3.4"),
    ]


def test_only_declared_capabilities_reach_runtime_config() -> None:
    runtime = {"portMappings": [{"hostPort": 1}], "bandwidth": {}}
    conf = cni.plugin_conf(
        {"type": "bridge"}, net_name="n", version="1.0.0", prev=None, runtime=runtime
    )
    assert "runtimeConfig" not in conf
    assert "prevResult" not in conf


def test_invalid_container_ids_never_become_paths(tmp_path: Path) -> None:
    net = cni.PodNetwork(conflist={"name": "n", "plugins": []}, results_dir=tmp_path)
    with pytest.raises(ValueError, match="invalid container id"):
        net.cached("../../etc")
    assert not os.listdir(tmp_path)
