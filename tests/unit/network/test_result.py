"""Reading a CNI ADD result into the pod's attachment."""

from __future__ import annotations

import pytest

from kybern.network import result

pytestmark = pytest.mark.timeout(10)

BRIDGE_RESULT = {
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "kybern0", "mac": "46:2e:98:ef:a4:fe"},
        {"name": "veth1d26a2d2", "mac": "46:a4:e4:25:30:c6"},
        {"name": "eth0", "mac": "1a:47:79:56:cf:fe", "sandbox": "/run/netns/kybern-x"},
    ],
    "ips": [{"interface": 2, "address": "10.42.3.5/24", "gateway": "10.42.3.1"}],
    "routes": [{"dst": "0.0.0.0/0"}],
}


def test_the_bridge_result() -> None:
    att = result.parse(BRIDGE_RESULT, ifname="eth0")
    assert att.ip == "10.42.3.5"
    assert att.prefix_length == 24
    assert att.gateway == "10.42.3.1"
    assert att.interface == "eth0"
    assert att.mac == "1a:47:79:56:cf:fe"
    assert att.host_interface == "veth1d26a2d2"
    assert att.ips == ("10.42.3.5",)


def test_a_0_4_0_result_with_versions_and_no_interface_index() -> None:
    old = {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.0.9/16"}]}
    att = result.parse(old, ifname="eth0")
    assert (att.ip, att.prefix_length, att.gateway, att.interface) == ("10.1.0.9", 16, "", "eth0")


def test_dual_stack_puts_ipv4_first() -> None:
    dual = {
        "interfaces": [{"name": "eth0", "sandbox": "/ns"}],
        "ips": [
            {"interface": 0, "address": "fd00::5/64"},
            {"interface": 0, "address": "10.42.3.5/24"},
        ],
    }
    assert result.parse(dual, ifname="eth0").ips == ("10.42.3.5", "fd00::5")


def test_addresses_on_host_interfaces_are_not_the_pod_ip() -> None:
    host_only = {**BRIDGE_RESULT, "ips": [{"interface": 0, "address": "10.42.3.1/24"}]}
    with pytest.raises(result.ResultError, match="no IP address"):
        result.parse(host_only, ifname="eth0")


def test_a_bad_address_is_an_error() -> None:
    with pytest.raises(result.ResultError, match="bad address"):
        result.parse({"ips": [{"address": "banana"}]}, ifname="eth0")
