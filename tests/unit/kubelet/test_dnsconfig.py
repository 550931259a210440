"""Pod DNS settings per dnsPolicy, dnsConfig merging, and Kubernetes' limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kybern.kubelet import dnsconfig
from kybern.runtime import cri

pytestmark = pytest.mark.timeout(10)
HOST = """# generated
nameserver 192.0.2.53
nameserver 192.0.2.54 ; second
search corp.example. lab.example
options timeout:2 attempts:3
"""


@pytest.fixture
def resolv(tmp_path: Path) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text(HOST)
    return path


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "team", "uid": "u"}, "spec": spec}


def config(p: dict[str, Any], resolv: Path | None, **kw: Any) -> cri.DNSConfig:
    kw.setdefault("cluster_dns", ["10.96.0.10"])
    return dnsconfig.dns_config(p, cluster_domain="cluster.local", host_resolv_conf=resolv, **kw)


def test_cluster_first(resolv: Path) -> None:
    assert config(pod(), resolv) == cri.DNSConfig(
        servers=("10.96.0.10",),
        searches=(
            "team.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "corp.example",
            "lab.example",
        ),
        options=("ndots:5",),
    )


def test_host_network_falls_back_unless_with_host_net(resolv: Path) -> None:
    host = config(pod(hostNetwork=True), resolv)
    assert host == cri.DNSConfig(
        ("192.0.2.53", "192.0.2.54"), ("corp.example", "lab.example"), ("timeout:2", "attempts:3")
    )
    assert config(pod(dnsPolicy="Default"), resolv) == host
    with_net = config(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), resolv)
    assert with_net.servers == ("10.96.0.10",)


def test_missing_cluster_dns_falls_back_with_warning(resolv: Path) -> None:
    warnings: list[str] = []
    result = config(pod(), resolv, cluster_dns=[], warnings=warnings)
    assert result.servers == ("192.0.2.53", "192.0.2.54")
    assert 'cannot create Pod using "ClusterFirst" policy' in warnings[0]


def test_none_with_dns_config_and_option_merge(resolv: Path) -> None:
    extra = {
        "nameservers": ["1.1.1.1"],
        "searches": ["a.example", "a.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
    }
    assert config(pod(dnsPolicy="None", dnsConfig=extra), resolv) == cri.DNSConfig(
        ("1.1.1.1",), ("a.example",), ("ndots:2", "edns0")
    )
    merged = config(pod(dnsConfig=extra), resolv)
    assert merged.servers == ("10.96.0.10", "1.1.1.1")
    assert merged.options == ("ndots:2", "edns0")


def test_no_resolv_conf_means_localhost() -> None:
    result = config(pod(dnsPolicy="Default"), None, node_ips=["192.0.2.1"])
    assert result == cri.DNSConfig(("127.0.0.1",), (".",), ())


def test_limits(resolv: Path) -> None:
    warnings: list[str] = []
    extra = {
        "nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9"],
        "searches": [f"d{i}.example" for i in range(40)] + ["x" * 254],
    }
    result = config(pod(dnsConfig=extra), resolv, warnings=warnings)
    assert result.servers == ("10.96.0.10", "1.1.1.1", "8.8.8.8")
    assert len(result.searches) == 32
    assert warnings[0].startswith("Nameserver limits were exceeded")
    assert warnings[1].startswith(
        "Search Line limits were exceeded, some search paths have been omitted"
    )
    long = [("y" * 250) + str(i) for i in range(10)]
    kept, cut = dnsconfig.fit_searches(long)
    assert cut
    assert len(" ".join(kept)) <= 2048
    assert kept == long[: len(kept)]
