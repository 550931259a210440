"""An in-memory OCI distribution registry on 127.0.0.1 for client tests: optional Bearer-token
(Docker Hub style) or Basic auth, injectable 503s, and blobs that can be tampered with."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeRegistry:
    auth: str = ""  # "", "bearer" or "basic"
    users: dict[str, str] = field(default_factory=dict)  # required credentials (basic, token realm)
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)  # (repo, ref)
    fail_next: int = 0  # answer this many requests with 503 first
    token_requests: list[dict[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    host: str = ""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/token", self._token)
        app.router.add_get("/v2/", self._base)
        app.router.add_route("*", "/v2/{repo:.+}/manifests/{ref}", self._manifest)
        app.router.add_route("*", "/v2/{repo:.+}/blobs/uploads/{id:.*}", self._upload)
        app.router.add_route("*", "/v2/{repo:.+}/blobs/{digest}", self._blob)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        if request.path == "/token":
            response: web.StreamResponse = await handler(request)
            return response
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=503)
        if not self._authorized(request.headers.get("Authorization", "")):
            challenge = (
                f'Bearer realm="http://{self.host}/token",service="fake"'
                if self.auth == "bearer"
                else 'Basic realm="fake"'
            )
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                status=401,
                headers={"WWW-Authenticate": challenge},
            )
        response = await handler(request)
        return response

    def _authorized(self, header: str) -> bool:
        if self.auth == "bearer":
            return header == "Bearer good-token"
        if self.auth == "basic":
            return header in {_basic(u, p) for u, p in self.users.items()}
        return True

    async def _base(self, _request: web.Request) -> web.Response:
        return web.json_response({})

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests.append(dict(request.query))
        if self.users and request.headers.get("Authorization") not in {
            _basic(u, p) for u, p in self.users.items()
        }:
            return web.Response(status=401)
        return web.json_response({"token": "good-token"})

    async def _manifest(self, request: web.Request) -> web.Response:
        key = (request.match_info["repo"], request.match_info["ref"])
        if request.method == "PUT":
            data = await request.read()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            media_type = request.headers["Content-Type"]
            self.manifests[key] = self.manifests[(key[0], digest)] = (data, media_type)
            return web.Response(status=201, headers={"Docker-Content-Digest": digest})
        if key not in self.manifests:
            return web.json_response(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
                status=404,
            )
        data, media_type = self.manifests[key]
        return web.Response(body=data, headers={"Content-Type": media_type})

    async def _blob(self, request: web.Request) -> web.Response:
        digest = request.match_info["digest"]
        if digest not in self.blobs:
            return web.json_response(
                {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}, status=404
            )
        return web.Response(body=b"" if request.method == "HEAD" else self.blobs[digest])

    async def _upload(self, request: web.Request) -> web.Response:
        repo = request.match_info["repo"]
        if request.method == "POST":
            return web.Response(
                status=202, headers={"Location": f"/v2/{repo}/blobs/uploads/{uuid.uuid4()}"}
            )
        data = await request.read()
        digest = request.query["digest"]
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            return web.json_response(
                {"errors": [{"code": "DIGEST_INVALID", "message": "bad digest"}]}, status=400
            )
        self.blobs[digest] = data
        return web.Response(status=201)

    def add_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.manifests[(repo, ref)] = self.manifests[(repo, digest)] = (data, media_type)
        return digest


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@asynccontextmanager
async def serve(registry: FakeRegistry) -> AsyncIterator[str]:
    """Serve ``registry`` on a free 127.0.0.1 port; yields its ``host:port``."""
    runner = web.AppRunner(registry.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    registry.host = f"127.0.0.1:{port}"
    try:
        yield registry.host
    finally:
        await runner.cleanup()
