"""Consistent reads when the watch cache lags: served from the store, never a 504."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from kybern import client as kclient

from .conftest import start_server

pytestmark = pytest.mark.timeout(30)


async def test_reads_and_writes_fall_back_to_the_store(tmp_path: Path) -> None:
    # A LIST waits watchcache.WAIT_TIMEOUT (3 s) for the cache before reading the store.
    api = await start_server(tmp_path)
    try:
        c = kclient.Client(kclient.InProcessTransport(api.local_api()))
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}}
        await c.create(
            {**cm, "metadata": {"name": "a", "namespace": "default"}}, namespace="default"
        )
        assert api.cache is not None
        follow = api.cache._tasks[0]  # stop the cache following the store: it lags from now on
        follow.cancel()
        with contextlib.suppress(BaseException):
            await follow
        patched = await c.patch("v1", "ConfigMap", "a", {"data": {"k": "v"}}, namespace="default")
        assert patched["data"] == {"k": "v"}
        got = await c.get("v1", "ConfigMap", "a", namespace="default")
        assert got["data"] == {"k": "v"}
        assert got["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
        listed = await c.list("v1", "ConfigMap", namespace="default")
        assert [i["data"] for i in listed["items"] if i["metadata"]["name"] == "a"] == [{"k": "v"}]
    finally:
        await api.stop()
