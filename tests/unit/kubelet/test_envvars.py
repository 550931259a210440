"""Container environment: sources, field and resource refs, service links, $(VAR) expansion."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kybern.kubelet import envvars

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]


class Source:
    def __init__(self, *objs: Obj) -> None:
        self.objs = {
            (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs
        }

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objs.get((kind, namespace, name))

    def list_services(self, namespace: str) -> list[Obj]:
        return [o for (k, ns, _), o in self.objs.items() if k == "Service" and ns == namespace]


def cm(name: str, data: dict[str, str], ns: str = "ns") -> Obj:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def secret(name: str, data: dict[str, str], ns: str = "ns") -> Obj:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"kind": "Secret", "metadata": {"name": name, "namespace": ns}, "data": encoded}


def svc(name: str, ip: str, ports: list[Obj], ns: str = "ns") -> Obj:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": ip, "ports": ports},
    }


def pod(container: Obj, **spec: Any) -> Obj:
    return {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": 'say "hi"'},
        },
        "spec": {"containers": [container], "nodeName": "n1", **spec},
    }


def env_of(container: Obj, source: Source | None = None, **spec: Any) -> envvars.EnvResult:
    return envvars.container_env(
        pod(container, **spec),
        container,
        source=source or Source(),
        node_name="n1",
        node_ip="192.0.2.1",
        pod_ip="10.0.0.5",
        pod_ips=["10.0.0.5", "fd00::5"],
        host_ip="192.0.2.1",
        service_account_name="sa",
        node_allocatable={"cpu": "4", "memory": "8Gi", "ephemeral-storage": "100Gi"},
    )


class TestExpansion:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("$(A)", "a"),
            ("x$(A)y$(B)", "xayb"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("$(MISSING)", "$(MISSING)"),
            ("$(A", "$(A"),
            ("$A", "$A"),
            ("end$", "end$"),
            ("$$$(A)", "$a"),
            ("$()", "$()"),
        ],
    )
    def test_kubernetes_rules(self, text: str, expected: str) -> None:
        assert envvars.expand(text, {"A": "a", "B": "b"}) == expected

    def test_command_and_args(self) -> None:
        container = {"command": ["echo", "$(GREETING)"], "args": ["$(NAME)", "$$(NAME)"]}
        command, args = envvars.command_args(container, [("GREETING", "hi"), ("NAME", "kyb")])
        assert command == ["echo", "hi"]
        assert args == ["kyb", "$(NAME)"]


class TestValues:
    def test_value_expands_earlier_variables_only(self) -> None:
        env = env_of(
            {
                "name": "c",
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B", "value": "$(A)-$(C)"},
                    {"name": "C", "value": "3"},
                ],
            }
        )
        assert dict(env)["B"] == "1-$(C)"

    def test_config_map_and_secret_keys(self) -> None:
        source = Source(cm("cfg", {"k": "v"}), secret("sec", {"pw": "hunter2"}))
        env = env_of(
            {
                "name": "c",
                "env": [
                    {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
                    {"name": "P", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
                ],
            },
            source,
        )
        assert dict(env) == {"K": "v", "P": "hunter2"}

    def test_missing_config_map_fails_with_kubelet_message(self) -> None:
        ref = {"configMapKeyRef": {"name": "x", "key": "k"}}
        with pytest.raises(envvars.ConfigError, match=r'^configmap "x" not found$'):
            env_of({"name": "c", "env": [{"name": "K", "valueFrom": ref}]})

    def test_missing_key(self) -> None:
        ref = {"secretKeyRef": {"name": "sec", "key": "nope"}}
        with pytest.raises(envvars.ConfigError, match=r"^couldn't find key nope in Secret ns/sec$"):
            env_of(
                {"name": "c", "env": [{"name": "K", "valueFrom": ref}]}, Source(secret("sec", {}))
            )

    def test_optional_missing_is_skipped(self) -> None:
        env = env_of(
            {
                "name": "c",
                "env": [
                    {
                        "name": "A",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "x", "key": "k", "optional": True}
                        },
                    },
                    {
                        "name": "B",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "c", "key": "no", "optional": True}
                        },
                    },
                ],
            },
            Source(cm("c", {})),
        )
        assert "A" not in dict(env)
        assert "B" not in dict(env)

    def test_field_refs(self) -> None:
        paths = {
            "NAME": "metadata.name",
            "NS": "metadata.namespace",
            "UID": "metadata.uid",
            "APP": "metadata.labels['app']",
            "NOTE": "metadata.annotations['note']",
            "LABELS": "metadata.labels",
            "NODE": "spec.nodeName",
            "SA": "spec.serviceAccountName",
            "HOST": "status.hostIP",
            "IP": "status.podIP",
            "IPS": "status.podIPs",
        }
        entries = [
            {"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in paths.items()
        ]
        env = dict(env_of({"name": "c", "env": entries}, enableServiceLinks=False))
        assert env["NAME"] == "p"
        assert env["NS"] == "ns"
        assert env["UID"] == "u-1"
        assert env["APP"] == "web"
        assert env["NOTE"] == 'say "hi"'
        assert env["LABELS"] == 'app="web"\ntier="front"'
        assert env["NODE"] == "n1"
        assert env["SA"] == "sa"
        assert env["HOST"] == "192.0.2.1"
        assert env["IP"] == "10.0.0.5"
        assert env["IPS"] == "10.0.0.5,fd00::5"

    def test_resource_refs_with_divisor_and_node_default(self) -> None:
        container = {
            "name": "c",
            "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
            "env": [
                {
                    "name": "RC",
                    "valueFrom": {
                        "resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}
                    },
                },
                {"name": "RC1", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                {
                    "name": "RM",
                    "valueFrom": {
                        "resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}
                    },
                },
                {"name": "LC", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {
                    "name": "LM",
                    "valueFrom": {
                        "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Gi"}
                    },
                },
            ],
        }
        env = dict(env_of(container))
        assert (env["RC"], env["RC1"], env["RM"]) == ("250", "1", "64")
        assert (env["LC"], env["LM"]) == ("4", "8")


class TestEnvFrom:
    def test_prefix_and_override_order(self) -> None:
        source = Source(cm("cfg", {"A": "1", "B": "2"}), secret("sec", {"S": "x"}))
        container = {
            "name": "c",
            "envFrom": [
                {"configMapRef": {"name": "cfg"}, "prefix": "P_"},
                {"secretRef": {"name": "sec"}},
            ],
            "env": [{"name": "P_A", "value": "override"}],
        }
        env = dict(env_of(container, source))
        assert env["P_A"] == "override"
        assert env["P_B"] == "2"
        assert env["S"] == "x"

    def test_invalid_keys_skipped_with_event_text(self) -> None:
        source = Source(cm("cfg", {"ok": "1", "bad=key": "2", "also=bad": "3"}))
        result = env_of({"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]}, source)
        assert "ok" in dict(result)
        assert result.warnings == [
            "Keys [also=bad, bad=key] from the EnvFrom configMap ns/cfg were skipped since "
            "they are considered invalid environment variable names."
        ]

    def test_missing_required_and_optional(self) -> None:
        with pytest.raises(envvars.ConfigError, match='secret "s" not found'):
            env_of({"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]})
        assert (
            env_of({"name": "c", "envFrom": [{"secretRef": {"name": "s", "optional": True}}]}) == []
        )


class TestServiceLinks:
    PORTS = [
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "dns-udp", "port": 53, "protocol": "UDP"},
    ]

    def source(self) -> Source:
        return Source(
            svc("my-svc", "10.96.0.10", self.PORTS),
            svc("headless", "None", [{"port": 80}]),
            svc("kubernetes", "10.96.0.1", [{"name": "https", "port": 443}], ns="default"),
            svc("other", "10.96.0.20", [{"port": 1}], ns="default"),
        )

    def test_service_and_docker_link_variables(self) -> None:
        env = dict(env_of({"name": "c"}, self.source()))
        assert env["MY_SVC_SERVICE_HOST"] == "10.96.0.10"
        assert env["MY_SVC_SERVICE_PORT"] == "80"
        assert env["MY_SVC_SERVICE_PORT_HTTP"] == "80"
        assert env["MY_SVC_SERVICE_PORT_DNS_UDP"] == "53"
        assert env["MY_SVC_PORT"] == "tcp://10.96.0.10:80"
        assert env["MY_SVC_PORT_80_TCP"] == "tcp://10.96.0.10:80"
        assert env["MY_SVC_PORT_80_TCP_PROTO"] == "tcp"
        assert env["MY_SVC_PORT_80_TCP_PORT"] == "80"
        assert env["MY_SVC_PORT_80_TCP_ADDR"] == "10.96.0.10"
        assert env["MY_SVC_PORT_53_UDP"] == "udp://10.96.0.10:53"
        assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
        assert env["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
        assert not any(k.startswith(("HEADLESS_", "OTHER_")) for k in env)

    def test_disabled_links_keep_master_service(self) -> None:
        env = dict(env_of({"name": "c"}, self.source(), enableServiceLinks=False))
        assert "MY_SVC_SERVICE_HOST" not in env
        assert env["KUBERNETES_SERVICE_PORT"] == "443"

    def test_declared_variables_win_and_can_reference_services(self) -> None:
        container = {
            "name": "c",
            "env": [
                {"name": "MY_SVC_SERVICE_HOST", "value": "mine"},
                {"name": "URL", "value": "http://$(MY_SVC_SERVICE_HOST):$(MY_SVC_SERVICE_PORT)"},
            ],
        }
        env = dict(env_of(container, self.source()))
        assert env["MY_SVC_SERVICE_HOST"] == "mine"
        assert env["URL"] == "http://mine:80"
