"""Tests for kybern.apiserver.authn: token file, header and certificate parsing, the middleware,
and end to end over real TLS (asyncio and uvloop) with the PKI's server context."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvloop
import yaml
from aiohttp import test_utils, web

from kybern.apiserver import authn, kubeconfig, pki

STATUS_401 = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


# --- pure parts ------------------------------------------------------------------------------


class TestTokenFile:
    def test_columns_and_quoted_groups(self) -> None:
        users = authn.parse_token_file('t1,alice,100,"dev,ops"\nt2,bob,200\n')
        assert users["t1"] == authn.UserInfo(name="alice", uid="100", groups=("dev", "ops"))
        assert users["t2"] == authn.UserInfo(name="bob", uid="200")

    def test_blank_comment_and_empty_token_lines_are_skipped(self) -> None:
        users = authn.parse_token_file("\n# a comment\n,nobody,0\nt1,alice,1\n")
        assert list(users) == ["t1"]

    def test_later_duplicate_wins(self) -> None:
        users = authn.parse_token_file("t1,alice,1\nt1,bob,2\n")
        assert users["t1"].name == "bob"

    def test_too_few_columns_is_an_error(self) -> None:
        with pytest.raises(authn.TokenFileError, match="at least 3 columns"):
            authn.parse_token_file("t1,alice\n")


class TestBearerToken:
    @pytest.mark.parametrize(
        ("header", "token"),
        [
            ("Bearer abc", "abc"),
            ("bearer abc", "abc"),
            ("  Bearer abc  ", "abc"),
            ("Bearer abc extra", "abc"),
            ("Bearer ", None),
            ("Bearer", None),
            ("Basic dXNlcjpwYXNz", None),
            ("", None),
            (None, None),
        ],
    )
    def test_parse(self, header: str | None, token: str | None) -> None:
        assert authn.bearer_token(header) == token


class TestAuthenticator:
    @pytest.fixture
    def authenticator(self, tmp_path: Path) -> authn.Authenticator:
        tokens = tmp_path / "tokens.csv"
        tokens.write_text('secret-1,alice,100,"dev"\n')
        return authn.Authenticator(tokens_file=tokens)

    def test_token_user_gets_authenticated_group(self, authenticator: authn.Authenticator) -> None:
        user = authenticator.user_from_authorization("Bearer secret-1")
        assert user == authn.UserInfo(
            name="alice", uid="100", groups=("dev", "system:authenticated")
        )

    @pytest.mark.parametrize("token", ["secret-2", "secret-", "secret-1x", "SECRET-1"])
    def test_wrong_tokens(self, authenticator: authn.Authenticator, token: str) -> None:
        assert authenticator.user_from_token(token) is None

    def test_reload_sees_new_tokens(
        self, tmp_path: Path, authenticator: authn.Authenticator
    ) -> None:
        (tmp_path / "tokens.csv").write_text("secret-9,carol,9\n")
        authenticator.reload_tokens()
        assert authenticator.user_from_token("secret-1") is None
        user = authenticator.user_from_token("secret-9")
        assert user is not None
        assert user.name == "carol"

    def test_peercert_subject(self, authenticator: authn.Authenticator) -> None:
        peercert = {
            "subject": (
                (("organizationName", "system:masters"),),
                (("organizationName", "team-a"),),
                (("commonName", "kybern-admin"),),
            )
        }
        assert authenticator.user_from_peercert(peercert) == authn.UserInfo(
            name="kybern-admin", groups=("system:masters", "team-a", "system:authenticated")
        )

    @pytest.mark.parametrize("peercert", [None, {}, {"subject": ((("organizationName", "x"),),)}])
    def test_no_usable_peercert(self, authenticator: authn.Authenticator, peercert: Any) -> None:
        assert authenticator.user_from_peercert(peercert) is None

    def test_to_dict(self) -> None:
        user = authn.UserInfo(name="a", uid="1", groups=("g",), extra={"k": ("v",)})
        assert user.to_dict() == {
            "username": "a",
            "uid": "1",
            "groups": ["g"],
            "extra": {"k": ["v"]},
        }


# --- middleware over plain HTTP ----------------------------------------------------------------


async def _whoami(request: web.Request) -> web.Response:
    user: authn.UserInfo = request[authn.USER_KEY]
    return web.json_response(user.to_dict())


async def _version(request: web.Request) -> web.Response:
    return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0-kybern"})


def _app(authenticator: authn.Authenticator) -> web.Application:
    app = web.Application(middlewares=[authn.middleware(authenticator)])
    app.router.add_get("/whoami", _whoami)
    app.router.add_get("/healthz", _whoami)
    app.router.add_get("/healthz/ping", _whoami)
    app.router.add_get("/healthzfoo", _whoami)
    app.router.add_get("/version", _version)
    app.router.add_get("/version/", _version)
    return app


class TestMiddleware:
    @pytest.fixture
    async def client(self, tmp_path: Path) -> AsyncIterator[test_utils.TestClient[Any, Any]]:
        tokens = tmp_path / "tokens.csv"
        tokens.write_text("good,alice,1\n")
        server = test_utils.TestServer(_app(authn.Authenticator(tokens_file=tokens)))
        async with test_utils.TestClient(server) as client:
            yield client

    async def test_token_reaches_handler(self, client: test_utils.TestClient[Any, Any]) -> None:
        resp = await client.get("/whoami", headers={"Authorization": "Bearer good"})
        assert resp.status == 200
        assert (await resp.json())["username"] == "alice"

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer bad"}])
    async def test_401_status(
        self, client: test_utils.TestClient[Any, Any], headers: dict[str, str]
    ) -> None:
        resp = await client.get("/whoami", headers=headers)
        assert resp.status == 401
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.json() == STATUS_401

    @pytest.mark.parametrize("path", ["/healthz", "/healthz/ping", "/version", "/version/"])
    async def test_public_paths_admit_anonymous(
        self, client: test_utils.TestClient[Any, Any], path: str
    ) -> None:
        resp = await client.get(path)
        assert resp.status == 200

    async def test_anonymous_identity(self, client: test_utils.TestClient[Any, Any]) -> None:
        body = await (await client.get("/healthz")).json()
        assert body == {"username": "system:anonymous", "groups": ["system:unauthenticated"]}

    async def test_prefix_match_is_per_segment(
        self, client: test_utils.TestClient[Any, Any]
    ) -> None:
        assert (await client.get("/healthzfoo")).status == 401

    async def test_wrong_token_fails_even_on_public_path(
        self, client: test_utils.TestClient[Any, Any]
    ) -> None:
        resp = await client.get("/healthz", headers={"Authorization": "Bearer bad"})
        assert resp.status == 401


# --- end to end over TLS -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _serve(p: pki.PKI) -> AsyncIterator[str]:
    """The test app on 127.0.0.1 (ephemeral port) with the PKI's TLS context."""
    runner = web.AppRunner(_app(authn.Authenticator.from_pki(p)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=p.server_ssl_context())
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _client_context(ca: Path, cert_pem: bytes | None, key_pem: bytes | None, tmp: Path) -> Any:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert_pem is not None and key_pem is not None:
        (tmp / "client.crt").write_bytes(cert_pem)
        (tmp / "client.key").write_bytes(key_pem)
        ctx.load_cert_chain(tmp / "client.crt", tmp / "client.key")
    return ctx


def _kubeconfig_identity(p: pki.PKI, tmp: Path) -> tuple[bytes, bytes]:
    """Client cert and key as a kubeconfig user sees them (decoded from the written file)."""
    path = tmp / "kubeconfig.yaml"
    kubeconfig.write_admin_kubeconfig(pki=p, server_url="https://127.0.0.1:6443", path=path)
    user = yaml.safe_load(path.read_text())["users"][0]["user"]
    return (
        base64.b64decode(user["client-certificate-data"]),
        base64.b64decode(user["client-key-data"]),
    )


async def _get(url: str, ctx: ssl.SSLContext, headers: dict[str, str] | None = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=ctx, headers=headers or {}) as resp,
    ):
        return resp.status, await resp.json()


@pytest.fixture
def cluster_pki(tmp_path: Path) -> pki.PKI:
    return pki.ensure_pki(data_dir=tmp_path / "data", extra_sans=[])


class TestTLS:
    async def test_admin_client_cert(self, cluster_pki: pki.PKI, tmp_path: Path) -> None:
        cert, key = _kubeconfig_identity(cluster_pki, tmp_path)
        ctx = _client_context(cluster_pki.ca_cert, cert, key, tmp_path)
        async with _serve(cluster_pki) as url:
            status, body = await _get(url + "/whoami", ctx)
        assert status == 200
        assert body == {
            "username": "kybern-admin",
            "groups": ["system:masters", "system:authenticated"],
        }

    async def test_signed_node_cert(self, cluster_pki: pki.PKI, tmp_path: Path) -> None:
        issued = pki.sign_client_cert(
            pki=cluster_pki, user="system:node:n1", groups=["system:nodes"]
        )
        ctx = _client_context(cluster_pki.ca_cert, issued.cert_pem, issued.key_pem, tmp_path)
        async with _serve(cluster_pki) as url:
            status, body = await _get(url + "/whoami", ctx)
        assert status == 200
        assert body["username"] == "system:node:n1"
        assert body["groups"] == ["system:nodes", "system:authenticated"]

    async def test_bearer_token(self, cluster_pki: pki.PKI, tmp_path: Path) -> None:
        ctx = _client_context(cluster_pki.ca_cert, None, None, tmp_path)
        auth = {"Authorization": f"Bearer {cluster_pki.admin_token()}"}
        async with _serve(cluster_pki) as url:
            status, body = await _get(url + "/whoami", ctx, auth)
        assert status == 200
        assert body["username"] == "kybern-admin"
        assert "system:masters" in body["groups"]

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
    async def test_unauthenticated(
        self, cluster_pki: pki.PKI, tmp_path: Path, headers: dict[str, str]
    ) -> None:
        ctx = _client_context(cluster_pki.ca_cert, None, None, tmp_path)
        async with _serve(cluster_pki) as url:
            status, body = await _get(url + "/whoami", ctx, headers)
        assert status == 401
        assert body == STATUS_401

    async def test_healthz_without_credentials(self, cluster_pki: pki.PKI, tmp_path: Path) -> None:
        ctx = _client_context(cluster_pki.ca_cert, None, None, tmp_path)
        async with _serve(cluster_pki) as url:
            status, _ = await _get(url + "/healthz", ctx)
        assert status == 200

    async def test_cert_from_another_ca_fails_the_handshake(
        self, cluster_pki: pki.PKI, tmp_path: Path
    ) -> None:
        # Decision: with CERT_OPTIONAL, OpenSSL rejects a presented certificate that does not
        # chain to the CA during the handshake; the request never reaches the middleware.
        other = pki.ensure_pki(data_dir=tmp_path / "other", extra_sans=[])
        issued = pki.sign_client_cert(pki=other, user="kybern-admin", groups=["system:masters"])
        ctx = _client_context(cluster_pki.ca_cert, issued.cert_pem, issued.key_pem, tmp_path)
        async with _serve(cluster_pki) as url:
            with pytest.raises(aiohttp.ClientConnectionError):
                await _get(url + "/whoami", ctx)
            ok_ctx = _client_context(cluster_pki.ca_cert, None, None, tmp_path / "other")
            status, _ = await _get(url + "/healthz", ok_ctx)  # the server is still serving
        assert status == 200


def test_tls_under_uvloop(tmp_path: Path) -> None:
    """The production loop: uvloop's SSL transport must expose the verified peer cert too."""
    p = pki.ensure_pki(data_dir=tmp_path / "data", extra_sans=[])
    cert, key = _kubeconfig_identity(p, tmp_path)
    cert_ctx = _client_context(p.ca_cert, cert, key, tmp_path)
    plain_ctx = _client_context(p.ca_cert, None, None, tmp_path)

    async def scenario() -> list[tuple[int, Any]]:
        async with _serve(p) as url:
            return [
                await _get(url + "/whoami", cert_ctx),
                await _get(
                    url + "/whoami", plain_ctx, {"Authorization": f"Bearer {p.admin_token()}"}
                ),
                await _get(url + "/whoami", plain_ctx),
            ]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(asyncio.wait_for(scenario(), 30))
    assert [status for status, _ in results] == [200, 200, 401]
    assert results[0][1]["groups"] == ["system:masters", "system:authenticated"]
