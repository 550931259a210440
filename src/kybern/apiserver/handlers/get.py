"""GET of one object."""

from __future__ import annotations

from aiohttp import web

from kybern.apiserver import registry, tables
from kybern.apiserver.handlers import context


async def handle(req: context.Request) -> web.StreamResponse:
    output = tables.negotiate(req.http)  # 406 comes before 404, as in Kubernetes
    obj = await req.registry.get(req.info, req.namespace, req.name)
    return tables.object_response(req.info, registry.to_version(req.info, obj), output)
