"""What cleanup finds of dead sandboxes: host-local leases and portmap's per-pod chains."""

from __future__ import annotations

import ipaddress
import shlex
from pathlib import Path

import pytest

from kybern.network import cleanup, cni, config, hostrules, iptables

pytestmark = pytest.mark.timeout(10)

NAT = """\
-P PREROUTING ACCEPT
-N CNI-DN-4469c980a90353ffa69b5
-N CNI-HOSTPORT-DNAT
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A CNI-DN-4469c980a90353ffa69b5 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.1.0.3:80
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"kybern\\" id: \\"exp1\\"" -m multiport --dports 18080 -j CNI-DN-4469c980a90353ffa69b5
-A CNI-HOSTPORT-DNAT -p udp -m comment --comment "dnat name: \\"other\\" id: \\"x\\"" -m multiport --dports 53 -j CNI-DN-1
"""


def test_portmap_owners_by_network() -> None:
    rules = [shlex.split(line) for line in NAT.splitlines()]
    assert cleanup.portmap_owners(rules, "kybern") == {"exp1": ["CNI-DN-4469c980a90353ffa69b5"]}
    assert cleanup.portmap_owners(rules, "other") == {"x": ["CNI-DN-1"]}


def test_leases_map_ips_to_container_ids(tmp_path: Path) -> None:
    net = tmp_path / "kybern"
    net.mkdir()
    (net / "10.42.0.2").write_text("abc\r\neth0")
    (net / "10.42.0.3").write_text("def\neth0")
    (net / "last_reserved_ip.0").write_text("10.42.0.3")
    (net / "lock").write_text("")
    assert cleanup.leases(tmp_path, "kybern") == {"10.42.0.2": "abc", "10.42.0.3": "def"}
    assert cleanup.leases(tmp_path, "missing") == {}


def test_host_rules_masquerade_only_off_cluster_traffic() -> None:
    rules = hostrules.nat_rules(
        ipaddress.IPv4Network("10.42.3.0/24"), ipaddress.IPv4Network("10.42.0.0/16")
    )
    assert rules == [
        ["-s", "10.42.3.0/24", "-d", "10.42.0.0/16", "-j", "RETURN"],
        ["-s", "10.42.3.0/24", "-d", "10.42.3.0/24", "-j", "RETURN"],
        ["-s", "10.42.3.0/24", "!", "-d", "224.0.0.0/4", "-j", "MASQUERADE"],
    ]
    assert hostrules.forward_rules("kybern0") == [
        ["-i", "kybern0", "-j", "ACCEPT"],
        ["-o", "kybern0", "-j", "ACCEPT"],
    ]
    assert hostrules.nat_chain("kybern0") == "KYBERN-POST-kybern0"


async def test_gc_never_turns_odd_lease_owners_into_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config.NetworkConfig.from_pod_cidr("10.42.0.0/24", tmp_path, name="kybern")
    leases_dir = cfg.ipam_dir / "kybern"
    leases_dir.mkdir(parents=True)
    (leases_dir / "10.42.0.2").write_text("../../etc\neth0")
    torn_down: list[str] = []

    async def no_rules(table: str, chain: str = "") -> list[list[str]]:
        return []

    async def teardown(**kwargs: object) -> None:
        torn_down.append(str(kwargs["container_id"]))

    network = cni.PodNetwork.from_config(cfg)
    monkeypatch.setattr(iptables, "rules", no_rules)
    monkeypatch.setattr(network, "teardown", teardown)
    report = await cleanup.gc(network, cfg, [], netns_dir=tmp_path / "netns")
    assert torn_down == []
    assert report.leases == ["10.42.0.2"]  # the lease itself is still released
    assert not (leases_dir / "10.42.0.2").exists()
