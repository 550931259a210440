"""Creating and deleting an owner's pods the way the workload controllers all do (Kubernetes'
PodControl): the expectation is recorded first, each outcome gets its Event (SuccessfulCreate,
FailedCreate, SuccessfulDelete with Kubernetes' messages), a pod already gone counts as
deleted, and a Forbidden create (the namespace is terminating) stops without a retry storm.
StatefulSets word their events differently and keep their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kybern import client as kclient
from kybern.controllers import events, pods

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PodControl:
    client: kclient.Client
    recorder: events.Recorder
    expectations: pods.Expectations

    async def create(self, key: str, owner: Obj, pod: Obj) -> Obj | None:
        """The created pod; None when the namespace refuses new content."""
        try:
            created = await self.client.create(pod)
        except kclient.ApiError as exc:
            await self.recorder.event(
                owner, events.WARNING, "FailedCreate", f"Error creating: {exc}"
            )
            if isinstance(exc, kclient.errors.Forbidden):
                return None
            raise
        self.expectations.created(key, created)
        name = created["metadata"]["name"]
        await self.recorder.event(owner, events.NORMAL, "SuccessfulCreate", f"Created pod: {name}")
        return created

    async def delete(self, key: str, owner: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        self.expectations.deleted(key, pod)
        try:
            await self.client.delete("v1", "Pod", meta["name"], namespace=meta["namespace"])
        except kclient.NotFound:
            return
        await self.recorder.event(
            owner, events.NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}"
        )
