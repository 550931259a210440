"""The objects of a selector-less Service pointing at one address, and their correction."""

from __future__ import annotations

from kybern.api import fixedendpoints as fe

PORTS = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]


def test_objects() -> None:
    eps = fe.endpoints("kube-dns", "kube-system", "10.0.0.5", PORTS, {"k8s-app": "kube-dns"})
    assert eps["metadata"]["labels"] == {"k8s-app": "kube-dns", fe.SKIP_MIRROR: "true"}
    assert eps["subsets"][0]["addresses"] == [{"ip": "10.0.0.5"}]
    assert eps["subsets"][0]["ports"][1] == {"name": "dns-tcp", "port": 53, "protocol": "TCP"}
    slice_ = fe.endpoint_slice("kubernetes", "default", "fd00::1", PORTS[:1], {})
    assert slice_["addressType"] == "IPv6"
    assert slice_["metadata"]["labels"] == {fe.SERVICE_NAME_LABEL: "kubernetes"}


def test_corrected_keeps_what_others_added_and_fixes_the_rest() -> None:
    wanted = fe.endpoints("kubernetes", "default", "10.0.0.5", [("https", 6443, "TCP")], {})
    assert fe.corrected(wanted, wanted, ("subsets",)) is None
    current = fe.endpoints("kubernetes", "default", "10.0.0.9", [("https", 6443, "TCP")], {})
    current["metadata"]["labels"] = {"extra": "kept"}
    current["metadata"]["resourceVersion"] = "7"
    fixed = fe.corrected(current, wanted, ("subsets",))
    assert fixed is not None
    assert fixed["subsets"] == wanted["subsets"]
    assert fixed["metadata"]["labels"] == {"extra": "kept", fe.SKIP_MIRROR: "true"}
    assert fixed["metadata"]["resourceVersion"] == "7"
    assert current["subsets"][0]["addresses"] == [{"ip": "10.0.0.9"}]  # not modified


def test_ports_match() -> None:
    wanted = [{"name": "https", "port": 443}]
    assert fe.ports_match([{"name": "https", "port": 443, "protocol": "TCP"}], wanted)
    assert not fe.ports_match([{"name": "https", "port": 80}], wanted)
    assert not fe.ports_match(["junk"], wanted)
    assert not fe.ports_match(None, wanted)
