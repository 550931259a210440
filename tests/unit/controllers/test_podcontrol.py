"""PodControl: expectations, Events, and a terminating namespace that stops creation quietly."""

from __future__ import annotations

from typing import Any

from kybern import client as kclient
from kybern.controllers import events, podcontrol

OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "rs", "namespace": "ns", "uid": "u"},
}
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}


class Client:
    def __init__(self, create_error: Exception | None = None) -> None:
        self.create_error = create_error
        self.deleted: list[str] = []

    async def create(self, obj: Any) -> Any:
        if self.create_error is not None:
            raise self.create_error
        return obj

    async def delete(self, api_version: str, kind: str, name: str, **_: Any) -> None:
        self.deleted.append(name)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason))


class Expectations:
    def __init__(self) -> None:
        self.log: list[str] = []

    def created(self, key: str, pod: Any) -> None:
        self.log.append("created")

    def deleted(self, key: str, pod: Any) -> None:
        self.log.append("deleted")


def control(client: Client) -> tuple[podcontrol.PodControl, Recorder, Expectations]:
    recorder, expectations = Recorder(), Expectations()
    return podcontrol.PodControl(client, recorder, expectations), recorder, expectations  # type: ignore[arg-type]


async def test_create_and_delete_record_expectations_and_events() -> None:
    client = Client()
    pc, recorder, expectations = control(client)
    assert await pc.create("ns/rs", OWNER, POD) == POD
    await pc.delete("ns/rs", OWNER, POD)
    assert expectations.log == ["created", "deleted"]
    assert recorder.events == [
        (events.NORMAL, "SuccessfulCreate"),
        (events.NORMAL, "SuccessfulDelete"),
    ]
    assert client.deleted == ["p"]


async def test_forbidden_create_returns_none_with_a_warning() -> None:
    forbidden = kclient.errors.Forbidden(
        {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "terminating"}
    )
    pc, recorder, expectations = control(Client(forbidden))
    assert await pc.create("ns/rs", OWNER, POD) is None
    assert recorder.events == [(events.WARNING, "FailedCreate")]
    assert expectations.log == []
