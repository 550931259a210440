"""configMap volumes: one file per key (or per listed item), updated in place.

Payload rules and messages follow Kubernetes' ``configmap.MakePayload``: without ``items``
every ``data`` and ``binaryData`` key becomes a file; with ``items`` only those keys, at their
``path``, and a missing key fails unless the volume is ``optional``. A missing ConfigMap fails
with ``configmap "<name>" not found`` unless optional (then the volume is empty).
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from kybern.kubelet.volumes import atomic, base

PLUGIN = "kubernetes.io~configmap"
DEFAULT_MODE = 0o644


def key_data(obj: base.Obj) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    for key, value in (obj.get("binaryData") or {}).items():
        data.setdefault(key, base64.b64decode(str(value)))
    return data


def make_payload(
    items: list[base.Obj] | None,
    data: dict[str, bytes],
    *,
    default_mode: int,
    optional: bool,
    missing_key: str,
) -> atomic.Payload:
    """Files for ``data`` per ``items`` (shared by configMap and secret, as in Kubernetes)."""
    if not items:
        return {key: atomic.File(value, default_mode) for key, value in data.items()}
    payload: atomic.Payload = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            if optional:
                continue
            raise base.SourceError(f"{missing_key}: {key}")
        mode = item.get("mode")
        payload[str(item.get("path", key))] = atomic.File(
            data[key], default_mode if mode is None else int(mode)
        )
    return payload


def payload(ctx: base.Context, source: base.Obj, default_mode: int | None = None) -> atomic.Payload:
    name = str(source.get("name", ""))
    optional = bool(source.get("optional"))
    obj = ctx.source.get("ConfigMap", ctx.namespace, name)
    if obj is None and not optional:
        raise base.SourceError(f'configmap "{name}" not found')
    mode = source.get("defaultMode", default_mode)
    return make_payload(
        source.get("items"),
        key_data(obj or {}),
        default_mode=DEFAULT_MODE if mode is None else int(mode),
        optional=optional,
        missing_key="configmap references non-existent config key",
    )


async def setup(ctx: base.Context, volume: base.Obj, target: Path) -> Path:
    files = payload(ctx, volume.get("configMap") or {})
    await asyncio.to_thread(atomic.write, target, files)
    return target
