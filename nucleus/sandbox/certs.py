"""The sandbox's certificates: a private CA, a server certificate for 127.0.0.1 and a device certificate.

They stand in for AWS IoT's: the credentials-provider emulator presents the server certificate and
accepts only client certificates signed by the CA, exactly as the nucleus expects of the real provider.
Made once under `<root>/sandbox/` and reused while valid. The CA's private key is never written: nothing
needs to sign again, and a key that does not exist cannot mint certificates. Keys are EC P-256
(instant to generate), written 0600 and atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THING_NAME = "NucleusSandboxThing"
CA_NAME = "nucleus sandbox CA"
CA_FILE = "root-ca.pem"
SERVER_CERT_FILE = "server.pem.crt"
SERVER_KEY_FILE = "server.pem.key"
DEVICE_CERT_FILE = "device.pem.crt"
DEVICE_KEY_FILE = "private.pem.key"
VALIDITY_DAYS = 825
RENEW_BEFORE_DAYS = 30  # certificates closer than this to expiry are made again


@dataclass(frozen=True)
class SandboxCertificates:
    """Paths of the sandbox's certificate files."""

    folder: Path
    thing_name: str

    @property
    def root_ca(self) -> Path:
        return self.folder / CA_FILE

    @property
    def server_cert(self) -> Path:
        return self.folder / SERVER_CERT_FILE

    @property
    def server_key(self) -> Path:
        return self.folder / SERVER_KEY_FILE

    @property
    def device_cert(self) -> Path:
        return self.folder / DEVICE_CERT_FILE

    @property
    def device_key(self) -> Path:
        return self.folder / DEVICE_KEY_FILE


def ensure_certificates(folder: Path, *, thing_name: str = THING_NAME) -> tuple[SandboxCertificates, bool]:
    """The certificates under `folder` (made when missing or no longer valid) and whether they were made."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    certs = SandboxCertificates(folder, thing_name)
    if _still_valid(certs):
        return certs, False
    _create(certs)
    return certs, True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _not_after(cert: Any) -> dt.datetime:
    after: dt.datetime = getattr(cert, "not_valid_after_utc", None) or \
        cert.not_valid_after.replace(tzinfo=dt.timezone.utc)
    return after


def _still_valid(certs: SandboxCertificates) -> bool:
    """Every file loads, is signed by the CA, matches its key, names the right subject and is not near expiry."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        ca = x509.load_pem_x509_certificate(certs.root_ca.read_bytes())
        pairs = []
        for cert_path, key_path in ((certs.server_cert, certs.server_key), (certs.device_cert, certs.device_key)):
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            pairs.append((cert, key))
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        horizon = _now() + dt.timedelta(days=RENEW_BEFORE_DAYS)
        for cert, key in pairs:
            cert.verify_directly_issued_by(ca)
            if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
                return False
            if _not_after(cert) < horizon:
                return False
        if _not_after(ca) < horizon:
            return False
        server, device = pairs[0][0], pairs[1][0]
        sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if ipaddress.ip_address("127.0.0.1") not in sans.get_values_for_type(x509.IPAddress):
            return False
        names = device.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return bool(names) and names[0].value == certs.thing_name
    except Exception:  # missing, unreadable, corrupt, wrong signature: make them again
        return False


def _create(certs: SandboxCertificates) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _now()
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=VALIDITY_DAYS)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nucleus sandbox"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name(CA_NAME)).issuer_name(name(CA_NAME))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(common: str, usage: Any, sans: list[Any] | None) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(common)).issuer_name(ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    server, server_key = leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH,
                              [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    device, device_key = leaf(certs.thing_name, ExtendedKeyUsageOID.CLIENT_AUTH, None)

    def pem_key(key: Any) -> bytes:
        pem: bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
        return pem

    def pem_cert(cert: Any) -> bytes:
        pem: bytes = cert.public_bytes(serialization.Encoding.PEM)
        return pem

    # Keys first: a crash in between leaves certificates that fail `_still_valid`, never a stale pair.
    write_atomically(certs.server_key, pem_key(server_key), 0o600)
    write_atomically(certs.device_key, pem_key(device_key), 0o600)
    write_atomically(certs.server_cert, pem_cert(server), 0o644)
    write_atomically(certs.device_cert, pem_cert(device), 0o644)
    write_atomically(certs.root_ca, pem_cert(ca), 0o644)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` with `mode` from the first byte on, replacing any old file in one step."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
