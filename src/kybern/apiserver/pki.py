"""The cluster's PKI: a CA, the API server's serving certificate, client certificates, tokens.

``ensure_pki`` runs once when ``kybern server`` starts. The first time it creates, under
``<data_dir>/pki/``, a self-signed CA ("kybern-ca"), a serving certificate signed by it whose
SANs cover every name a client may dial (loopback, ``kubernetes.default.svc...``, the hostname,
each address of the node, plus what the caller adds, such as a specific ``--bind-address``), an
admin client certificate (CN "kybern-admin", O "system:masters"), and an admin bearer token
listed in a Kubernetes static token file (``tokens.csv``). Later starts reuse all of it; the
serving and admin certificates are reissued (the CA kept) when they lack a required SAN, expire
within 30 days or no longer chain to the CA. Keys are EC P-256: the whole first run takes a few
milliseconds of crypto, so a cold server still answers within a second.

The TLS context requests but does not require client certificates (``CERT_OPTIONAL``): a
presented certificate must chain to the CA or the handshake fails; clients without one go on to
bearer-token authentication (see ``kybern.apiserver.authn``). Everything here blocks (file I/O,
crypto): call it before the event loop serves, or from a thread.
"""

from __future__ import annotations

import csv
import datetime
import io
import ipaddress
import os
import secrets
import socket
import ssl
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_COMMON_NAME = "kybern-ca"
SERVING_COMMON_NAME = "kube-apiserver"
ADMIN_USER = "kybern-admin"
ADMIN_GROUP = "system:masters"
CLUSTER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
LOOPBACK_IPS = ("127.0.0.1", "::1")
CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)
# Backdate notBefore so a client whose clock lags a little still accepts a fresh certificate.
CLOCK_SKEW = datetime.timedelta(minutes=5)
RESOLVE_TIMEOUT = 0.25  # seconds; a hostname lookup that hangs on DNS must not delay startup

Key = ec.EllipticCurvePrivateKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class PKI:
    """Where the PKI files live; ``ensure_pki`` returns one whose files all exist."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    token_file: Path
    tokens_file: Path

    @classmethod
    def at(cls, directory: Path) -> PKI:
        return cls(
            ca_cert=directory / "ca.crt",
            ca_key=directory / "ca.key",
            serving_cert=directory / "apiserver.crt",
            serving_key=directory / "apiserver.key",
            admin_cert=directory / "admin.crt",
            admin_key=directory / "admin.key",
            token_file=directory / "token",
            tokens_file=directory / "tokens.csv",
        )

    def admin_token(self) -> str:
        """The bootstrap admin bearer token (also listed in ``tokens_file``)."""
        return self.token_file.read_text().strip()

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS 1.2+, HTTP/1.1 only, client certificates requested and verified if presented."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.serving_cert, self.serving_key)
        ctx.load_verify_locations(cafile=self.ca_cert)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


@dataclass(frozen=True, slots=True)
class ClientCert:
    """A PEM certificate and its PEM (PKCS#8) private key."""

    cert_pem: bytes
    key_pem: bytes


def ensure_pki(*, data_dir: Path, extra_sans: Sequence[str] = ()) -> PKI:
    """Create or reuse the PKI under ``<data_dir>/pki``; see the module docstring."""
    directory = data_dir / "pki"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pki = PKI.at(directory)
    ca_cert, ca_key = _ensure_ca(pki)
    dns_names, ips = required_sans(extra_sans)
    if not _leaf_ok(pki.serving_cert, pki.serving_key, ca_cert, dns_names, ips):
        cert, key = _issue_serving(ca_cert, ca_key, dns_names, ips)
        _write_pair(pki.serving_cert, pki.serving_key, cert, key)
    if not _leaf_ok(pki.admin_cert, pki.admin_key, ca_cert, set(), set()):
        cert, key = _issue_client(ca_cert, ca_key, ADMIN_USER, [ADMIN_GROUP], LEAF_VALIDITY)
        _write_pair(pki.admin_cert, pki.admin_key, cert, key)
    _ensure_tokens(pki)
    return pki


def sign_client_cert(
    *,
    pki: PKI,
    user: str,
    groups: Sequence[str] = (),
    validity: datetime.timedelta = LEAF_VALIDITY,
) -> ClientCert:
    """Issue a client certificate: CN is the user name, one O per group (as Kubernetes reads it)."""
    ca_cert = _load_cert(pki.ca_cert)
    ca_key = _load_key(pki.ca_key)
    if ca_cert is None or ca_key is None:
        raise FileNotFoundError(f"no usable CA under {pki.ca_cert.parent}; run ensure_pki first")
    cert, key = _issue_client(ca_cert, ca_key, user, groups, validity)
    return ClientCert(cert_pem=_cert_pem(cert), key_pem=_key_pem(key))


KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"


def kubelet_client_ssl_context(pki: PKI) -> ssl.SSLContext:
    """The TLS context the API server dials kubelets with (logs, exec, port-forward).

    It presents ``apiserver-kubelet-client.crt`` (CN kube-apiserver-kubelet-client, O
    system:masters; issued next to the CA when missing or expiring) and, as Kubernetes does
    without ``--kubelet-certificate-authority``, does not verify the kubelet's own certificate.
    """
    cert_path = pki.ca_cert.parent / "apiserver-kubelet-client.crt"
    key_path = pki.ca_cert.parent / "apiserver-kubelet-client.key"
    ca_cert, ca_key = _load_cert(pki.ca_cert), _load_key(pki.ca_key)
    if ca_cert is None or ca_key is None:
        raise FileNotFoundError(f"no usable CA under {pki.ca_cert.parent}; run ensure_pki first")
    if not _leaf_ok(cert_path, key_path, ca_cert, set(), set()):
        cert, key = _issue_client(
            ca_cert, ca_key, KUBELET_CLIENT_USER, [ADMIN_GROUP], LEAF_VALIDITY
        )
        _write_pair(cert_path, key_path, cert, key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def ensure_service_account_key(directory: Path) -> bytes:
    """The ServiceAccount token signing key (``<directory>/sa.key``, EC P-256 PKCS#8 PEM),
    created once and kept: tokens already handed out stay valid across restarts."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "sa.key"
    key = _load_key(path)
    if key is None:
        key = _new_key()
        write_atomic(path, _key_pem(key), mode=0o600)
    return _key_pem(key)


def add_token(*, pki: PKI, user: str, uid: str, groups: Sequence[str] = ()) -> str:
    """Append a new random token for ``user`` to the tokens file and return it.

    A running Authenticator sees it after ``reload_tokens()``.
    """
    token = new_token()
    existing = pki.tokens_file.read_text() if pki.tokens_file.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    line = format_token_line(token=token, user=user, uid=uid, groups=groups)
    write_atomic(pki.tokens_file, (existing + line).encode(), mode=0o600)
    return token


def new_token() -> str:
    """A random bearer token: 256 bits, URL-safe (no commas or quotes, safe in the CSV)."""
    return secrets.token_urlsafe(32)


def format_token_line(*, token: str, user: str, uid: str, groups: Sequence[str]) -> str:
    """One line of a static token file: ``token,user,uid,"group1,group2"`` (CSV-quoted)."""
    fields = [token, user, uid, *([",".join(groups)] if groups else [])]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue()


# --- SANs and node addresses -----------------------------------------------------------------


def required_sans(extra_sans: Iterable[str] = ()) -> tuple[set[str], set[IPAddress]]:
    """The DNS names and IP addresses the serving certificate must carry."""
    dns_names = {*CLUSTER_DNS_NAMES, socket.gethostname().lower()}
    ips = {ipaddress.ip_address(ip) for ip in LOOPBACK_IPS}
    ips.update(ipaddress.ip_address(ip) for ip in node_addresses())
    for san in extra_sans:
        ip = _parse_ip(san)
        if ip is None:
            dns_names.add(san.lower())
        elif not ip.is_unspecified:
            ips.add(ip)
    return dns_names, ips


def node_addresses() -> list[str]:
    """Every non-loopback, non-link-local IPv4/IPv6 address of this node, sorted.

    Reads the kernel's tables (no external tools), falling back to ioctl per interface, and
    adds what the hostname resolves to (bounded by RESOLVE_TIMEOUT).
    """
    found = set(_ipv4_addresses()) | set(_ipv6_addresses())
    found.update(_resolve(socket.gethostname(), RESOLVE_TIMEOUT))
    ips = {ip for ip in map(_parse_ip, found) if ip is not None and _routable(ip)}
    return [str(ip) for ip in sorted(ips, key=lambda ip: (ip.version, ip))]


def parse_fib_trie(text: str) -> list[str]:
    """Local IPv4 addresses from ``/proc/net/fib_trie``: each ``|-- A`` then ``/32 host LOCAL``."""
    found: list[str] = []
    last = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|--"):
            last = stripped[3:].strip()
        elif stripped.startswith("/32 host LOCAL") and last and last not in found:
            found.append(last)
    return found


def parse_if_inet6(text: str) -> list[str]:
    """Addresses from ``/proc/net/if_inet6`` (32 hex digits, ifindex, prefix, scope, ...)."""
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if fields and len(fields[0]) == 32:
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return found


def _ipv4_addresses() -> list[str]:
    try:
        return parse_fib_trie(Path("/proc/net/fib_trie").read_text())
    except OSError:
        return _ioctl_ipv4_addresses()


def _ioctl_ipv4_addresses() -> list[str]:
    """SIOCGIFADDR per interface: Linux-only, first address of each interface."""
    try:
        import fcntl
        import struct

        names = [name for _, name in socket.if_nameindex()]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            found = []
            for name in names:
                request = struct.pack("256s", name.encode()[:15])
                try:
                    reply = fcntl.ioctl(sock.fileno(), 0x8915, request)  # SIOCGIFADDR
                except OSError:
                    continue  # interface without an IPv4 address
                found.append(socket.inet_ntoa(reply[20:24]))
            return found
    except (OSError, ImportError):
        return []


def _ipv6_addresses() -> list[str]:
    try:
        return parse_if_inet6(Path("/proc/net/if_inet6").read_text())
    except OSError:
        return []


def _resolve(host: str, timeout: float) -> list[str]:
    """getaddrinfo in a daemon thread, given up after ``timeout`` (it has no timeout itself)."""
    result: list[str] = []

    def lookup() -> None:
        try:
            result.extend(str(info[4][0]) for info in socket.getaddrinfo(host, None))
        except (OSError, UnicodeError):
            pass

    thread = threading.Thread(target=lookup, name="kybern-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    return [] if thread.is_alive() else result


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None


def _routable(ip: IPAddress) -> bool:
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


# --- certificates ----------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ensure_ca(pki: PKI) -> tuple[x509.Certificate, Key]:
    cert, key = _load_cert(pki.ca_cert), _load_key(pki.ca_key)
    if cert is not None and key is not None and _usable(cert, key, datetime.timedelta(0)):
        return cert, key
    key = _new_key()
    builder = _builder(CA_COMMON_NAME, [], CA_VALIDITY, key.public_key(), None)
    ca = (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_pair(pki.ca_cert, pki.ca_key, ca, key)
    return ca, key


def _issue_serving(
    ca_cert: x509.Certificate, ca_key: Key, dns_names: set[str], ips: set[IPAddress]
) -> tuple[x509.Certificate, Key]:
    key = _new_key()
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in sorted(dns_names)]
    names += [x509.IPAddress(ip) for ip in sorted(ips, key=lambda ip: (ip.version, ip))]
    builder = _builder(SERVING_COMMON_NAME, [], LEAF_VALIDITY, key.public_key(), ca_cert)
    builder = _leaf_extensions(builder, ExtendedKeyUsageOID.SERVER_AUTH)
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _issue_client(
    ca_cert: x509.Certificate,
    ca_key: Key,
    user: str,
    groups: Sequence[str],
    validity: datetime.timedelta,
) -> tuple[x509.Certificate, Key]:
    key = _new_key()
    builder = _builder(user, groups, validity, key.public_key(), ca_cert)
    builder = _leaf_extensions(builder, ExtendedKeyUsageOID.CLIENT_AUTH)
    return builder.sign(ca_key, hashes.SHA256()), key


def _builder(
    common_name: str,
    organizations: Sequence[str],
    validity: datetime.timedelta,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate | None,
) -> x509.CertificateBuilder:
    """Subject, issuer, validity, serial and key identifiers; ``issuer=None`` self-signs."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        builder = builder.add_extension(aki, critical=False)
    return builder


def _leaf_extensions(
    builder: x509.CertificateBuilder, usage: x509.ObjectIdentifier
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_ok(
    cert_path: Path,
    key_path: Path,
    ca_cert: x509.Certificate,
    dns_names: set[str],
    ips: set[IPAddress],
) -> bool:
    """Reusable: readable, key matches, chains to the CA, far from expiry, has every SAN."""
    cert, key = _load_cert(cert_path), _load_key(key_path)
    if cert is None or key is None or not _usable(cert, key, RENEW_BEFORE):
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return dns_names <= _dns_sans(cert) and ips <= _ip_sans(cert)


def _usable(cert: x509.Certificate, key: Key, margin: datetime.timedelta) -> bool:
    """The key belongs to the certificate, which stays valid for at least ``margin``."""
    return cert.public_key() == key.public_key() and cert.not_valid_after_utc > _now() + margin


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _dns_sans(cert: x509.Certificate) -> set[str]:
    sans = _sans(cert)
    return {name.lower() for name in sans.get_values_for_type(x509.DNSName)} if sans else set()


def _ip_sans(cert: x509.Certificate) -> set[IPAddress]:
    sans = _sans(cert)
    values = sans.get_values_for_type(x509.IPAddress) if sans else []
    # An IPAddress SAN may also hold a network (name constraints); keep plain addresses.
    return {ip for ip in values if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)}


# --- files -----------------------------------------------------------------------------------


def _new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_key(path: Path) -> Key | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _write_pair(cert_path: Path, key_path: Path, cert: x509.Certificate, key: Key) -> None:
    # Key first: a crash in between leaves a cert-less key, which the next start replaces.
    write_atomic(key_path, _key_pem(key), mode=0o600)
    write_atomic(cert_path, _cert_pem(cert), mode=0o644)


def _ensure_tokens(pki: PKI) -> None:
    try:
        token = pki.admin_token()
    except OSError:
        token = ""
    if not token:
        token = new_token()
        write_atomic(pki.token_file, (token + "\n").encode(), mode=0o600)
    if not pki.tokens_file.exists():
        line = format_token_line(token=token, user=ADMIN_USER, uid=ADMIN_USER, groups=[ADMIN_GROUP])
        write_atomic(pki.tokens_file, line.encode(), mode=0o600)


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` via a temporary file and a rename.

    Readers see the old content or the new, never a torn file; the mode is set before any
    byte is written, so a secret is never readable by others even for a moment.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask may have narrowed it; make it exact
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
