"""GET of one object."""

from __future__ import annotations

from aiohttp import web

from kybern.apiserver import codec, registry
from kybern.apiserver.handlers import context


async def handle(req: context.Request) -> web.StreamResponse:
    obj = await req.registry.get(req.info, req.namespace, req.name)
    return codec.response(registry.to_version(req.info, obj))
