"""A client for the OCI distribution API (``/v2/``) of one registry host.

Auth follows Docker's protocol: a request answered 401 carries ``WWW-Authenticate``; for
``Bearer realm=...,service=...,scope=...`` a token is fetched from the realm (with basic auth
when credentials are known, anonymously otherwise) and cached per scope; for ``Basic`` the
credentials go in the Authorization header. Transient failures (connection errors, 429, 5xx)
are retried with exponential backoff. ``127.0.0.1``/``localhost`` registries and hosts passed
as insecure are spoken to over plain HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp

from kybern.runtime.images import errors, mediatypes, model

RETRIES = 4
BACKOFF = 0.2  # seconds, doubled each retry
_PLAIN_HTTP_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def scheme_for(host: str, insecure: set[str]) -> str:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return "http" if host in insecure or name in _PLAIN_HTTP_HOSTS else "https"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Client:
    """Requests against ``<scheme>://<host>/v2/`` with auth and retries."""

    session: aiohttp.ClientSession
    host: str  # API host, e.g. "registry-1.docker.io" or "127.0.0.1:5000"
    scheme: str = "https"
    credentials: model.Credentials | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _tokens: dict[str, str] = field(default_factory=dict)  # scope -> bearer token
    _basic: bool = False

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        scope: str = "",
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Response:
        """A whole-body request; raises :class:`errors.RegistryError` for a status not in ``ok``."""
        async with self.stream(method, path, scope=scope, headers=headers, data=data) as resp:
            body = await resp.read()
            if resp.status not in ok:
                raise _error(method, path, resp.status, body)
            return Response(resp.status, dict(resp.headers), body)

    def stream(
        self,
        method: str,
        path: str,
        *,
        scope: str = "",
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> _Streaming:
        return _Streaming(self, method, path, scope, headers or {}, data)

    async def _send(
        self, method: str, url: str, scope: str, headers: dict[str, str], data: bytes | None
    ) -> aiohttp.ClientResponse:
        """One request with auth, retried on transient failures; the caller releases it."""
        delay = BACKOFF
        for attempt in range(RETRIES + 1):
            try:
                resp = await self._authorized(method, url, scope, headers, data)
            except (TimeoutError, aiohttp.ClientConnectionError) as e:
                if attempt == RETRIES:
                    raise errors.RegistryError(f"{method} {url}: {e or type(e).__name__}") from e
            else:
                if resp.status not in (429, 500, 502, 503, 504) or attempt == RETRIES:
                    return resp
                resp.release()
            await self.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def _authorized(
        self, method: str, url: str, scope: str, headers: dict[str, str], data: bytes | None
    ) -> aiohttp.ClientResponse:
        resp = await self.session.request(
            method, url, headers=self._auth(scope, headers), data=data
        )
        if resp.status != 401:
            return resp
        challenge = resp.headers.get("WWW-Authenticate", "")
        resp.release()
        if not await self._answer(challenge, scope):
            return await self.session.request(method, url, headers=headers, data=data)
        return await self.session.request(
            method, url, headers=self._auth(scope, headers), data=data
        )

    def _auth(self, scope: str, headers: dict[str, str]) -> dict[str, str]:
        out = dict(headers)
        if scope in self._tokens:
            out["Authorization"] = "Bearer " + self._tokens[scope]
        elif self._basic and self.credentials is not None:
            out["Authorization"] = _basic_header(self.credentials)
        return out

    async def _answer(self, challenge: str, scope: str) -> bool:
        """Obtain what the challenge asks for; False if nothing can be done."""
        kind, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        if kind.lower() == "basic" and self.credentials is not None:
            self._basic = True
            return True
        if kind.lower() != "bearer" or "realm" not in params:
            return False
        self._tokens[scope] = await self._token(params, scope or params.get("scope", ""))
        return True

    async def _token(self, params: dict[str, str], scope: str) -> str:
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        creds = self.credentials
        if creds is not None and creds.registry_token:
            return creds.registry_token
        headers = {}
        if creds is not None and creds.username:
            headers["Authorization"] = _basic_header(creds)
        url = params["realm"] + "?" + urlencode(query)
        async with self.session.get(url, headers=headers) as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else {}
            if resp.status != 200:
                raise errors.RegistryError(
                    f"authentication to {self.host} failed: token server answered {resp.status}",
                    status=resp.status,
                    code="UNAUTHORIZED",
                )
        token = body.get("token") or body.get("access_token") or ""
        if not token:
            raise errors.RegistryError(
                f"token server for {self.host} returned no token", code="UNAUTHORIZED"
            )
        return str(token)

    # --- distribution API ----------------------------------------------------------------

    async def ping(self) -> None:
        await self.request("GET", "/v2/")

    async def get_manifest(self, repository: str, ref: str) -> tuple[bytes, str]:
        """Manifest or index bytes and media type (``ref`` is a tag or digest)."""
        resp = await self.request(
            "GET",
            f"/v2/{repository}/manifests/{ref}",
            scope=pull_scope(repository),
            headers={"Accept": mediatypes.ACCEPT},
        )
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return resp.body, media_type

    async def blob_chunks(self, repository: str, digest: str) -> AsyncIterator[bytes]:
        async with self.stream(
            "GET", f"/v2/{repository}/blobs/{digest}", scope=pull_scope(repository)
        ) as resp:
            if resp.status != 200:
                raise _error("GET", f"blob {digest}", resp.status, await resp.read())
            async for chunk in resp.content.iter_chunked(1 << 16):
                yield chunk

    async def has_blob(self, repository: str, digest: str) -> bool:
        resp = await self.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scope=push_scope(repository), ok=(200, 404)
        )
        return resp.status == 200

    async def upload_blob(
        self, repository: str, digest: str, data: bytes, *, mount_from: str = ""
    ) -> None:
        """POST an upload (or a cross-repository mount), then PUT the content ``?digest=``."""
        path = f"/v2/{repository}/blobs/uploads/"
        scope = push_scope(repository)
        if mount_from:
            scope += " " + pull_scope(mount_from)
            path += "?" + urlencode({"mount": digest, "from": mount_from})
        started = await self.request("POST", path, scope=scope, ok=(201, 202))
        if started.status == 201:
            return  # mounted
        location = started.headers.get("Location", "")
        sep = "&" if "?" in location else "?"
        await self.request(
            "PUT",
            location + sep + urlencode({"digest": digest}),
            scope=scope,
            headers={"Content-Type": "application/octet-stream"},
            data=data,
            ok=(201, 204),
        )

    async def put_manifest(self, repository: str, ref: str, data: bytes, media_type: str) -> str:
        resp = await self.request(
            "PUT",
            f"/v2/{repository}/manifests/{ref}",
            scope=push_scope(repository),
            headers={"Content-Type": media_type},
            data=data,
            ok=(201, 202),
        )
        return resp.headers.get("Docker-Content-Digest", "")


class _Streaming:
    """``async with client.stream(...) as resp``: a response released on exit."""

    def __init__(
        self,
        client: Client,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str],
        data: bytes | None,
    ) -> None:
        self.args = (method, client.url(path), scope, headers, data)
        self.client = client
        self.resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        self.resp = await self.client._send(*self.args)
        return self.resp

    async def __aexit__(self, *exc: object) -> None:
        if self.resp is not None:
            self.resp.release()


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _basic_header(creds: model.Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _error(method: str, what: str, status: int, body: bytes) -> errors.RegistryError:
    """A RegistryError from the distribution API's ``{"errors": [{code, message}]}`` body."""
    code, message = "", body[:200].decode("utf-8", "replace")
    try:
        first: dict[str, Any] = json.loads(body)["errors"][0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    text = {401: "unauthorized", 403: "denied", 404: "not found"}.get(status, f"HTTP {status}")
    return errors.RegistryError(
        f"{method} {what}: {text}: {message}".rstrip(": "), status=status, code=code
    )
