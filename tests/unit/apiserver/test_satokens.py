"""ServiceAccount JWTs: claims as Kubernetes writes them, verification, bound-object checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest

from kybern.apiserver import authn, pki, satokens

pytestmark = pytest.mark.timeout(10)

NOW = 1_800_000_000
SA = satokens.Ref("default", "sa-uid")
POD = satokens.Ref("web-0", "pod-uid")
NODE = satokens.Ref("node-a", "node-uid")


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(tmp_path: Path, clock: Clock) -> satokens.Issuer:
    return satokens.Issuer(pki.ensure_service_account_key(tmp_path / "pki"), clock=clock)


def payload(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def issue(issuer: satokens.Issuer, binding: satokens.Binding, **kw: Any) -> str:
    kw.setdefault("audiences", list(issuer.api_audiences))
    kw.setdefault("expiration_seconds", 3600)
    return issuer.issue(binding, **kw)


class TestClaims:
    def test_standard_and_kubernetes_claims(self, issuer: satokens.Issuer) -> None:
        binding = satokens.Binding("team", SA, pod=POD, node=NODE)
        claims = payload(issue(issuer, binding))
        assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
        assert claims["sub"] == "system:serviceaccount:team:default"
        assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
        assert (claims["iat"], claims["nbf"], claims["exp"]) == (NOW, NOW, NOW + 3600)
        assert claims["jti"]
        assert claims["kubernetes.io"] == {
            "namespace": "team",
            "serviceaccount": {"name": "default", "uid": "sa-uid"},
            "pod": {"name": "web-0", "uid": "pod-uid"},
            "node": {"name": "node-a", "uid": "node-uid"},
        }

    def test_unbound_token_names_only_the_account(self, issuer: satokens.Issuer) -> None:
        claims = payload(issue(issuer, satokens.Binding("team", SA)))
        assert set(claims["kubernetes.io"]) == {"namespace", "serviceaccount"}

    def test_warnafter_is_recorded(self, issuer: satokens.Issuer) -> None:
        token = issue(issuer, satokens.Binding("team", SA, pod=POD), warn_after=3607)
        assert payload(token)["kubernetes.io"]["warnafter"] == NOW + 3607

    def test_header_names_the_key(self, issuer: satokens.Issuer) -> None:
        header = jwt.get_unverified_header(issue(issuer, satokens.Binding("team", SA)))
        assert header["alg"] == "ES256"
        assert header["kid"] == issuer.kid
        assert len(issuer.kid) == 43  # base64url SHA-256, unpadded


class TestVerify:
    def test_round_trip(self, issuer: satokens.Issuer) -> None:
        binding = satokens.Binding("team", SA, pod=POD, node=NODE)
        claims = issuer.verify(issue(issuer, binding))
        assert claims is not None
        assert claims.binding == binding
        assert claims.username == "system:serviceaccount:team:default"

    def test_expired_beyond_leeway(self, issuer: satokens.Issuer, clock: Clock) -> None:
        token = issue(issuer, satokens.Binding("team", SA), expiration_seconds=600)
        clock.now += 600 + 30  # within the minute of leeway
        assert issuer.verify(token) is not None
        clock.now += 60
        assert issuer.verify(token) is None

    def test_foreign_audience_is_refused(self, issuer: satokens.Issuer) -> None:
        token = issue(issuer, satokens.Binding("team", SA), audiences=["vault"])
        assert issuer.verify(token) is None
        assert issuer.verify(token, audiences=["vault"]) is not None

    def test_another_key_is_refused(self, issuer: satokens.Issuer, tmp_path: Path) -> None:
        other = satokens.Issuer(pki.ensure_service_account_key(tmp_path / "other"))
        assert issuer.verify(issue(other, satokens.Binding("team", SA))) is None

    def test_garbage_is_refused(self, issuer: satokens.Issuer) -> None:
        assert issuer.verify("a.b.c") is None
        assert issuer.verify("not-a-jwt") is None

    def test_key_is_kept_across_starts(self, tmp_path: Path) -> None:
        first = pki.ensure_service_account_key(tmp_path / "pki")
        assert pki.ensure_service_account_key(tmp_path / "pki") == first
        assert (tmp_path / "pki" / "sa.key").stat().st_mode & 0o777 == 0o600


def objects(*objs: dict[str, Any]) -> satokens.Lookup:
    index = {
        (kind, o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for kind, o in objs
    }  # type: ignore[misc]

    def lookup(resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        return index.get((resource, namespace, name))

    return lookup


def obj(name: str, uid: str, namespace: str = "team", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid, **meta}}


class TestAuthenticator:
    def authenticator(self, issuer: satokens.Issuer, *objs: Any) -> satokens.TokenAuthenticator:
        return satokens.TokenAuthenticator(issuer, objects(*objs))

    def test_live_account_authenticates(self, issuer: satokens.Issuer) -> None:
        auth = self.authenticator(issuer, ("serviceaccounts", obj("default", "sa-uid")))
        assert auth.authenticate(issue(issuer, satokens.Binding("team", SA))) is not None

    def test_deleted_or_recreated_account_does_not(self, issuer: satokens.Issuer) -> None:
        token = issue(issuer, satokens.Binding("team", SA))
        assert self.authenticator(issuer).authenticate(token) is None
        recreated = self.authenticator(issuer, ("serviceaccounts", obj("default", "new-uid")))
        assert recreated.authenticate(token) is None

    def test_bound_pod_must_still_exist(self, issuer: satokens.Issuer, clock: Clock) -> None:
        token = issue(issuer, satokens.Binding("team", SA, pod=POD, node=NODE))
        account = ("serviceaccounts", obj("default", "sa-uid"))
        assert self.authenticator(issuer, account).authenticate(token) is None
        live = self.authenticator(issuer, account, ("pods", obj("web-0", "pod-uid")))
        assert live.authenticate(token) is not None  # the node is not looked up

    def test_pod_deleting_for_over_a_minute_invalidates(
        self, issuer: satokens.Issuer, clock: Clock
    ) -> None:
        token = issue(issuer, satokens.Binding("team", SA, pod=POD))
        deleting = obj("web-0", "pod-uid", deletionTimestamp="2027-01-15T08:00:00Z")
        auth = self.authenticator(
            issuer, ("serviceaccounts", obj("default", "sa-uid")), ("pods", deleting)
        )
        clock.now = 1_800_000_000  # 2027-01-15T08:00:00Z
        assert auth.authenticate(token) is not None
        clock.now += 61
        assert auth.authenticate(token) is None

    def test_user_info_as_kubernetes(self, issuer: satokens.Issuer) -> None:
        auth = self.authenticator(
            issuer,
            ("serviceaccounts", obj("default", "sa-uid")),
            ("pods", obj("web-0", "pod-uid")),
        )
        claims = auth.authenticate(issue(issuer, satokens.Binding("team", SA, pod=POD, node=NODE)))
        assert claims is not None
        user = authn.service_account_user(claims)
        assert user.name == "system:serviceaccount:team:default"
        assert user.uid == "sa-uid"
        assert user.groups == (
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated",
        )
        assert user.extra["authentication.kubernetes.io/pod-name"] == ("web-0",)
        assert user.extra["authentication.kubernetes.io/node-uid"] == ("node-uid",)
        assert user.extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")

    def test_static_tokens_still_win(self, issuer: satokens.Issuer, tmp_path: Path) -> None:
        tokens = tmp_path / "tokens.csv"
        tokens.write_text("secret,alice,alice-uid\n")
        authenticator = authn.Authenticator(tokens_file=tokens)
        authenticator.service_accounts = self.authenticator(
            issuer, ("serviceaccounts", obj("default", "sa-uid"))
        )
        alice = authenticator.user_from_token("secret")
        assert alice is not None
        assert alice.name == "alice"
        sa_token = issue(issuer, satokens.Binding("team", SA))
        user = authenticator.user_from_token(sa_token)
        assert user is not None
        assert user.name == "system:serviceaccount:team:default"
        assert authenticator.user_from_token("wrong") is None
