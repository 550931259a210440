"""Request authentication: who is calling, as Kubernetes decides it.

Two authenticators, tried in Kubernetes' order:

1. x509 client certificates. The TLS layer (``PKI.server_ssl_context``, ``CERT_OPTIONAL``)
   already verified the chain against the cluster CA: a certificate that does not verify
   fails the handshake, so the request never reaches us. The subject's CN is the user name,
   each O a group.
2. Bearer tokens from a static token file (``token,user,uid,"group1,group2"``, Kubernetes'
   ``--token-auth-file`` format), compared in constant time.
3. ServiceAccount tokens (JWTs, ``kybern.apiserver.satokens``) when ``service_accounts`` is
   set: user ``system:serviceaccount:<ns>:<name>``, the account's uid, groups
   ``system:serviceaccounts`` and ``system:serviceaccounts:<ns>``, and Kubernetes' extra keys
   (``authentication.kubernetes.io/pod-name``, ``pod-uid``, ``node-name``, ``node-uid``,
   ``credential-id``).

An authenticated user also gets the group ``system:authenticated``. ``middleware`` puts the
user on ``request[USER_KEY]`` and answers 401 with a ``Status`` body otherwise; health and
version paths stay open to anonymous callers (``system:anonymous``), like Kubernetes'
``system:public-info-viewer``. Authorization comes later; for now every authenticated user may
do everything. The in-process client transport should call ``user_from_*`` directly.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from kybern.apiserver import pki as pki_
from kybern.apiserver import satokens

log = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")


@dataclass(frozen=True, slots=True)
class UserInfo:
    """Mirrors Kubernetes' user.Info (and authentication.k8s.io/v1 UserInfo on the wire)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


USER_KEY = web.RequestKey("user", UserInfo)
ANONYMOUS = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))


class TokenFileError(ValueError):
    """The static token file is malformed (the server should refuse to start)."""


class Authenticator:
    """Turns a request's TLS peer certificate or bearer token into a ``UserInfo``."""

    def __init__(self, *, tokens_file: Path | None = None) -> None:
        self._tokens_file = tokens_file
        self._tokens: dict[bytes, tuple[bytes, UserInfo]] = {}
        self.service_accounts: satokens.TokenAuthenticator | None = None
        self.reload_tokens()

    @classmethod
    def from_pki(cls, pki: pki_.PKI) -> Authenticator:
        return cls(tokens_file=pki.tokens_file)

    def reload_tokens(self) -> None:
        """Re-read the tokens file (blocking I/O; call at startup or from a thread)."""
        if self._tokens_file is None:
            return
        entries = parse_token_file(self._tokens_file.read_text(), source=str(self._tokens_file))
        self._tokens = {
            _digest(token): (token.encode(), _authenticated(user))
            for token, user in entries.items()
        }

    def authenticate(self, request: web.BaseRequest) -> UserInfo | None:
        """The caller's identity, or None when it presented no valid credentials."""
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport is not None else None
        user = self.user_from_peercert(peercert)
        if user is None:
            user = self.user_from_authorization(request.headers.get("Authorization"))
        return user

    def user_from_peercert(self, peercert: Mapping[str, Any] | None) -> UserInfo | None:
        """A user from ``SSLObject.getpeercert()``; that dict is non-empty only once verified."""
        if not peercert:
            return None
        names = [name for rdn in peercert.get("subject", ()) for name in rdn]
        common_names = [value for key, value in names if key == "commonName"]
        if not common_names:
            return None
        organizations = [value for key, value in names if key == "organizationName"]
        return _authenticated(UserInfo(name=common_names[-1], groups=tuple(organizations)))

    def user_from_authorization(self, header: str | None) -> UserInfo | None:
        token = bearer_token(header)
        return None if token is None else self.user_from_token(token)

    def user_from_token(self, token: str) -> UserInfo | None:
        # Look up by digest so the dict probe leaks nothing about the secret's bytes, then
        # confirm with a constant-time comparison.
        candidate = token.encode()
        entry = self._tokens.get(_digest(token))
        if entry is None or not hmac.compare_digest(entry[0], candidate):
            return self._service_account(token)
        return entry[1]

    def _service_account(self, token: str) -> UserInfo | None:
        if self.service_accounts is None:
            return None
        claims = self.service_accounts.authenticate(token)
        return None if claims is None else service_account_user(claims)


def service_account_user(claims: satokens.Claims) -> UserInfo:
    """The user a verified ServiceAccount token authenticates as (Kubernetes' UserInfo)."""
    binding = claims.binding
    extra: dict[str, tuple[str, ...]] = {}
    for name, ref in (("pod", binding.pod), ("node", binding.node)):
        if ref is not None:
            extra[f"authentication.kubernetes.io/{name}-name"] = (ref.name,)
            extra[f"authentication.kubernetes.io/{name}-uid"] = (ref.uid,)
    if claims.jti:
        extra["authentication.kubernetes.io/credential-id"] = (f"JTI={claims.jti}",)
    groups = (*satokens.groups(binding.namespace), AUTHENTICATED_GROUP)
    return UserInfo(name=claims.username, uid=binding.account.uid, groups=groups, extra=extra)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not header:
        return None
    parts = header.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def parse_token_file(text: str, *, source: str = "tokens file") -> dict[str, UserInfo]:
    """Parse ``token,user,uid[,"group1,group2"]`` lines; a later duplicate token wins.

    Blank lines and lines starting with ``#`` are skipped; empty tokens are ignored with a
    warning; fewer than three columns is an error, as in Kubernetes.
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    tokens: dict[str, UserInfo] = {}
    for number, record in enumerate(csv.reader(lines, skipinitialspace=True), start=1):
        if len(record) < 3:
            raise TokenFileError(
                f"token file '{source}' must have at least 3 columns "
                f"(token, user name, user uid), found {len(record)}"
            )
        token, name, uid = (value.strip() for value in record[:3])
        if not token:
            log.warning("empty token in token file '%s', record %d", source, number)
            continue
        if token in tokens:
            log.warning("duplicate token in token file '%s', record %d", source, number)
        groups = _split_groups(record[3]) if len(record) > 3 else ()
        tokens[token] = UserInfo(name=name, uid=uid, groups=groups)
    return tokens


def middleware(
    authenticator: Authenticator, *, public_paths: Sequence[str] = PUBLIC_PATHS
) -> Middleware:
    """aiohttp middleware: sets ``request[USER_KEY]`` or answers 401 Unauthorized.

    Public paths (and their subpaths) admit anonymous callers, but a bearer token that is
    presented and wrong is a 401 everywhere, as in Kubernetes.
    """
    prefixes = tuple(path.rstrip("/") for path in public_paths)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        user = authenticator.authenticate(request)
        if user is None:
            if bearer_token(request.headers.get("Authorization")) is not None:
                return unauthorized()
            if not _is_public(request.path, prefixes):
                return unauthorized()
            user = ANONYMOUS
        request[USER_KEY] = user
        return await handler(request)

    return authenticate


def unauthorized() -> web.Response:
    """The 401 Kubernetes sends: a Status with reason Unauthorized."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    return web.Response(status=401, body=orjson.dumps(body), content_type="application/json")


def _is_public(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED_GROUP in user.groups:
        return user
    return UserInfo(
        name=user.name, uid=user.uid, groups=(*user.groups, AUTHENTICATED_GROUP), extra=user.extra
    )


def _split_groups(value: str) -> tuple[str, ...]:
    return tuple(group.strip() for group in value.split(",") if group.strip())


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
