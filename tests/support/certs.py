"""Throw-away X.509 material made in memory."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def self_signed_pem(key: rsa.RSAPrivateKey | None = None, common_name: str = "test-ca") -> str:
    """A self-signed CA certificate (PEM), valid for a day; a fresh RSA key unless given one."""
    if key is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def ca_and_server_cert(server_name: str) -> tuple[str, str, str]:
    """A CA (PEM) and a server certificate and key (PEM) it signed for ``server_name`` only.

    The certificate names no IP address: a client reaching it at 127.0.0.1 must be told
    which name to verify.
    """
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_pem = self_signed_pem(ca_key, common_name="test-ca")
    ca_cert = x509.load_pem_x509_certificate(ca_pem.encode())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ca_pem, certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem
