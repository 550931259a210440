"""Registry credentials: a docker ``config.json``-style file and Kubernetes imagePullSecrets.

Both carry an ``auths`` map keyed by registry (``https://index.docker.io/v1/``,
``127.0.0.1:5000``, ...) whose entries hold ``auth`` (base64 ``user:password``) or
``username``/``password``, and optionally ``identitytoken``/``registrytoken``. Secrets of type
``kubernetes.io/dockerconfigjson`` hold such a file under ``.dockerconfigjson``; the legacy
``kubernetes.io/dockercfg`` holds the bare map under ``.dockercfg``. Keys are normalised to the
registry host as :mod:`.reference` names it (``docker.io`` for Docker Hub).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kybern.runtime.images import errors, model, reference

DOCKERCONFIGJSON = ".dockerconfigjson"
DOCKERCFG = ".dockercfg"


def normalize_host(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://h:5000/x`` -> ``h:5000``."""
    host = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    return (
        reference.DEFAULT_REGISTRY
        if host in reference.LEGACY_REGISTRIES or host == "docker.io"
        else host
    )


def from_auths(auths: Mapping[str, Any]) -> dict[str, model.Credentials]:
    out = {}
    for key, entry in auths.items():
        if isinstance(entry, dict):
            out[normalize_host(key)] = _entry(entry)
    return out


def _entry(entry: Mapping[str, Any]) -> model.Credentials:
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise errors.ImageError(f"invalid auth entry in registry credentials: {e}") from e
        username, _, password = decoded.partition(":")
    return model.Credentials(
        username=username,
        password=password,
        identity_token=str(entry.get("identitytoken") or ""),
        registry_token=str(entry.get("registrytoken") or ""),
    )


def load_file(path: Path) -> dict[str, model.Credentials]:
    """Credentials from a docker config.json (``{"auths": {...}}``); empty if it is absent."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise errors.ImageError(f"{path}: not valid JSON: {e}") from e
    return from_auths(doc.get("auths") or {})


def from_secret_data(
    data: Mapping[str, str], *, encoded: bool = True
) -> dict[str, model.Credentials]:
    """Credentials from one Secret's ``data`` (base64 values when ``encoded``, as the API serves)."""
    for key in (DOCKERCONFIGJSON, DOCKERCFG):
        if key not in data:
            continue
        raw = base64.b64decode(data[key]) if encoded else data[key].encode()
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise errors.ImageError(f"pull secret {key}: not valid JSON: {e}") from e
        return from_auths(doc.get("auths") or {} if key == DOCKERCONFIGJSON else doc)
    return {}


def from_pull_secrets(secrets: Iterable[Mapping[str, Any]]) -> dict[str, model.Credentials]:
    """Merge the credentials of imagePullSecrets (Secret objects as dicts); earlier ones win."""
    out: dict[str, model.Credentials] = {}
    for secret in secrets:
        for host, creds in from_secret_data(secret.get("data") or {}).items():
            out.setdefault(host, creds)
    return out


def merge(*sources: Mapping[str, model.Credentials]) -> dict[str, model.Credentials]:
    """Merge credential maps; earlier maps win (pull secrets before the node's file)."""
    out: dict[str, model.Credentials] = {}
    for source in sources:
        for host, creds in source.items():
            out.setdefault(host, creds)
    return out
