"""Durability: ``kill -9`` of a real ``kybern server`` while 64 clients create ConfigMaps and
compare-and-swap update them over HTTPS. After a restart on the same data directory:

- every acknowledged write is there, with a value at least as new as the acknowledged one
  (and exactly the acknowledged resourceVersion when the value is the acknowledged one);
- no value appears that no client ever sent, and no object nobody created;
- resourceVersions never go backwards: the restarted store's revision is at least every
  acknowledged one, and new writes get higher resourceVersions than all of them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kybern.testing import server_process
from tests.support import cluster

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]
CLIENTS = 64
UPDATES_PER_OBJECT = 4
KILL_AFTER_ACKS = 3000
KILL_DEADLINE = 4.0  # seconds of load at most before the kill
NS = "durable"
GONE = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


@dataclass
class Ledger:
    """What every client sent and what the server acknowledged, per object name."""

    sent: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    acked: dict[str, list[tuple[str, int]]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    acks: int = 0
    errors: list[str] = field(default_factory=list)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)  # time to kill the server

    def send(self, name: str, value: str) -> None:
        self.sent[name].append(value)

    def ack(self, name: str, value: str, reply: dict[str, Any]) -> int:
        assert reply["data"]["v"] == value, reply
        rv = int(reply["metadata"]["resourceVersion"])
        self.acked[name].append((value, rv))
        self.acks += 1
        if self.acks >= KILL_AFTER_ACKS:
            self.loaded.set()
        return rv

    @property
    def max_rv(self) -> int:
        return max(rv for history in self.acked.values() for _, rv in history)


async def _client(session: aiohttp.ClientSession, base: str, worker: int, ledger: Ledger) -> None:
    """Create objects one after another, each followed by CAS updates, until the server dies."""
    collection = f"{base}/api/v1/namespaces/{NS}/configmaps"
    for index in range(1_000_000):
        name = f"w{worker}-{index}"
        value = f"{name}:0"
        ledger.send(name, value)
        body = {"metadata": {"name": name}, "data": {"v": value}}
        try:
            async with session.post(collection, json=body) as reply:
                if reply.status != 201:
                    ledger.errors.append(f"create {name}: {reply.status} {await reply.text()}")
                    ledger.loaded.set()
                    return
                rv = ledger.ack(name, value, await reply.json())
            for update in range(1, UPDATES_PER_OBJECT + 1):
                value = f"{name}:{update}"
                ledger.send(name, value)
                body = {
                    "metadata": {"name": name, "resourceVersion": str(rv)},
                    "data": {"v": value},
                }
                async with session.put(f"{collection}/{name}", json=body) as reply:
                    if reply.status != 200:
                        ledger.errors.append(f"update {name}: {reply.status} {await reply.text()}")
                        ledger.loaded.set()
                        return
                    rv = ledger.ack(name, value, await reply.json())
        except GONE:
            return  # the server was killed under this request


async def _wait_for_load(ledger: Ledger) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ledger.loaded.wait(), KILL_DEADLINE)


def _session(kubeconfig: Path) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=cluster.ssl_context(kubeconfig), limit=CLIENTS)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=20))


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = await asyncio.to_thread(cluster.start_server, data_dir)
    raw = cluster.RawClient(first.kubeconfig)
    assert raw.request("POST", "/api/v1/namespaces", {"metadata": {"name": NS}}).status == 201

    ledger = Ledger()
    async with _session(first.kubeconfig) as session:
        clients = [
            asyncio.create_task(_client(session, first.url, w, ledger)) for w in range(CLIENTS)
        ]
        await _wait_for_load(ledger)
        first.kill()  # SIGKILL with requests in flight
        await asyncio.wait_for(asyncio.gather(*clients), timeout=30)
    assert not ledger.errors, ledger.errors[:5]
    assert ledger.acks >= 200, f"only {ledger.acks} writes acknowledged before the kill"
    unacked = sum(len(v) for v in ledger.sent.values()) - ledger.acks
    assert unacked >= 1, "the kill should have caught writes in flight"
    print(f"{ledger.acks} acknowledged writes, {unacked} in flight at the kill")

    second = await asyncio.to_thread(
        server_process.ServerProcess(data_dir=data_dir, extra_args=list(cluster.API_ONLY)).start,
        30.0,
    )
    try:
        _check_recovered(cluster.RawClient(second.kubeconfig), ledger)
    finally:
        second.stop()
    assert "Traceback" not in second.logs(), second.logs()


def _check_recovered(raw: cluster.RawClient, ledger: Ledger) -> None:
    listed = raw.get(f"/api/v1/namespaces/{NS}/configmaps").json
    stored = {item["metadata"]["name"]: item for item in listed["items"]}
    max_acked = ledger.max_rv
    assert int(listed["metadata"]["resourceVersion"]) >= max_acked

    unknown = set(stored) - set(ledger.sent)
    assert not unknown, f"objects nobody created: {sorted(unknown)[:5]}"
    for name, history in ledger.acked.items():
        assert name in stored, f"acknowledged {name} is gone"
        value = stored[name]["data"]["v"]
        assert value in ledger.sent[name], f"{name} holds {value!r}, never sent"
        acked_value, acked_rv = history[-1]
        rv = int(stored[name]["metadata"]["resourceVersion"])
        position = ledger.sent[name].index(value)
        assert position >= ledger.sent[name].index(acked_value), (name, value, acked_value)
        if value == acked_value:
            assert rv == acked_rv, (name, rv, acked_rv)
        else:
            assert rv > acked_rv, (name, rv, acked_rv)
        assert [r for _, r in history] == sorted({r for _, r in history})  # per-object order
    for name in set(stored) - set(ledger.acked):  # created, never acknowledged: allowed
        assert stored[name]["data"]["v"] in ledger.sent[name]

    # the restarted store moves forward from where it was, never back
    fresh = raw.request(
        "POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "after-restart"}}
    )
    assert fresh.status == 201, fresh.body
    assert int(fresh.json["metadata"]["resourceVersion"]) > max(
        max_acked, *(int(o["metadata"]["resourceVersion"]) for o in stored.values())
    )
    # and compare-and-swap still works on recovered objects
    name, item = next(iter(stored.items()))
    item["data"]["v"] = "post-restart"
    updated = raw.request("PUT", f"/api/v1/namespaces/{NS}/configmaps/{name}", item)
    assert updated.status == 200, updated.body
    stale = raw.request("PUT", f"/api/v1/namespaces/{NS}/configmaps/{name}", item)
    assert stale.status == 409
