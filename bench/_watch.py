"""The watch-delivery scenario: N watchers on one namespace's ConfigMaps, then creates at a
steady pace; for every (watcher, create) pair, the time from the create's send (and from its
201) to the event's arrival at that watcher."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

import _client
import aiohttp
from _report import ms, percentile

MARKER = re.compile(rb'"name":"(wm-\d+)"')
BATCH = 50  # connections opened at once: stay under the server's listen backlog


async def open_watches(creds: _client.Credentials, path: str, n: int) -> list[_client.WatchStream]:
    streams: list[_client.WatchStream] = []
    try:
        for first in range(0, n, BATCH):
            batch = range(first, min(n, first + BATCH))
            streams += await asyncio.gather(
                *(_client.WatchStream.open(creds, path, MARKER) for _ in batch)
            )
    except BaseException:
        close(streams)
        raise
    return streams


def close(streams: list[_client.WatchStream]) -> None:
    for s in streams:
        s.close()


async def paced_creates(
    client: aiohttp.ClientSession, path: str, body: Any, writes: int, pace: float
) -> tuple[dict[bytes, float], dict[bytes, float]]:
    """Create wm-0..wm-<writes-1> one after another at ``pace``/s: (send times, ack times)."""
    sent: dict[bytes, float] = {}
    acked: dict[bytes, float] = {}
    start = time.perf_counter() + 0.05
    for i in range(writes):
        delay = start + i / pace - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        name = f"wm-{i}"
        sent[name.encode()] = time.perf_counter()
        await _client.request(client, "POST", path, body(name), expect=201)
        acked[name.encode()] = time.perf_counter()
    return sent, acked


async def wait_delivered(streams: list[_client.WatchStream], writes: int, deadline: float) -> None:
    """Until every watcher saw every write, or for ``deadline`` seconds at most."""
    for s in streams:
        s.want = writes
        if len(s.arrivals) >= writes:
            s.complete.set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(deadline):
            await asyncio.gather(*(s.complete.wait() for s in streams))


def delivery_row(
    streams: list[_client.WatchStream], sent: dict[bytes, float], acked: dict[bytes, float]
) -> dict[str, Any]:
    from_send, from_ack, missing = [], [], 0
    for s in streams:
        for name, t_send in sent.items():
            arrived = s.arrivals.get(name)
            if arrived is None:
                missing += 1
                continue
            from_send.append(arrived - t_send)
            from_ack.append(arrived - acked[name])
    return {
        "watchers": len(streams),
        "writes": len(sent),
        "deliveries": len(from_send),
        "missing": missing,
        "p50 ms": ms(percentile(from_send, 0.5)),
        "p99 ms": ms(percentile(from_send, 0.99)),
        "max ms": ms(max(from_send, default=float("nan"))),
        "p50 from ack": ms(percentile(from_ack, 0.5)),
        "p99 from ack": ms(percentile(from_ack, 0.99)),
    }
