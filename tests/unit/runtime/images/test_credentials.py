from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kybern.runtime.images import credentials, errors, model


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_config_file_auth_and_explicit_fields(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": b64("hub:secret:with:colons")},
                    "127.0.0.1:5000": {"username": "u", "password": "p"},
                    "http://quay.io/v2/": {"identitytoken": "idt"},
                }
            }
        )
    )
    creds = credentials.load_file(path)
    assert creds["docker.io"] == model.Credentials(username="hub", password="secret:with:colons")
    assert creds["127.0.0.1:5000"] == model.Credentials(username="u", password="p")
    assert creds["quay.io"].identity_token == "idt"


def test_missing_file_is_empty_and_bad_json_is_an_error(tmp_path: Path) -> None:
    assert credentials.load_file(tmp_path / "absent.json") == {}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(errors.ImageError):
        credentials.load_file(tmp_path / "bad.json")


def test_pull_secrets_both_types_first_wins() -> None:
    dockerconfigjson = json.dumps({"auths": {"registry.example:443": {"auth": b64("a:1")}}})
    dockercfg = json.dumps(
        {"registry.example:443": {"auth": b64("b:2")}, "other.example": {"auth": b64("c:3")}}
    )
    secrets = [
        {
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": b64(dockerconfigjson)},
        },
        {"type": "kubernetes.io/dockercfg", "data": {".dockercfg": b64(dockercfg)}},
        {"type": "Opaque", "data": {"token": b64("x")}},
    ]
    creds = credentials.from_pull_secrets(secrets)
    assert creds == {
        "registry.example:443": model.Credentials("a", "1"),
        "other.example": model.Credentials("c", "3"),
    }


def test_merge_prefers_earlier() -> None:
    first = {"h": model.Credentials("a")}
    assert credentials.merge(first, {"h": model.Credentials("b"), "g": model.Credentials("c")}) == {
        "h": model.Credentials("a"),
        "g": model.Credentials("c"),
    }
