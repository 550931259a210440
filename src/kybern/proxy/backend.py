"""What the proxier needs from a data-path backend, and the shared full-or-partial sync logic
of the two kernel backends (nftables, iptables).

A kernel backend renders text for a command that applies it in one transaction (``nft -f -``,
``iptables-restore --noflush``). It remembers the rule set it last applied: the next sync
renders only the difference; a failed apply, a changed node configuration or an unknown state
(first sync after a start) renders everything. A full render replaces only kybern's own table
or chains, atomically, so established connections (their conntrack NAT entries) survive a
proxy restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from kybern.proxy import rules

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str], str], Awaitable[None]]
Reader = Callable[[Sequence[str]], Awaitable[str]]


class ApplyError(Exception):
    """The command that applies rules failed."""


class Backend(Protocol):
    name: str

    async def sync(self, ruleset: rules.RuleSet) -> str:
        """Make the data path match ``ruleset``; returns "full", "partial" or "noop"."""
        ...

    async def cleanup(self) -> None:
        """Remove everything this backend ever installed (mode switches, uninstall)."""
        ...

    async def close(self) -> None: ...


async def run_command(argv: Sequence[str], stdin: str) -> None:
    """Run ``argv`` with ``stdin``; raise :class:`ApplyError` with its stderr on failure."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate(stdin.encode())
    if proc.returncode != 0:
        raise ApplyError(f"{' '.join(argv[:4])}: exit {proc.returncode}: {err.decode()[:2000]}")


async def read_command(argv: Sequence[str]) -> str:
    """The stdout of ``argv``; :class:`ApplyError` on failure."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise ApplyError(f"{' '.join(argv[:4])}: exit {proc.returncode}: {err.decode()[:2000]}")
    return out.decode()


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside network namespace ``netns`` (tests, benchmarks) or here."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


class Renderer(Protocol):
    def full(self, ruleset: rules.RuleSet) -> str: ...

    def partial(self, old: rules.RuleSet, new: rules.RuleSet, change: rules.Diff) -> str: ...


class TransactionalBackend:
    """Full-or-partial sync over a renderer and a command that applies its text atomically."""

    name = "?"

    def __init__(self, renderer: Renderer, argv: Sequence[str], *, runner: Runner) -> None:
        self.renderer = renderer
        self.argv = list(argv)
        self.runner = runner
        self.applied: rules.RuleSet | None = None  # None: kernel state unknown
        self.full_syncs = 0
        self.partial_syncs = 0

    async def sync(self, ruleset: rules.RuleSet) -> str:
        old = self.applied
        if old is not None:
            change = rules.diff(old, ruleset)
            if change.empty:
                return "noop"
            if not change.node_changed:
                try:
                    await self._apply(self.renderer.partial(old, ruleset, change), ruleset)
                    self.partial_syncs += 1
                    return "partial"
                except ApplyError as exc:
                    log.warning("%s partial sync failed, resyncing fully: %s", self.name, exc)
        self.applied = None
        await self.prepare_full()
        await self._apply(self.renderer.full(ruleset), ruleset)
        self.full_syncs += 1
        return "full"

    async def prepare_full(self) -> None:
        """Hook run before every full sync."""

    async def _apply(self, text: str, ruleset: rules.RuleSet) -> None:
        self.applied = None  # if the command fails half-way we no longer know the state
        await self.runner(self.argv, text)
        self.applied = ruleset

    async def close(self) -> None:
        """Leave the rules in place: a restarted proxy takes over without dropping traffic."""
