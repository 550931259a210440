"""The CNI environment protocol: environment, CNI_ARGS, errors, version negotiation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kybern.network import invoke

pytestmark = pytest.mark.timeout(10)

DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))


def test_add_environment_carries_every_cni_variable() -> None:
    call = invoke.Invocation(
        "ADD", "abc123", "/run/netns/x", "eth0", [("K8S_POD_NAMESPACE", "default")]
    )
    env = invoke.environment(call, DIRS)
    assert env == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "abc123",
        "CNI_NETNS": "/run/netns/x",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default",
        "CNI_PATH": "/usr/lib/cni:/opt/cni/bin",
        "PATH": invoke.SYSTEM_PATH,
    }


def test_version_environment_has_only_the_command() -> None:
    env = invoke.environment(invoke.Invocation("VERSION"), DIRS)
    assert set(env) == {"CNI_COMMAND", "CNI_PATH", "PATH"}


def test_cni_args_refuse_separators_in_values() -> None:
    with pytest.raises(ValueError, match="CNI_ARGS"):
        invoke.cni_args([("K8S_POD_NAME", "a;b")])


def test_a_plugin_error_document_becomes_a_cni_error() -> None:
    doc = {"code": 7, "msg": "invalid config", "details": "bridge name too long"}
    err = invoke.parse_error("bridge", "ADD", 1, json.dumps(doc).encode(), b"")
    assert (err.plugin, err.command, err.code) == ("bridge", "ADD", 7)
    assert err.msg == "invalid config"
    assert str(err) == (
        "CNI plugin bridge ADD failed (code 7: invalid network config): invalid config: "
        "bridge name too long"
    )


def test_a_crash_without_a_document_keeps_stderr() -> None:
    err = invoke.parse_error("portmap", "DEL", 2, b"panic", b"goroutine 1 [running]")
    assert err.code == 999
    assert "exit status 2" in str(err)
    assert "goroutine 1" in err.details


def test_find_refuses_paths_and_names_the_directories(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid CNI plugin type"):
        invoke.find("../bridge", [tmp_path])
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        invoke.find("bridge", [tmp_path])


@pytest.mark.parametrize(
    ("wanted", "supported", "chosen"),
    [
        ("1.0.0", [["0.4.0", "1.0.0"], ["1.0.0"]], "1.0.0"),
        ("1.0.0", [["0.3.1", "0.4.0"], ["0.4.0", "1.0.0"]], "0.4.0"),
        ("0.4.0", [["0.4.0", "1.0.0"]], "0.4.0"),
    ],
)
def test_negotiate_picks_the_best_shared_version(
    wanted: str, supported: list[list[str]], chosen: str
) -> None:
    assert invoke.negotiate(wanted, supported) == chosen


def test_negotiate_fails_when_nothing_is_shared() -> None:
    with pytest.raises(invoke.CNIError, match="no CNI version"):
        invoke.negotiate("1.0.0", [["0.1.0"], ["1.0.0"]])
