"""secret volumes: like configMap volumes, from a Secret's (base64) ``data``.

Messages follow Kubernetes' secret plugin: ``secret "<name>" not found`` and
``references non-existent secret key: <key>``; ``defaultMode`` defaults to 0644.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from pathlib import Path

from kybern.kubelet.volumes import atomic, base, configmap

PLUGIN = "kubernetes.io~secret"
DEFAULT_MODE = 0o644


def key_data(obj: base.Obj) -> dict[str, bytes]:
    data: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            data[key] = str(value).encode()
    for key, value in (obj.get("stringData") or {}).items():
        data[key] = str(value).encode()
    return data


def payload(ctx: base.Context, source: base.Obj, default_mode: int | None = None) -> atomic.Payload:
    # A secret volume names its Secret "secretName"; a projected source says "name".
    name = str(source.get("secretName", source.get("name", "")))
    optional = bool(source.get("optional"))
    obj = ctx.source.get("Secret", ctx.namespace, name)
    if obj is None and not optional:
        raise base.SourceError(f'secret "{name}" not found')
    mode = source.get("defaultMode", default_mode)
    return configmap.make_payload(
        source.get("items"),
        key_data(obj or {}),
        default_mode=DEFAULT_MODE if mode is None else int(mode),
        optional=optional,
        missing_key="references non-existent secret key",
    )


async def setup(ctx: base.Context, volume: base.Obj, target: Path) -> Path:
    files = payload(ctx, volume.get("secret") or {})
    await asyncio.to_thread(atomic.write, target, files)
    return target
