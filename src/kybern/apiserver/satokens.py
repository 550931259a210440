"""ServiceAccount tokens: signed JWTs that name a ServiceAccount, as Kubernetes issues them.

``Issuer`` signs and verifies. A token's claims follow kube-apiserver's (pkg/serviceaccount):
``iss`` (``--service-account-issuer``, default ``https://kubernetes.default.svc.cluster.local``),
``sub`` ``system:serviceaccount:<ns>:<name>``, ``aud``, ``exp``, ``iat``, ``nbf``, ``jti`` and the
private ``kubernetes.io`` claim with the namespace, the serviceaccount's name and uid, and the
pod, secret or node the token is bound to (a pod-bound token also names the pod's node).
The key is the PKI's ``sa.key`` (EC P-256, so ES256; Kubernetes accepts ES256 keys too); the
header's ``kid`` is Kubernetes' key id (base64url of the SHA-256 of the DER public key).

``TokenAuthenticator`` is the API server's bearer-token authenticator for them: signature,
issuer, expiry (with Kubernetes' one-minute leeway) and the API server's own audience (the
issuer, as kube-apiserver's ``--api-audiences`` defaults to it), then the objects the token
names must still exist with the same uid (``--service-account-lookup``, on by default); an
object deleted more than 60 s ago invalidates it. Lookups read the watch cache (sync).

``install``/``issuer_for`` tie an Issuer to a Registry so the TokenRequest operation (over
HTTP or in-process) finds the key of the server it runs in.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kybern.apiserver import watchcache

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ALGORITHM = "ES256"
PRIVATE_CLAIM = "kubernetes.io"
USER_PREFIX = "system:serviceaccount:"
ALL_GROUP = "system:serviceaccounts"
LEEWAY = 60  # seconds; Kubernetes validates exp/nbf with jwt.DefaultLeeway
DELETION_GRACE = 60  # seconds an object may have been deleting before its tokens stop working
# A projected token asking for exactly 3607 s is a "warn-only" one: kube-apiserver
# (--service-account-extend-token-expiration, on by default) makes it valid for a year and
# records the requested lifetime in ``warnafter``, so old clients that never re-read the file
# keep working while the kubelet still rotates it hourly.
WARN_ONLY_EXPIRATION = 3607
EXTENDED_EXPIRATION = 365 * 24 * 60 * 60

Lookup = Callable[[str, str, str], dict[str, Any] | None]  # (resource, namespace, name) -> obj


@dataclass(frozen=True, slots=True)
class Ref:
    name: str
    uid: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "uid": self.uid}


@dataclass(frozen=True, slots=True)
class Binding:
    """What a token names: its ServiceAccount and at most one bound object (a pod also
    carries its node)."""

    namespace: str
    account: Ref
    pod: Ref | None = None
    secret: Ref | None = None
    node: Ref | None = None


@dataclass(frozen=True, slots=True)
class Claims:
    """A verified token."""

    binding: Binding
    audiences: tuple[str, ...]
    expires: int
    jti: str = ""

    @property
    def username(self) -> str:
        return username(self.binding.namespace, self.binding.account.name)


def username(namespace: str, name: str) -> str:
    return f"{USER_PREFIX}{namespace}:{name}"


def groups(namespace: str) -> tuple[str, ...]:
    return (ALL_GROUP, f"{ALL_GROUP}:{namespace}")


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


class Issuer:
    """Signs ServiceAccount tokens and verifies the ones it signed."""

    def __init__(
        self,
        private_key_pem: bytes,
        *,
        issuer: str = DEFAULT_ISSUER,
        api_audiences: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the service account signing key must be an EC P-256 key")
        self._key = key
        self._public = key.public_key()
        self.kid = key_id(self._public)
        self.issuer = issuer
        self.api_audiences = tuple(api_audiences) or (issuer,)
        self.clock = clock

    def issue(
        self,
        binding: Binding,
        *,
        audiences: Sequence[str],
        expiration_seconds: int,
        warn_after: int = 0,
        now: int | None = None,
    ) -> str:
        """A signed token valid from ``now`` for ``expiration_seconds``."""
        issued = int(self.clock()) if now is None else now
        private: dict[str, Any] = {
            "namespace": binding.namespace,
            "serviceaccount": binding.account.to_dict(),
        }
        for name, ref in (("pod", binding.pod), ("secret", binding.secret), ("node", binding.node)):
            if ref is not None:
                private[name] = ref.to_dict()
        if warn_after:
            private["warnafter"] = issued + warn_after
        payload = {
            "aud": list(audiences),
            "exp": issued + expiration_seconds,
            "iat": issued,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "nbf": issued,
            "sub": username(binding.namespace, binding.account.name),
            PRIVATE_CLAIM: private,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token: str, *, audiences: Sequence[str] | None = None) -> Claims | None:
        """The claims of a token this issuer signed that is valid now for one of
        ``audiences`` (default: the API server's); None otherwise."""
        wanted = list(audiences if audiences is not None else self.api_audiences)
        try:
            payload = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=wanted,
                issuer=self.issuer,
                # times are checked below against our clock (pyjwt reads the wall clock)
                options={
                    "require": ["exp", "iat", "iss", "sub", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            return None
        return _claims(payload) if self._in_time(payload) else None

    def _in_time(self, payload: dict[str, Any]) -> bool:
        now = self.clock()
        exp, nbf = payload.get("exp"), payload.get("nbf", payload.get("iat"))
        if not isinstance(exp, int) or now > exp + LEEWAY:
            return False
        return not isinstance(nbf, int) or now >= nbf - LEEWAY


def _claims(payload: dict[str, Any]) -> Claims | None:
    private = payload.get(PRIVATE_CLAIM)
    if not isinstance(private, dict):
        return None
    namespace = private.get("namespace")
    account = _ref(private.get("serviceaccount"))
    if not isinstance(namespace, str) or account is None:
        return None
    if payload.get("sub") != username(namespace, account.name):
        return None
    binding = Binding(
        namespace=namespace,
        account=account,
        pod=_ref(private.get("pod")),
        secret=_ref(private.get("secret")),
        node=_ref(private.get("node")),
    )
    aud = payload.get("aud")
    auds = (aud,) if isinstance(aud, str) else tuple(str(a) for a in aud or ())
    return Claims(
        binding=binding,
        audiences=auds,
        expires=int(payload["exp"]),
        jti=str(payload.get("jti") or ""),
    )


def _ref(value: Any) -> Ref | None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    return Ref(name=value["name"], uid=str(value.get("uid") or ""))


# -- authentication ----------------------------------------------------------------------------


class TokenAuthenticator:
    """Bearer tokens -> verified Claims whose ServiceAccount (and bound object) still exist."""

    def __init__(self, issuer: Issuer, lookup: Lookup) -> None:
        self.issuer = issuer
        self.lookup = lookup

    def authenticate(self, token: str) -> Claims | None:
        if token.count(".") != 2:
            return None  # not a JWT: some other authenticator's token
        claims = self.issuer.verify(token)
        if claims is None or not self._still_bound(claims.binding):
            return None
        return claims

    def _still_bound(self, binding: Binding) -> bool:
        now = self.issuer.clock()
        checks = [("serviceaccounts", binding.namespace, binding.account)]
        if binding.pod is not None:
            checks.append(("pods", binding.namespace, binding.pod))
        if binding.secret is not None:
            checks.append(("secrets", binding.namespace, binding.secret))
        elif binding.node is not None and binding.pod is None:
            checks.append(("nodes", "", binding.node))
        return all(self._alive(resource, ns, ref, now) for resource, ns, ref in checks)

    def _alive(self, resource: str, namespace: str, ref: Ref, now: float) -> bool:
        obj = self.lookup(resource, namespace, ref.name)
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if ref.uid and meta.get("uid") != ref.uid:
            return False
        deleting = meta.get("deletionTimestamp")
        return not (isinstance(deleting, str) and _seconds(deleting) < now - DELETION_GRACE)


def cache_lookup(cache: watchcache.WatchCache) -> Lookup:
    """A Lookup reading the watch cache (core v1 objects are stored as served)."""

    def lookup(resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        key = watchcache.object_key(resource, namespace, name)
        return cache.resource(resource).objects.get(key)

    return lookup


def _seconds(stamp: str) -> float:
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


# -- the issuer of a registry --------------------------------------------------------------------

_ISSUERS: weakref.WeakKeyDictionary[object, Issuer] = weakref.WeakKeyDictionary()


def install(registry: object, issuer: Issuer) -> None:
    """Make ``issuer`` the token issuer of the server that owns ``registry``."""
    _ISSUERS[registry] = issuer


def issuer_for(registry: object) -> Issuer | None:
    return _ISSUERS.get(registry)
