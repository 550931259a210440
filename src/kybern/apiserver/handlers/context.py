"""What every resource handler receives: the parsed request and the server's registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kybern.api import kinds, managedfields
from kybern.apiserver import codec, errors, registry

REGISTRY = web.AppKey("registry", registry.Registry)


@dataclass(frozen=True, slots=True)
class Request:
    http: web.Request
    registry: registry.Registry
    info: kinds.ResourceInfo
    namespace: str
    name: str
    subresource: str
    watch: bool = False

    @property
    def query(self) -> Any:
        return self.http.query


def field_manager(req: Request) -> str:
    """The write's field manager: ``fieldManager``, else from the User-Agent (Kubernetes)."""
    return managedfields.manager_name(
        req.query.get("fieldManager"), req.http.headers.get("User-Agent")
    )


async def read_object(req: Request) -> dict[str, Any]:
    """The request body as an object of the endpoint's kind (apiVersion and kind defaulted
    from the URL, refused when they name another kind)."""
    body = await codec.read_object(req.http)
    check_type(req.info, body)
    return body


def check_type(info: kinds.ResourceInfo, body: dict[str, Any]) -> None:
    api_version = body.setdefault("apiVersion", info.api_version)
    kind = body.setdefault("kind", info.kind)
    if api_version != info.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({info.api_version})"
        )
    if kind != info.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({info.kind})"
        )
