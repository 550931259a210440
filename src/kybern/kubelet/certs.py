"""The kubelet's own TLS: a self-signed serving certificate and the client-CA check.

Kubernetes' API server does not verify the kubelet's serving certificate unless told to, so a
self-signed one (made once and reused from the agent's directory) is enough. Callers are the
other way round: the kubelet trusts only client certificates signed by the cluster CA (the API
server's kubelet-client certificate). The kubelet may not import the API server's PKI, hence
this small generator.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)


def ensure_serving_cert(
    directory: Path, *, hostname: str, addresses: Sequence[str] = ()
) -> tuple[Path, Path]:
    """``kubelet.crt``/``kubelet.key`` under ``directory``, made when missing or expiring."""
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    if _still_valid(cert_path) and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, hostname, addresses)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(key_path, key_pem, 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def server_ssl_context(*, cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """TLS 1.2+; a client certificate is verified against ``client_ca`` when presented (the
    server answers 401 itself when none is, instead of failing the handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _self_signed(
    key: ec.EllipticCurvePrivateKey, hostname: str, addresses: Sequence[str]
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{hostname}@kubelet")])
    sans: list[x509.GeneralName] = [x509.DNSName(hostname)]
    for address in (*addresses, "127.0.0.1"):
        ip = ipaddress.ip_address(address)
        if x509.IPAddress(ip) not in sans:
            sans.append(x509.IPAddress(ip))
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _still_valid(path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > RENEW_BEFORE


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
