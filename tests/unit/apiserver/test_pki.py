"""Tests for kybern.apiserver.pki: generation, reuse, reissue rules, file modes, helpers."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kybern.apiserver import authn, pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in ext.get_values_for_type(x509.IPAddress)
    }


def _snapshot(p: pki.PKI) -> dict[str, bytes]:
    paths = [p.ca_cert, p.ca_key, p.serving_cert, p.serving_key, p.admin_cert, p.admin_key]
    return {path.name: path.read_bytes() for path in [*paths, p.token_file, p.tokens_file]}


@pytest.fixture
def generated(tmp_path: Path) -> pki.PKI:
    return pki.ensure_pki(data_dir=tmp_path, extra_sans=[])


class TestGeneration:
    def test_files_live_under_data_dir_pki(self, tmp_path: Path, generated: pki.PKI) -> None:
        assert generated.ca_cert.parent == tmp_path / "pki"
        assert sorted(_snapshot(generated)) == sorted(p.name for p in (tmp_path / "pki").iterdir())

    def test_secret_files_are_private(self, generated: pki.PKI) -> None:
        for path in (generated.ca_key, generated.serving_key, generated.admin_key):
            assert _mode(path) == 0o600
        assert _mode(generated.token_file) == 0o600
        assert _mode(generated.tokens_file) == 0o600
        assert _mode(generated.ca_cert.parent) == 0o700

    def test_no_temporary_files_left(self, generated: pki.PKI) -> None:
        assert not [p for p in generated.ca_cert.parent.iterdir() if p.name.endswith(".tmp")]

    def test_ca_is_self_signed_ten_year_ca(self, generated: pki.PKI) -> None:
        ca = _cert(generated.ca_cert)
        assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kybern-ca"
        assert ca.issuer == ca.subject
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
        assert lifetime >= datetime.timedelta(days=3650)
        ca.verify_directly_issued_by(ca)

    def test_serving_cert_covers_required_names(self, generated: pki.PKI) -> None:
        serving = _cert(generated.serving_cert)
        serving.verify_directly_issued_by(_cert(generated.ca_cert))
        dns, ips = _sans(serving)
        assert set(pki.CLUSTER_DNS_NAMES) <= dns
        assert socket.gethostname().lower() in dns
        assert {"127.0.0.1", "::1"} <= ips
        assert set(pki.node_addresses()) <= ips
        usage = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in usage

    def test_extra_sans_are_added_but_not_unspecified(self, tmp_path: Path) -> None:
        p = pki.ensure_pki(data_dir=tmp_path, extra_sans=["10.9.8.7", "api.example.com", "0.0.0.0"])
        dns, ips = _sans(_cert(p.serving_cert))
        assert "10.9.8.7" in ips
        assert "api.example.com" in dns
        assert "0.0.0.0" not in ips

    def test_admin_cert_identity(self, generated: pki.PKI) -> None:
        admin = _cert(generated.admin_cert)
        admin.verify_directly_issued_by(_cert(generated.ca_cert))
        assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kybern-admin"
        orgs = [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        assert orgs == ["system:masters"]
        usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usage

    def test_admin_token_is_listed_in_tokens_file(self, generated: pki.PKI) -> None:
        token = generated.admin_token()
        assert len(token) >= 32
        users = authn.parse_token_file(generated.tokens_file.read_text())
        assert users[token].name == "kybern-admin"
        assert users[token].groups == ("system:masters",)


class TestReuse:
    def test_second_start_changes_nothing(self, tmp_path: Path, generated: pki.PKI) -> None:
        before = _snapshot(generated)
        again = pki.ensure_pki(data_dir=tmp_path, extra_sans=[])
        assert again == generated
        assert _snapshot(again) == before

    def test_missing_san_reissues_serving_cert_only(
        self, tmp_path: Path, generated: pki.PKI
    ) -> None:
        before = _snapshot(generated)
        pki.ensure_pki(data_dir=tmp_path, extra_sans=["192.0.2.77"])
        after = _snapshot(generated)
        assert after["apiserver.crt"] != before["apiserver.crt"]
        assert after["apiserver.key"] != before["apiserver.key"]
        for name in ("ca.crt", "ca.key", "admin.crt", "admin.key", "token", "tokens.csv"):
            assert after[name] == before[name], name
        assert "192.0.2.77" in _sans(_cert(generated.serving_cert))[1]

    def test_dropping_an_extra_san_keeps_the_cert(self, tmp_path: Path) -> None:
        p = pki.ensure_pki(data_dir=tmp_path, extra_sans=["192.0.2.77"])
        before = p.serving_cert.read_bytes()
        pki.ensure_pki(data_dir=tmp_path, extra_sans=[])
        assert p.serving_cert.read_bytes() == before

    def test_near_expiry_reissues_leaves_keeps_ca(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_now = pki._now()
        monkeypatch.setattr(pki, "_now", lambda: real_now - datetime.timedelta(days=345))
        p = pki.ensure_pki(data_dir=tmp_path, extra_sans=[])
        before = _snapshot(p)
        monkeypatch.setattr(pki, "_now", lambda: real_now)
        pki.ensure_pki(data_dir=tmp_path, extra_sans=[])
        after = _snapshot(p)
        assert after["ca.crt"] == before["ca.crt"]
        assert after["apiserver.crt"] != before["apiserver.crt"]
        assert after["admin.crt"] != before["admin.crt"]
        remaining = _cert(p.serving_cert).not_valid_after_utc - real_now
        assert remaining > datetime.timedelta(days=300)

    def test_lost_ca_key_regenerates_everything(self, tmp_path: Path, generated: pki.PKI) -> None:
        before = _snapshot(generated)
        generated.ca_key.unlink()
        pki.ensure_pki(data_dir=tmp_path, extra_sans=[])
        after = _snapshot(generated)
        for name in ("ca.crt", "apiserver.crt", "admin.crt"):
            assert after[name] != before[name], name
        assert after["token"] == before["token"]
        ca = _cert(generated.ca_cert)
        _cert(generated.serving_cert).verify_directly_issued_by(ca)
        _cert(generated.admin_cert).verify_directly_issued_by(ca)

    def test_corrupt_serving_cert_is_replaced(self, tmp_path: Path, generated: pki.PKI) -> None:
        generated.serving_cert.write_text("garbage")
        pki.ensure_pki(data_dir=tmp_path, extra_sans=[])
        _cert(generated.serving_cert).verify_directly_issued_by(_cert(generated.ca_cert))

    def test_mismatched_serving_key_is_replaced(self, tmp_path: Path, generated: pki.PKI) -> None:
        generated.serving_key.write_bytes(generated.admin_key.read_bytes())
        pki.ensure_pki(data_dir=tmp_path, extra_sans=[])
        ctx = generated.server_ssl_context()  # load_cert_chain checks that key and cert match
        assert ctx.verify_mode == ssl.CERT_OPTIONAL

    def test_edited_tokens_file_is_kept(self, tmp_path: Path, generated: pki.PKI) -> None:
        generated.tokens_file.write_text("abc,alice,1\n")
        pki.ensure_pki(data_dir=tmp_path, extra_sans=[])
        assert generated.tokens_file.read_text() == "abc,alice,1\n"


class TestSslContext:
    def test_settings(self, generated: pki.PKI) -> None:
        ctx = generated.server_ssl_context()
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.verify_mode == ssl.CERT_OPTIONAL
        assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "kybern-ca"),),)]


class TestClientCerts:
    def test_sign_client_cert(self, generated: pki.PKI) -> None:
        issued = pki.sign_client_cert(
            pki=generated, user="system:node:n1", groups=["system:nodes", "extra"]
        )
        cert = x509.load_pem_x509_certificate(issued.cert_pem)
        cert.verify_directly_issued_by(_cert(generated.ca_cert))
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
        orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        assert orgs == ["system:nodes", "extra"]
        assert b"PRIVATE KEY" in issued.key_pem

    def test_sign_without_ca_fails(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            pki.sign_client_cert(pki=pki.PKI.at(tmp_path), user="u")

    def test_add_token_appends(self, generated: pki.PKI) -> None:
        token = pki.add_token(pki=generated, user="node-1", uid="n1", groups=["system:nodes"])
        users = authn.parse_token_file(generated.tokens_file.read_text())
        assert users[token] == authn.UserInfo(name="node-1", uid="n1", groups=("system:nodes",))
        assert users[generated.admin_token()].name == "kybern-admin"
        assert _mode(generated.tokens_file) == 0o600


class TestNodeAddresses:
    FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
     |-- 10.1.0.5
        /32 host LOCAL
Local:
     |-- 192.0.2.2
        /32 host LOCAL
"""
    IF_INET6 = (
        "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n"
        "fd000000000000000000000000000002 04 40 00 82     eth0\n"
        "00000000000000000000000000000001 01 80 10 80       lo\n"
    )

    def test_parse_fib_trie(self) -> None:
        assert pki.parse_fib_trie(self.FIB_TRIE) == ["127.0.0.1", "192.0.2.2", "10.1.0.5"]

    def test_parse_if_inet6(self) -> None:
        assert pki.parse_if_inet6(self.IF_INET6) == ["fe80::fc:ff:fe00:1", "fd00::2", "::1"]

    def test_node_addresses_are_routable(self) -> None:
        for text in pki.node_addresses():
            ip = ipaddress.ip_address(text)
            assert not ip.is_loopback
            assert not ip.is_link_local
            assert not ip.is_unspecified

    def test_required_sans_classifies_extra(self) -> None:
        dns, ips = pki.required_sans(["Example.COM", "[2001:db8::1]", "::"])
        assert "example.com" in dns
        assert ipaddress.ip_address("2001:db8::1") in ips
        assert ipaddress.ip_address("::") not in ips

    def test_resolve_localhost(self) -> None:
        assert "127.0.0.1" in pki._resolve("localhost", 5.0)

    def test_resolve_gives_up_on_a_hanging_lookup(self, monkeypatch: pytest.MonkeyPatch) -> None:
        release = threading.Event()

        def hang(*args: object, **kwargs: object) -> list[object]:
            release.wait(10)
            return []

        monkeypatch.setattr(socket, "getaddrinfo", hang)
        try:
            assert pki._resolve("slow.example", 0.05) == []
        finally:
            release.set()


class TestTokenLines:
    @pytest.mark.parametrize(
        ("groups", "line"),
        [
            ([], "t,u,1\n"),
            (["a"], "t,u,1,a\n"),
            (["a", "b"], 't,u,1,"a,b"\n'),
        ],
    )
    def test_format(self, groups: list[str], line: str) -> None:
        assert pki.format_token_line(token="t", user="u", uid="1", groups=groups) == line

    def test_round_trip_of_awkward_names(self) -> None:
        line = pki.format_token_line(token="t", user='we"ird,name', uid="1", groups=["g1", "g2"])
        user = authn.parse_token_file(line)["t"]
        assert user == authn.UserInfo(name='we"ird,name', uid="1", groups=("g1", "g2"))
