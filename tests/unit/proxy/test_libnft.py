"""The in-process libnftables context (root only: it changes rules in a namespace it creates)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from kybern.proxy import backend, libnft, nftables, rules

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"),
        reason="needs root, iproute2 and nft",
    ),
    pytest.mark.timeout(60),
]


def tables(netns: str | None) -> str:
    argv = backend.in_netns(netns, ["nft", "list", "tables"])
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"kybern-libnft-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def test_library_loads_here() -> None:
    # libnftables1 is a dependency of the nft package: where nft exists, so does the library.
    assert libnft.available()


async def test_applies_in_its_namespace_only(netns: str) -> None:
    ctx = libnft.Context(netns=netns)
    try:
        await ctx.runner(["nft", "-f", "-"], "add table ip kybern-libnft-test\n")
    finally:
        await ctx.close()
    assert "kybern-libnft-test" in tables(netns)
    assert "kybern-libnft-test" not in tables(None)  # the caller's namespace is untouched


async def test_error_says_what_failed(netns: str) -> None:
    ctx = libnft.Context(netns=netns)
    try:
        with pytest.raises(backend.ApplyError, match="No such file or directory"):
            await ctx.runner([], "add chain ip no-such-table c\n")
        await ctx.runner([], "add table ip after-error\n")  # the context still works
    finally:
        await ctx.close()
    assert "after-error" in tables(netns)


async def test_backend_uses_it_by_default(netns: str) -> None:
    be = nftables.NftablesBackend(netns=netns)
    empty = rules.RuleSet(node_name="n1", cluster_cidr="10.42.0.0/16", services={})
    try:
        assert await be.sync(empty) == "full"
        assert be._context is not None
    finally:
        await be.cleanup()
        await be.close()
    assert "kybern" not in tables(netns)
