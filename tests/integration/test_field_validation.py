"""Server-side field validation (``fieldValidation=Strict|Warn|Ignore``) on an in-process server:
unknown and duplicate fields in JSON and YAML bodies of creates, updates and patches, with the
messages and the order kube-apiserver gives (its test/integration/apiserver/
field_validation_test.go bodies and expectations, for typed objects), and an unchanged store
when Strict refuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kybern.apiserver import fieldvalidation
from tests.integration.conftest import Client

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"

INVALID_JSON = """
{
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "dupename",
        "name": "%s",
        "labels": {"app": "nginx"},
        "unknownMeta": "metaVal"
    },
    "spec": {
        "unknown1": "val1",
        "unknownDupe": "valDupe",
        "unknownDupe": "valDupe2",
        "paused": true,
        "paused": false,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {
                "containers": [{
                    "name":  "nginx",
                    "image": "nginx:latest",
                    "unknownNested": "val1",
                    "imagePullPolicy": "Always",
                    "imagePullPolicy": "Never"
                }]
            }
        }
    }
}
"""
JSON_PROBLEMS = [
    'duplicate field "metadata.name"',
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
]

INVALID_YAML = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: dupename
  name: %s
  unknownMeta: metaVal
  labels:
    app: nginx
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  paused: true
  paused: false
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        unknownNested: val1
        imagePullPolicy: Always
        imagePullPolicy: Never"""
YAML_ERROR = """yaml: unmarshal errors:
  line 5: key "name" already set in map
  line 12: key "unknownDupe" already set in map
  line 14: key "paused" already set in map
  line 28: key "imagePullPolicy" already set in map"""
YAML_UNKNOWN = [
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
]
YAML_WARNINGS = [
    'line 5: key "name" already set in map',
    'line 12: key "unknownDupe" already set in map',
    'line 14: key "paused" already set in map',
    'line 28: key "imagePullPolicy" already set in map',
    *YAML_UNKNOWN,
]

MERGE_PATCH = """
{
    "spec": {
        "unknown1": "val1",
        "unknownDupe": "valDupe",
        "unknownDupe": "valDupe2",
        "paused": true,
        "paused": false,
        "template": {
            "spec": {
                "containers": [{
                    "name": "nginx",
                    "image": "nginx:latest",
                    "unknownNested": "val1",
                    "imagePullPolicy": "Always",
                    "imagePullPolicy": "Never"
                }]
            }
        }
    }
}
"""
PATCH_PROBLEMS = [
    'duplicate field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
]
JSON_PATCH = """[
    {"op": "add", "path": "/spec/unknown1", "value": "val1", "foo":"bar"},
    {"op": "add", "path": "/spec/unknown2", "path": "/spec/unknown3", "value": "val1"},
    {"op": "add", "path": "/spec/unknownDupe", "value": "valDupe"},
    {"op": "add", "path": "/spec/unknownDupe", "value": "valDupe2"},
    {"op": "add", "path": "/spec/paused", "value": true},
    {"op": "add", "path": "/spec/paused", "value": false},
    {"op": "add", "path": "/spec/template/spec/containers/0/unknownNested", "value": "val1"},
    {"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Always"},
    {"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Never"}
]"""
JSON_PATCH_PROBLEMS = [
    'json patch unknown field "[0].foo"',
    'json patch duplicate field "[1].path"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknown3"',
    'unknown field "spec.unknownDupe"',
]


def valid(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Always"}
                    ]
                },
            },
        },
    }


def parse_warning(header: str) -> str:
    assert header.startswith('299 - "'), header
    assert header.endswith('"'), header
    return header[7:-1].replace('\\"', '"').replace("\\\\", "\\")


async def send(
    client: Client,
    method: str,
    path: str,
    body: str | bytes,
    *,
    content_type: str = "application/json",
    mode: str | None = None,
) -> tuple[int, Any, list[str]]:
    params = {"fieldValidation": mode} if mode is not None else {}
    raw = body.encode() if isinstance(body, str) else body
    async with client.session.request(
        method,
        client.base + path,
        data=raw,
        params=params,
        headers={"Content-Type": content_type},
    ) as response:
        warnings = [parse_warning(h) for h in response.headers.getall("Warning", [])]
        return response.status, orjson.loads(await response.read()), warnings


def strict_error(problems: list[str]) -> str:
    return "strict decoding error: " + ", ".join(problems)


# -- create ---------------------------------------------------------------------------------


async def test_strict_create_refuses_with_every_problem_in_document_order(
    client: Client,
) -> None:
    status, body, warnings = await send(
        client, "POST", DEPLOYS, INVALID_JSON % "strict", mode="Strict"
    )
    assert status == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: '
        + strict_error(JSON_PROBLEMS)
    )
    assert warnings == []
    status, _ = await client.get(f"{DEPLOYS}/strict")
    assert status == 404


@pytest.mark.parametrize("mode", ["Warn", None])
async def test_warn_create_accepts_drops_unknown_and_warns(
    client: Client, mode: str | None
) -> None:
    name = f"warn-{str(mode).lower()}"
    status, body, warnings = await send(client, "POST", DEPLOYS, INVALID_JSON % name, mode=mode)
    assert status == 201, body
    assert warnings == JSON_PROBLEMS
    _, stored = await client.get(f"{DEPLOYS}/{name}")
    assert "unknownMeta" not in stored["metadata"]
    assert "unknown1" not in stored["spec"]
    assert stored["spec"]["paused"] is False  # the last duplicate wins
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Never"
    assert "unknownNested" not in container


async def test_ignore_create_is_silent(client: Client) -> None:
    status, body, warnings = await send(
        client, "POST", DEPLOYS, INVALID_JSON % "ignore", mode="Ignore"
    )
    assert status == 201, body
    assert warnings == []
    assert "unknown1" not in body["spec"]


async def test_yaml_bodies_report_go_yaml_duplicates_then_sorted_unknown_fields(
    client: Client,
) -> None:
    status, body, _ = await send(
        client,
        "POST",
        DEPLOYS,
        INVALID_YAML % "yaml-strict",
        content_type="application/yaml",
        mode="Strict",
    )
    assert status == 400
    assert body["message"].endswith(strict_error([YAML_ERROR, *YAML_UNKNOWN]))
    status, body, warnings = await send(
        client, "POST", DEPLOYS, INVALID_YAML % "yaml-warn", content_type="application/yaml"
    )
    assert status == 201, body
    assert warnings == YAML_WARNINGS


async def test_clean_bodies_carry_no_warnings(client: Client) -> None:
    obj = valid("clean")
    obj["metadata"]["annotations"] = {"note": 'a "quoted": value', "x": '":'}
    status, body, warnings = await send(client, "POST", DEPLOYS, orjson.dumps(obj))
    assert status == 201, body
    assert warnings == []
    assert body["metadata"]["annotations"]["x"] == '":'


async def test_unknown_field_value_is_given_once_even_when_repeated(client: Client) -> None:
    raw = orjson.dumps(valid("once")).replace(b'"spec":{', b'"spec":{"bogus":1,"bogus":2,', 1)
    status, body, _ = await send(client, "POST", DEPLOYS, raw, mode="Strict")
    assert status == 400
    assert body["message"].endswith('strict decoding error: unknown field "spec.bogus"')


async def test_unknown_fields_are_reported_in_document_order_among_duplicates(
    client: Client,
) -> None:
    raw = b'{"metadata":{"name":"a","bogus":1,"name":"order"},"spec":{"replicas":1}}'
    status, body, _ = await send(client, "POST", DEPLOYS, raw, mode="Strict")
    assert status == 400
    assert body["message"].endswith(
        'strict decoding error: unknown field "metadata.bogus", duplicate field "metadata.name"'
    )


async def test_an_unsupported_mode_is_invalid(client: Client) -> None:
    status, body, _ = await send(
        client, "POST", DEPLOYS, orjson.dumps(valid("bad-mode")), mode="Bogus"
    )
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )
    status, _ = await client.get(f"{DEPLOYS}/bad-mode")
    assert status == 404


# -- update and patch -----------------------------------------------------------------------


async def created(client: Client, name: str) -> dict[str, Any]:
    status, body = await client.post(DEPLOYS, valid(name))
    assert status == 201, body
    return body  # type: ignore[no-any-return]


async def test_update_strict_refuses_and_warn_warns(client: Client) -> None:
    before = await created(client, "put")
    status, body, _ = await send(
        client, "PUT", f"{DEPLOYS}/put", INVALID_JSON % "put", mode="Strict"
    )
    assert status == 400
    assert body["message"].endswith(strict_error(JSON_PROBLEMS))
    _, after = await client.get(f"{DEPLOYS}/put")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    status, body, warnings = await send(client, "PUT", f"{DEPLOYS}/put", INVALID_JSON % "put")
    assert status == 200, body
    assert warnings == JSON_PROBLEMS
    assert body["spec"]["paused"] is False


@pytest.mark.parametrize(
    ("content_type", "patch", "problems"),
    [
        ("application/merge-patch+json", MERGE_PATCH, PATCH_PROBLEMS),
        ("application/json-patch+json", JSON_PATCH, JSON_PATCH_PROBLEMS),
    ],
)
async def test_patches_check_the_patch_and_the_patched_object(
    client: Client, content_type: str, patch: str, problems: list[str]
) -> None:
    name = "patch-" + content_type.split("/")[1].split("+")[0]
    before = await created(client, name)
    path = f"{DEPLOYS}/{name}"
    status, body, _ = await send(
        client, "PATCH", path, patch, content_type=content_type, mode="Strict"
    )
    assert status == 422, body
    assert body["reason"] == "Invalid"
    cause = body["details"]["causes"][0]
    assert cause["field"] == "patch"
    assert cause["message"].startswith('Invalid value: "{')
    assert cause["message"].endswith(": " + strict_error(problems))
    assert body["message"].startswith(' "" is invalid: patch: Invalid value: ')
    _, after = await client.get(path)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    status, body, warnings = await send(client, "PATCH", path, patch, content_type=content_type)
    assert status == 200, body
    assert warnings == problems
    assert "unknown1" not in body["spec"]
    status, body, warnings = await send(
        client, "PATCH", path, patch, content_type=content_type, mode="Ignore"
    )
    assert status == 200, body
    assert warnings == []


async def test_strategic_merge_patch_shows_the_patch_as_go_does(client: Client) -> None:
    before = await created(client, "smp")
    patch = '{"spec": {"paused": true, "paused": false, "bogus": 1}}'
    status, body, _ = await send(
        client,
        "PATCH",
        f"{DEPLOYS}/smp",
        patch,
        content_type="application/strategic-merge-patch+json",
        mode="Strict",
    )
    assert status == 422, body
    assert body["details"]["causes"][0]["message"] == (
        'Invalid value: "map[spec:map[bogus:1 paused:false]]": strict decoding error: '
        'duplicate field "spec.paused", unknown field "spec.bogus"'
    )
    _, after = await client.get(f"{DEPLOYS}/smp")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    status, body, warnings = await send(
        client,
        "PATCH",
        f"{DEPLOYS}/smp",
        patch,
        content_type="application/strategic-merge-patch+json",
        mode="Warn",
    )
    assert status == 200, body
    assert warnings == ['duplicate field "spec.paused"', 'unknown field "spec.bogus"']
    assert body["spec"]["paused"] is False


# -- the pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a":1,"b":{"c":2}}', False),
        (b'{"a": 1, "b": [{"c": 2}, {"c": 3}]}', False),
        (b'{"a":1,"a":2}', True),
        (b'{"a" : 1, "a" : 2}', True),
        (b'{"a":{"b":1,"b":1}}', True),
        (b'{"a":"x\\":"}', False),
    ],
)
def test_duplicate_prefilter(raw: bytes, expected: bool) -> None:
    assert fieldvalidation.may_have_duplicates(raw, orjson.loads(raw)) is expected


def test_go_format_matches_fmt_v() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"y": "s", "x": 3.0}}
    assert fieldvalidation.go_format(value) == "map[a:map[x:3 y:s] b:[1 2.5 <nil> true]]"


def test_warning_header_escapes_quotes() -> None:
    assert fieldvalidation.warning_header('unknown field "spec.bogus"') == (
        '299 - "unknown field \\"spec.bogus\\""'
    )


APPLY_INVALID = """{
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "%s", "labels": {"app": "nginx"}},
    "spec": {
        "paused": false,
        "paused": true,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}
        }
    }
}"""


async def test_server_side_apply_reports_repeated_keys_as_yaml_errors(client: Client) -> None:
    apply = "application/apply-patch+yaml"
    path = f"{DEPLOYS}/applied?fieldManager=mgr"
    status, body, _ = await send(
        client, "PATCH", path, APPLY_INVALID % "applied", content_type=apply, mode="Strict"
    )
    assert status == 400, body
    assert body["message"] == (
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n"
        '  line 7: key "paused" already set in map'
    )
    status, _ = await client.get(f"{DEPLOYS}/applied")
    assert status == 404
    status, body, warnings = await send(
        client, "PATCH", path, APPLY_INVALID % "applied", content_type=apply
    )
    assert status in (200, 201), body
    assert warnings == ['line 7: key "paused" already set in map']
    assert body["spec"]["paused"] is True
