"""Server-side apply, strategic merge patch and managedFields over HTTP (in-process server)."""

from __future__ import annotations

from typing import Any

import yaml

from tests.integration.conftest import Client

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"
APPLY = "application/apply-patch+yaml"
SMP = "application/strategic-merge-patch+json"


def deployment(replicas: int = 1, image: str = "nginx:1.25", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", **extra},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]},
            },
        },
    }


async def apply(client: Client, body: dict[str, Any], **params: Any) -> tuple[int, Any]:
    return await client.patch(
        f"{DEPLOYS}/{body['metadata']['name']}",
        yaml.safe_dump(body).encode(),
        content_type=APPLY,
        **params,
    )


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"]["managedFields"]}


async def test_apply_creates_then_updates_and_owns_fields(client: Client) -> None:
    code, created = await apply(client, deployment(), fieldManager="alice")
    assert code == 201
    entry = managers(created)[("alice", "Apply")]
    assert entry["fieldsType"] == "FieldsV1"
    assert entry["apiVersion"] == "apps/v1"
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]
    containers = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(containers['k:{"name":"nginx"}']) == {".", "f:image", "f:name"}
    code, updated = await apply(client, deployment(replicas=3), fieldManager="alice")
    assert code == 200
    assert updated["spec"]["replicas"] == 3


async def test_apply_conflict_then_force(client: Client) -> None:
    await apply(client, deployment(), fieldManager="alice")
    code, status = await apply(client, deployment(replicas=5), fieldManager="bob")
    assert code == 409
    assert status["reason"] == "Conflict"
    assert (
        status["message"] == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "alice"',
            "field": ".spec.replicas",
        }
    ]
    _, unchanged = await client.get(f"{DEPLOYS}/web")
    assert unchanged["spec"]["replicas"] == 1
    code, forced = await apply(client, deployment(replicas=5), fieldManager="bob", force="true")
    assert code == 200
    assert forced["spec"]["replicas"] == 5
    owners = managers(forced)
    assert "f:replicas" in owners[("bob", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in owners[("alice", "Apply")]["fieldsV1"]["f:spec"]


async def test_apply_conflict_with_an_update_manager_names_its_version(client: Client) -> None:
    code, _ = await client.post(DEPLOYS, deployment(), fieldManager="kubectl-client-side-apply")
    assert code == 201
    code, status = await apply(client, deployment(replicas=2), fieldManager="kubectl")
    assert code == 409
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1:'
        " .spec.replicas"
    )


async def test_apply_removes_fields_it_no_longer_sends(client: Client) -> None:
    await apply(client, deployment(labels={"team": "a", "tier": "web"}), fieldManager="alice")
    code, obj = await apply(client, deployment(labels={"team": "a"}), fieldManager="alice")
    assert code == 200
    assert obj["metadata"]["labels"] == {"team": "a"}


async def test_apply_keeps_fields_another_manager_also_owns(client: Client) -> None:
    await apply(client, deployment(labels={"team": "a"}), fieldManager="alice")
    await apply(client, deployment(labels={"team": "a"}), fieldManager="bob")
    _, obj = await apply(client, deployment(), fieldManager="alice")
    assert obj["metadata"]["labels"] == {"team": "a"}


async def test_updates_record_managers_from_field_manager_or_user_agent(client: Client) -> None:
    cm = {"metadata": {"name": "c"}, "data": {"a": "1"}}
    _, created = await client.post(CMS, cm, fieldManager="creator")
    assert managers(created)[("creator", "Update")]["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}
    code, patched = await client.patch(f"{CMS}/c", {"data": {"b": "2"}})
    assert code == 200
    owners = managers(patched)
    ua_manager = next(m for (m, op) in owners if m != "creator")
    assert owners[(ua_manager, "Update")]["fieldsV1"] == {"f:data": {"f:b": {}}}
    # a PUT that drops managedFields keeps the live ones
    body = dict(
        patched, metadata={k: v for k, v in patched["metadata"].items() if k != "managedFields"}
    )
    body["data"] = {"a": "1", "b": "2", "c": "3"}
    code, put = await client.put(f"{CMS}/c", body, fieldManager="editor")
    assert code == 200
    assert {m for m, _ in managers(put)} == {"creator", ua_manager, "editor"}


async def test_client_sent_invalid_managed_fields_are_ignored(client: Client) -> None:
    cm = {"metadata": {"name": "c", "managedFields": [{"bogus": 1}]}, "data": {"a": "1"}}
    code, created = await client.post(CMS, cm, fieldManager="me")
    assert code == 201
    assert [e["manager"] for e in created["metadata"]["managedFields"]] == ["me"]


async def test_strategic_merge_patch_merges_containers_by_name(client: Client) -> None:
    await client.post(DEPLOYS, deployment())
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}
    }
    code, obj = await client.patch(f"{DEPLOYS}/web", patch, content_type=SMP)
    assert code == 200
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["nginx", "sidecar"]


async def test_bad_patch_options(client: Client) -> None:
    await client.post(DEPLOYS, deployment())
    code, status = await apply(client, deployment())
    assert (code, status["reason"]) == (422, "Invalid")
    assert "fieldManager: Required value: is required for apply patch" in status["message"]
    code, status = await client.patch(f"{DEPLOYS}/web", {}, content_type=SMP, force="true")
    assert (code, status["reason"]) == (422, "Invalid")
    assert "force: Forbidden: may not be specified for non-apply patch" in status["message"]
    code, status = await client.patch(
        f"{DEPLOYS}/web", {"spec": {"$patch": "bogus"}}, content_type=SMP
    )
    assert (code, status["reason"]) == (400, "BadRequest")
    assert "unknown patch type: bogus" in status["message"]


async def test_apply_dry_run_changes_nothing(client: Client) -> None:
    await apply(client, deployment(), fieldManager="alice")
    code, obj = await apply(client, deployment(replicas=4), fieldManager="alice", dryRun="All")
    assert (code, obj["spec"]["replicas"]) == (200, 4)
    _, live = await client.get(f"{DEPLOYS}/web")
    assert live["spec"]["replicas"] == 1


async def test_repeated_apply_writes_nothing(client: Client) -> None:
    _, first = await apply(client, deployment(), fieldManager="alice")
    code, second = await apply(client, deployment(), fieldManager="alice")
    assert code == 200
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_scale_records_a_scale_subresource_manager(client: Client) -> None:
    await apply(client, deployment(), fieldManager="alice")
    code, _ = await client.patch(
        f"{DEPLOYS}/web/scale", {"spec": {"replicas": 3}}, fieldManager="scaler"
    )
    assert code == 200
    _, live = await client.get(f"{DEPLOYS}/web")
    entry = managers(live)[("scaler", "Update")]
    assert (entry["subresource"], entry["fieldsV1"]) == ("scale", {"f:spec": {"f:replicas": {}}})
    assert "f:replicas" not in managers(live)[("alice", "Apply")]["fieldsV1"]["f:spec"]
