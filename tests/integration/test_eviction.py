"""The Eviction API and the disruption controller in an in-process cluster (API server,
scheduler, 3 simulated nodes, every controller, a fake clock). Every wait has a deadline."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kybern import client as kclient
from kybern.apiserver import server
from kybern.kubelet import simulated
from tests.integration.simcluster import SimCluster, sim_cluster

pytestmark = pytest.mark.timeout(60)
Obj = dict[str, Any]
NS = "default"
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture
async def clock() -> kclient.FakeClock:
    # the Eviction API stamps disruptedPods with the real time: the fake wall clock starts there
    return kclient.FakeClock(wall=datetime.datetime.now(datetime.UTC))


@pytest.fixture
async def cluster(tmp_path: Path, clock: kclient.FakeClock) -> AsyncIterator[SimCluster]:
    config = simulated.Config(nodes=3, heartbeat=3600, status_interval=3600)
    async with sim_cluster(tmp_path, config, controllers=["*"], clock=clock) as c:
        yield c


def deployment(name: str, replicas: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
        },
    }


def budget(name: str, app: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


def eviction(name: str, **extra: Any) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": NS},
        **extra,
    }


def is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


async def ready_pods(c: SimCluster, app: str, count: int) -> list[Obj]:
    async def check() -> list[Obj] | None:
        items = (await c.client.list("v1", "Pod", namespace=NS, label_selector=f"app={app}"))[
            "items"
        ]
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live if is_ready(p)]
        return ready if len(ready) == count and len(live) == count else None

    return await c.wait_for(check, what=f"{count} ready pods of {app}")


async def budget_status(c: SimCluster, name: str, **wanted: Any) -> Obj:
    async def check() -> Obj | None:
        pdb = await c.client.get("policy/v1", "PodDisruptionBudget", name, namespace=NS)
        status = pdb.get("status") or {}
        return pdb if all(status.get(k) == v for k, v in wanted.items()) else None

    return await c.wait_for(check, what=f"budget {name} with {wanted}")


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    obj: Any


async def post_eviction(
    c: SimCluster, pod: str, body: Any, query: dict[str, str] | None = None
) -> Answer:
    path = f"/api/v1/namespaces/{NS}/pods/{pod}/eviction"
    response = await c.client.transport.request("POST", path, body=body, query=query)
    return Answer(response.status, response.json())


async def gone(c: SimCluster, name: str) -> bool:
    return await c.pod(name) is None


async def set_ready(c: SimCluster, pod: str, ready: bool) -> None:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    patch = {"status": {"conditions": [condition]}}
    await c.client.patch(
        "v1", "Pod", pod, patch, namespace=NS, patch_type="strategic", subresource="status"
    )


class TestBudgets:
    async def test_eviction_allowed_then_refused_then_allowed_again(
        self, cluster: SimCluster
    ) -> None:
        c = cluster
        await c.client.create(deployment("web", 3))
        await c.client.create(budget("web", "web", minAvailable=2))
        first, second, _ = await ready_pods(c, "web", 3)
        pdb = await budget_status(c, "web", disruptionsAllowed=1, currentHealthy=3, expectedPods=3)
        cond = pdb["status"]["conditions"][0]
        assert (cond["type"], cond["status"], cond["reason"]) == (
            "DisruptionAllowed",
            "True",
            "SufficientPods",
        )

        answer = await post_eviction(
            c, first["metadata"]["name"], eviction(first["metadata"]["name"])
        )
        assert answer.status == 201
        assert answer.obj == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }
        after = await c.client.get("policy/v1", "PodDisruptionBudget", "web", namespace=NS)
        assert after["status"]["disruptionsAllowed"] == 0
        assert first["metadata"]["name"] in after["status"].get("disruptedPods", {}) or (
            await c.pod(first["metadata"]["name"]) is None
        )

        refused = await post_eviction(
            c, second["metadata"]["name"], eviction(second["metadata"]["name"])
        )
        assert refused.status == 429
        assert refused.obj["reason"] == "TooManyRequests"
        assert refused.obj["message"] == VIOLATION
        [cause] = refused.obj["details"]["causes"]
        assert cause["reason"] == "DisruptionBudget"
        assert cause["message"].startswith(
            "The disruption budget web needs 2 healthy pods and has "
        )
        assert await c.pod(second["metadata"]["name"]) is not None

        await c.wait_for(lambda: gone(c, first["metadata"]["name"]), what="evicted pod deleted")
        await ready_pods(c, "web", 3)  # the Deployment replaced it
        await budget_status(c, "web", disruptionsAllowed=1, currentHealthy=3)
        with_client = await c.client.evict(second["metadata"]["name"], namespace=NS)
        assert with_client["status"] == "Success"

    async def test_readiness_changes_recompute_disruptions(self, cluster: SimCluster) -> None:
        c = cluster
        await c.client.create(deployment("api", 3))
        await c.client.create(budget("api", "api", minAvailable=2))
        pods = await ready_pods(c, "api", 3)
        await budget_status(c, "api", disruptionsAllowed=1)
        sick, healthy = pods[0]["metadata"]["name"], pods[1]["metadata"]["name"]
        await set_ready(c, sick, False)
        pdb = await budget_status(c, "api", disruptionsAllowed=0, currentHealthy=2)
        assert pdb["status"]["conditions"][0]["reason"] == "InsufficientPods"

        refused = await post_eviction(c, healthy, eviction(healthy))
        assert refused.status == 429
        # an unready pod may go: the budget (2 healthy, 2 desired) holds without it
        allowed = await post_eviction(c, sick, eviction(sick))
        assert allowed.status == 201, allowed.obj
        await c.wait_for(lambda: gone(c, sick), what="unready pod evicted")
        await ready_pods(c, "api", 3)
        await budget_status(c, "api", disruptionsAllowed=1, currentHealthy=3)

    async def test_always_allow_lets_unready_pods_go(self, cluster: SimCluster) -> None:
        c = cluster
        await c.client.create(deployment("q", 2))
        await c.client.create(
            budget("q", "q", minAvailable=2, unhealthyPodEvictionPolicy="AlwaysAllow")
        )
        pods = await ready_pods(c, "q", 2)
        await budget_status(c, "q", currentHealthy=2)
        for p in pods:
            await set_ready(c, p["metadata"]["name"], False)
        await budget_status(c, "q", currentHealthy=0, disruptionsAllowed=0)
        name = pods[0]["metadata"]["name"]
        assert (await post_eviction(c, name, eviction(name))).status == 201

    async def test_percentages_over_the_deployment_scale(self, cluster: SimCluster) -> None:
        c = cluster
        await c.client.create(deployment("pct", 3))
        await c.client.create(budget("pct", "pct", maxUnavailable="50%"))
        await ready_pods(c, "pct", 3)
        # ceil(50% of 3) = 2 unavailable -> 1 desired healthy, 2 disruptions
        await budget_status(c, "pct", expectedPods=3, desiredHealthy=1, disruptionsAllowed=2)
        await c.client.create(budget("pct-min", "other", minAvailable="34%"))
        await c.client.create(deployment("other", 3))
        await ready_pods(c, "other", 3)
        # ceil(34% of 3) = ceil(1.02) = 2
        await budget_status(c, "pct-min", expectedPods=3, desiredHealthy=2, disruptionsAllowed=1)

    async def test_disrupted_pods_expire_after_two_minutes(
        self, cluster: SimCluster, clock: kclient.FakeClock
    ) -> None:
        c = cluster
        await c.client.create(deployment("slow", 2))
        await c.client.create(budget("slow", "slow", minAvailable=1))
        pods = await ready_pods(c, "slow", 2)
        pdb = await budget_status(c, "slow", disruptionsAllowed=1)
        # an eviction whose delete never happened: the entry alone holds a disruption
        stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        pdb["status"]["disruptedPods"] = {pods[0]["metadata"]["name"]: stamp}
        pdb["status"]["disruptionsAllowed"] = 0
        await c.client.update_status(pdb)
        await budget_status(c, "slow", currentHealthy=1, disruptionsAllowed=0)
        clock.advance(60)
        await budget_status(c, "slow", currentHealthy=1, disruptionsAllowed=0)
        clock.advance(61)
        after = await budget_status(c, "slow", currentHealthy=2, disruptionsAllowed=1)
        assert not after["status"].get("disruptedPods")


class TestEvictionInCluster:
    async def test_no_budget_deletes_the_pod(self, cluster: SimCluster) -> None:
        c = cluster
        await c.client.create(deployment("lone", 1))
        [p] = await ready_pods(c, "lone", 1)
        name = p["metadata"]["name"]
        answer = await post_eviction(
            c, name, eviction(name, deleteOptions={"gracePeriodSeconds": 0})
        )
        assert answer.status == 201
        await c.wait_for(lambda: gone(c, name), what="pod deleted")

    async def test_pending_pod_ignores_the_budget(self, cluster: SimCluster) -> None:
        c = cluster
        await c.client.create(budget("stuck", "stuck", minAvailable=5))
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "stuck", "namespace": NS, "labels": {"app": "stuck"}},
            "spec": {
                "nodeSelector": {"no": "such-node"},
                "containers": [{"name": "app", "image": "nginx"}],
            },
        }
        await c.client.create(pod)
        await budget_status(c, "stuck", expectedPods=1, disruptionsAllowed=0)
        answer = await post_eviction(c, "stuck", eviction("stuck"))
        assert answer.status == 201
        assert await c.pod("stuck") is None

    async def test_two_budgets_are_kubernetes_500(self, cluster: SimCluster) -> None:
        c = cluster
        await c.client.create(deployment("two", 1))
        await c.client.create(budget("two-a", "two", maxUnavailable=1))
        await c.client.create(budget("two-b", "two", maxUnavailable=1))
        [p] = await ready_pods(c, "two", 1)
        name = p["metadata"]["name"]
        answer = await post_eviction(c, name, eviction(name))
        assert answer.status == 500
        assert answer.obj["status"] == "Failure"
        assert answer.obj["message"] == (
            "This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support."
        )
        assert await c.pod(name) is not None


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[SimCluster]:
    """The API server alone: budgets and pod statuses are whatever the test writes."""
    api_server = server.APIServer(server.Config(data_dir=tmp_path, port=0, tls=False))
    await api_server.start()
    client = kclient.Client(kclient.InProcessTransport(api_server.local_api()))
    try:
        yield SimCluster(api_server, client, kclient.SharedInformerFactory(client))
    finally:
        await api_server.stop()


async def running_pod(c: SimCluster, name: str, *, ready: bool = True, **meta: Any) -> Obj:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "db"}, **meta},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "nginx"}]},
    }
    created = await c.client.create(pod)
    created["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    return await c.client.update_status(created)


async def budget_with(c: SimCluster, name: str, status: Obj, **spec: Any) -> Obj:
    created = await c.client.create(budget(name, "db", **spec))
    created["status"] = {"observedGeneration": 1, **status}
    return await c.client.update_status(created)


class TestEvictionAPI:
    async def test_refused_when_no_disruption_is_left(self, api: SimCluster) -> None:
        c = api
        await running_pod(c, "db-0")
        await budget_with(
            c,
            "db",
            {"disruptionsAllowed": 0, "desiredHealthy": 3, "currentHealthy": 2},
            minAvailable=3,
        )
        answer = await post_eviction(c, "db-0", eviction("db-0"))
        assert answer.status == 429
        assert answer.obj == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": VIOLATION,
            "reason": "TooManyRequests",
            "details": {
                "causes": [
                    {
                        "reason": "DisruptionBudget",
                        "message": "The disruption budget db needs 3 healthy pods and has 2 currently",
                    }
                ]
            },
            "code": 429,
        }
        with pytest.raises(kclient.errors.TooManyRequests):
            await c.client.evict("db-0", namespace=NS)
        assert await c.pod("db-0") is not None

    async def test_budget_not_yet_observed_is_429_with_retry(self, api: SimCluster) -> None:
        c = api
        await running_pod(c, "db-0")
        pdb = await budget_with(c, "db", {"disruptionsAllowed": 5}, minAvailable=1)
        pdb["spec"]["minAvailable"] = 0
        changed = await c.client.update(pdb)
        assert changed["metadata"]["generation"] == 2
        answer = await post_eviction(c, "db-0", eviction("db-0"))
        assert answer.status == 429
        assert answer.obj["details"] == {
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": "The disruption budget db is still being processed by the server.",
                }
            ],
            "retryAfterSeconds": 10,
        }

    async def test_allowed_eviction_spends_the_budget_and_marks_the_pod(
        self, api: SimCluster
    ) -> None:
        c = api
        # a finalizer keeps the pod visible after the delete
        await running_pod(c, "db-0", finalizers=["example.com/hold"])
        await budget_with(c, "db", {"disruptionsAllowed": 2, "currentHealthy": 3}, minAvailable=1)
        answer = await post_eviction(c, "db-0", eviction("db-0"))
        assert answer.status == 201, answer.obj
        pdb = await c.client.get("policy/v1", "PodDisruptionBudget", "db", namespace=NS)
        assert pdb["status"]["disruptionsAllowed"] == 1
        assert set(pdb["status"]["disruptedPods"]) == {"db-0"}
        pod = await c.pod("db-0")
        assert pod is not None
        assert pod["metadata"]["deletionTimestamp"]
        [target] = [x for x in pod["status"]["conditions"] if x["type"] == "DisruptionTarget"]
        assert (target["status"], target["reason"], target["message"]) == (
            "True",
            "EvictionByEvictionAPI",
            "Eviction API: evicting",
        )

    async def test_last_disruption_flips_the_condition(self, api: SimCluster) -> None:
        c = api
        await running_pod(c, "db-0")
        await budget_with(c, "db", {"disruptionsAllowed": 1}, maxUnavailable=1)
        assert (await post_eviction(c, "db-0", eviction("db-0"))).status == 201
        pdb = await c.client.get("policy/v1", "PodDisruptionBudget", "db", namespace=NS)
        [cond] = pdb["status"]["conditions"]
        assert (cond["type"], cond["status"], cond["reason"]) == (
            "DisruptionAllowed",
            "False",
            "InsufficientPods",
        )

    async def test_dry_run_changes_nothing(self, api: SimCluster) -> None:
        c = api
        await running_pod(c, "db-0")
        await budget_with(c, "db", {"disruptionsAllowed": 1}, maxUnavailable=1)
        for body, query in (
            (eviction("db-0", deleteOptions={"dryRun": ["All"]}), None),
            (eviction("db-0"), {"dryRun": "All"}),
        ):
            answer = await post_eviction(c, "db-0", body, query)
            assert answer.status == 201
        pod = await c.pod("db-0")
        assert pod is not None
        assert not pod["metadata"].get("deletionTimestamp")
        assert all(x["type"] != "DisruptionTarget" for x in pod["status"]["conditions"])
        pdb = await c.client.get("policy/v1", "PodDisruptionBudget", "db", namespace=NS)
        assert pdb["status"]["disruptionsAllowed"] == 1
        assert not pdb["status"].get("disruptedPods")

    async def test_terminal_and_terminating_pods_ignore_budgets(self, api: SimCluster) -> None:
        c = api
        done = await running_pod(c, "db-0")
        done["status"]["phase"] = "Succeeded"
        await c.client.update_status(done)
        await budget_with(c, "db", {"disruptionsAllowed": 0}, minAvailable=5)
        assert (await post_eviction(c, "db-0", eviction("db-0"))).status == 201
        assert await c.pod("db-0") is None
        await running_pod(c, "db-1", finalizers=["example.com/hold"])
        await c.client.delete("v1", "Pod", "db-1", namespace=NS)
        assert (await post_eviction(c, "db-1", eviction("db-1"))).status == 201

    async def test_uid_precondition_conflicts(self, api: SimCluster) -> None:
        c = api
        await running_pod(c, "db-0")
        body = eviction("db-0", deleteOptions={"preconditions": {"uid": "not-it"}})
        answer = await post_eviction(c, "db-0", body)
        assert answer.status == 409
        pod = await c.pod("db-0")
        assert pod is not None
        assert not pod["metadata"].get("deletionTimestamp")

    async def test_v1beta1_eviction_and_grace_period(self, api: SimCluster) -> None:
        c = api
        await running_pod(c, "db-0")
        body = {
            **eviction("db-0", deleteOptions={"gracePeriodSeconds": 7}),
            "apiVersion": "policy/v1beta1",
        }
        assert (await post_eviction(c, "db-0", body)).status == 201
        pod = await c.pod("db-0")
        assert pod is not None
        assert pod["metadata"]["deletionGracePeriodSeconds"] == 7

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ([], 400),
            ("text", 400),
            ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}, 400),
            (eviction("other-name"), 400),
            (eviction("x", deleteOptions="now"), 400),
            (eviction("x", deleteOptions={"gracePeriodSeconds": "soon"}), 400),
            (eviction("x", deleteOptions={"propagationPolicy": "Sideways"}), 400),
            (eviction("x", deleteOptions={"dryRun": ["Some"]}), 400),
            (eviction("x", deleteOptions={"preconditions": "uid"}), 400),
        ],
    )
    async def test_bad_bodies(self, api: SimCluster, body: Any, code: int) -> None:
        c = api
        await running_pod(c, "x")
        answer = await post_eviction(c, "x", body)
        assert answer.status == code, answer.obj
        assert answer.obj["kind"] == "Status"
        assert await c.pod("x") is not None

    async def test_missing_pod_and_wrong_verb(self, api: SimCluster) -> None:
        c = api
        answer = await post_eviction(c, "nope", eviction("nope"))
        assert answer.status == 404
        assert answer.obj["reason"] == "NotFound"
        path = f"/api/v1/namespaces/{NS}/pods/nope/eviction"
        got = await c.client.transport.request("GET", path)
        assert got.status == 405


class TestAdmission:
    """The eviction is admitted as a CREATE of pods/eviction before the pod is looked at."""

    async def test_refused_in_a_terminating_namespace(self, api: SimCluster) -> None:
        c = api
        await c.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "db-0", "namespace": "t"},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        }
        await c.client.create(pod)
        await c.client.delete("v1", "Namespace", "t")  # no controller: stays Terminating
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "db-0"}}
        path = "/api/v1/namespaces/t/pods/db-0/eviction"
        for query in (None, {"dryRun": "All"}):
            reply = await c.client.transport.request("POST", path, body=body, query=query)
            assert reply.status == 403
            status = reply.json()
            assert status["reason"] == "Forbidden"
            assert status["message"] == (
                'pods "db-0" is forbidden: unable to create new content in namespace t '
                "because it is being terminated"
            )
            assert status["details"]["causes"] == [
                {
                    "reason": "NamespaceTerminating",
                    "message": "namespace t is being terminated",
                    "field": "metadata.namespace",
                }
            ]
        left = await c.pod("db-0", "t")
        assert left is not None
        assert not left["metadata"].get("deletionTimestamp")

    async def test_a_missing_namespace_is_not_found(self, api: SimCluster) -> None:
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "db-0"}}
        path = "/api/v1/namespaces/ghost/pods/db-0/eviction"
        reply = await api.client.transport.request("POST", path, body=body)
        assert reply.status == 404
        assert reply.json()["message"] == 'namespaces "ghost" not found'

    async def test_a_namespace_at_its_pod_quota_can_still_be_drained(self, api: SimCluster) -> None:
        c = api
        await running_pod(c, "db-0")
        rq = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "none", "namespace": NS},
            "spec": {"hard": {"pods": "0"}},
        }
        created = await c.client.create(rq)
        created["status"] = {"hard": {"pods": "0"}, "used": {"pods": "1"}}
        await c.client.update_status(created)
        assert (await post_eviction(c, "db-0", eviction("db-0"))).status == 201
        evicted = await c.pod("db-0")  # a running pod on a node: deleted gracefully
        assert evicted is None or evicted["metadata"].get("deletionTimestamp")


class TestOverHTTP:
    async def test_retry_after_header_and_malformed_body(self, client: Any) -> None:
        base = f"/api/v1/namespaces/{NS}/pods"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "db-0", "labels": {"app": "db"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "nginx"}]},
        }
        code, created = await client.post(base, pod)
        assert code == 201
        created["status"] = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
        }
        code, _ = await client.put(f"{base}/db-0/status", created)
        assert code == 200
        pdbs = f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets"
        code, _ = await client.post(pdbs, budget("db", "db", minAvailable=1))
        assert code == 201  # status.observedGeneration 0 < generation 1: not processed yet
        url = f"{client.base}{base}/db-0/eviction"
        async with client.session.post(url, json=eviction("db-0")) as reply:
            assert reply.status == 429
            assert reply.headers["Retry-After"] == "10"
            body = await reply.json()
        assert body["reason"] == "TooManyRequests"
        code, answer = await client.post(f"{base}/db-0/eviction", b"{not json")
        assert code == 400
        assert answer["kind"] == "Status"
