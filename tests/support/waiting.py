"""Waiting on a condition with a deadline (never a fixed sleep), and reading CRI logs back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kybern.runtime import crilog


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(0.01)


def log_text(path: Path) -> str:
    """A CRI log's content joined back as ``kubectl logs`` shows it (both streams)."""
    if not path.exists():
        return ""
    out = []
    for line in path.read_bytes().splitlines():
        entry = crilog.parse_line(line)
        assert entry is not None, line
        out.append(entry.content + (b"" if entry.partial else b"\n"))
    return b"".join(out).decode()
