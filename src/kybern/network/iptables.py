"""A thin asyncio wrapper around the ``iptables`` command (nft backend on Debian; DESIGN.md §7).

Only what the network package needs: run a command and get its output, ask whether a rule
exists, list a table's rules (``-S``) parsed into argument lists.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence

IPTABLES = "iptables"


class IptablesError(RuntimeError):
    """iptables refused a command."""


async def run(*args: str, check: bool = True) -> tuple[int, str]:
    """``iptables -w ARGS``: (exit status, stdout); IptablesError if ``check`` and it fails."""
    proc = await asyncio.create_subprocess_exec(
        IPTABLES,
        "-w",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    code = proc.returncode or 0
    if check and code != 0:
        raise IptablesError(f"iptables {' '.join(args)}: {stderr.decode().strip()}")
    return code, stdout.decode()


async def exists(table: str, chain: str, rule: Sequence[str]) -> bool:
    code, _ = await run("-t", table, "-C", chain, *rule, check=False)
    return code == 0


async def ensure_chain(table: str, chain: str) -> None:
    """Create ``chain`` if it is missing."""
    code, _ = await run("-t", table, "-N", chain, check=False)
    if code != 0 and not await chain_exists(table, chain):
        raise IptablesError(f"cannot create chain {chain} in table {table}")


async def chain_exists(table: str, chain: str) -> bool:
    code, _ = await run("-t", table, "-S", chain, "1", check=False)
    return code == 0


async def rules(table: str, chain: str = "") -> list[list[str]]:
    """``iptables -S`` as argument lists (``["-A", CHAIN, ...]``; ``-N``/``-P`` lines too)."""
    _, out = await run("-t", table, "-S", *([chain] if chain else []), check=False)
    return [shlex.split(line) for line in out.splitlines() if line.strip()]


async def delete_chain(table: str, chain: str) -> None:
    """Flush and delete ``chain`` (missing: nothing to do)."""
    await run("-t", table, "-F", chain, check=False)
    await run("-t", table, "-X", chain, check=False)
