"""The conflist written from a node's podCIDR."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from kybern.network import config

pytestmark = pytest.mark.timeout(10)


def make(tmp_path: Path, cidr: str = "10.42.3.0/24") -> config.NetworkConfig:
    return config.NetworkConfig.from_pod_cidr(cidr, tmp_path)


def test_bridge_then_portmap_with_host_local_over_the_pod_cidr(tmp_path: Path) -> None:
    conflist = config.conflist(make(tmp_path))
    assert conflist["cniVersion"] == "1.0.0"
    assert conflist["name"] == "kybern"
    bridge, portmap = conflist["plugins"]
    assert bridge["type"] == "bridge"
    assert bridge["bridge"] == "kybern0"
    assert bridge["isGateway"] is True
    assert bridge["hairpinMode"] is True
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "10.42.3.0/24", "gateway": "10.42.3.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(tmp_path / "ipam"),
    }
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}


def test_loopback_is_a_separate_network(tmp_path: Path) -> None:
    assert config.loopback(make(tmp_path)) == {
        "cniVersion": "1.0.0",
        "name": "cni-loopback",
        "type": "loopback",
    }


def test_a_host_bit_cidr_is_normalised(tmp_path: Path) -> None:
    cfg = make(tmp_path, "10.42.3.7/24")
    assert cfg.pod_cidr == ipaddress.IPv4Network("10.42.3.0/24")
    assert str(cfg.gateway) == "10.42.3.1"


@pytest.mark.parametrize("cidr", ["fd00::/64", "not-a-cidr", "10.0.0.1/31"])
def test_unusable_pod_cidrs_are_refused(tmp_path: Path, cidr: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the CIDR
        make(tmp_path, cidr)


def test_mtu_only_when_set(tmp_path: Path) -> None:
    cfg = config.NetworkConfig.from_pod_cidr("10.42.3.0/24", tmp_path, mtu=1400)
    assert config.bridge_plugin(cfg)["mtu"] == 1400
    assert "mtu" not in config.bridge_plugin(make(tmp_path))


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    cfg = make(tmp_path)
    main, lo = config.write(cfg, tmp_path / "net.d")
    assert json.loads(main.read_text()) == config.conflist(cfg)
    assert config.read(main) == config.conflist(cfg)
    as_list = config.read(lo)
    assert as_list["name"] == "cni-loopback"
    assert as_list["plugins"] == [{"type": "loopback"}]
    assert sorted(p.name for p in (tmp_path / "net.d").iterdir()) == [
        "10-kybern.conflist",
        "99-loopback.conf",
    ]
