"""projected volumes: configMap, secret, downwardAPI and serviceAccountToken sources merged
into one directory (what every pod's ``kube-api-access-*`` volume is).

Tokens come from the agent's ``token_source`` (a TokenRequest against the API server); one is
requested again once 80% of its lifetime has passed, as the kubelet's token manager does, so
``refresh`` rotates it. Errors from several sources are joined as Kubernetes' aggregate does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kybern.kubelet.volumes import atomic, base, configmap, downwardapi, secret

PLUGIN = "kubernetes.io~projected"
DEFAULT_MODE = 0o644
DEFAULT_EXPIRATION = 3600


async def payload(ctx: base.Context, volume_name: str, source: base.Obj) -> atomic.Payload:
    mode = source.get("defaultMode")
    default_mode = DEFAULT_MODE if mode is None else int(mode)
    files: atomic.Payload = {}
    errors: list[str] = []
    for entry in source.get("sources") or []:
        try:
            files.update(await _one(ctx, volume_name, entry, default_mode))
        except base.SourceError as err:
            errors.append(str(err))
    if errors:
        raise base.SourceError(downwardapi.aggregate(errors))
    return files


async def _one(
    ctx: base.Context, volume_name: str, entry: base.Obj, default_mode: int
) -> atomic.Payload:
    if "configMap" in entry:
        return configmap.payload(ctx, entry["configMap"], default_mode)
    if "secret" in entry:
        return secret.payload(ctx, entry["secret"], default_mode)
    if "downwardAPI" in entry:
        return downwardapi.payload(ctx, entry["downwardAPI"], default_mode)
    if "serviceAccountToken" in entry:
        token_src = entry["serviceAccountToken"]
        path = str(token_src.get("path", "token"))
        token = await _token(ctx, volume_name, token_src)
        return {path: atomic.File(token.encode(), default_mode)}
    return {}  # clusterTrustBundle and future sources: not supported, nothing projected


async def _token(ctx: base.Context, volume_name: str, source: base.Obj) -> str:
    if ctx.token_source is None:
        raise base.SourceError(
            "failed to fetch token: the kubelet has no token source (TokenRequest client)"
        )
    key = (volume_name, str(source.get("path", "token")))
    expiration = int(source.get("expirationSeconds") or DEFAULT_EXPIRATION)
    cached = ctx.tokens.get(key)
    now = ctx.clock.monotonic()
    if cached and now - cached[1] < 0.8 * cached[2]:
        return cached[0]
    spec = ctx.pod.get("spec") or {}
    account = str(spec.get("serviceAccountName") or "default")
    try:
        token = await ctx.token_source(
            ctx.namespace, account, str(source.get("audience") or ""), expiration, ctx.pod
        )
    except Exception as err:  # the agent's client errors: reported as the mount failure
        raise base.SourceError(f"failed to fetch token: {err}") from err
    ctx.tokens[key] = (token, now, expiration)
    return token


async def setup(ctx: base.Context, volume: base.Obj, target: Path) -> Path:
    files = await payload(ctx, str(volume.get("name", "")), volume.get("projected") or {})
    await asyncio.to_thread(atomic.write, target, files)
    return target
