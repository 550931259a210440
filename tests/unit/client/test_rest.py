"""Kubeconfig loading for the HTTPS transport."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml

from kybern.client import errors, rest

pytestmark = pytest.mark.timeout(10)


def write(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [
                    {"name": "one", "context": {"cluster": "c", "user": "u"}},
                    {"name": "other", "context": {"cluster": "missing", "user": "u"}},
                ],
                "current-context": "one",
            }
        )
    )
    return path


def test_token_file_relative_to_the_kubeconfig_and_insecure(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("secret\n")
    path = write(
        tmp_path / "config",
        {"server": "https://10.0.0.1:6443/", "insecure-skip-tls-verify": True},
        {"tokenFile": "tok"},
    )
    config = rest.load_kubeconfig(path)
    assert config.server == "https://10.0.0.1:6443"
    assert config.token == "secret"
    assert config.insecure
    assert config.ssl_context is not None
    assert config.ssl_context.verify_mode == ssl.CERT_NONE


def test_plain_http_needs_no_tls(tmp_path: Path) -> None:
    config = rest.load_kubeconfig(write(tmp_path / "c", {"server": "http://h:1"}, {"token": "t"}))
    assert config.ssl_context is None
    assert config.token == "t"


@pytest.mark.parametrize("context", ["other", "absent"])
def test_a_broken_context_is_a_config_error(tmp_path: Path, context: str) -> None:
    path = write(tmp_path / "c", {"server": "http://h:1"}, {})
    with pytest.raises(errors.ConfigError):
        rest.load_kubeconfig(path, context=context)


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError):
        rest.load_kubeconfig(tmp_path / "nope")
