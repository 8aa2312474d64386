"""HTTPS for a scenario's server ([server] tls = true): fresh certificates, and the clients' trust.

Before the server starts, the harness writes into the run's log folder a throwaway CA, a server
certificate it signs (for 127.0.0.1 and localhost) and the server's private key encrypted with
KEY_PASSWORD; the launch args name them through the {tls_cert}, {tls_key}, {tls_ca} and
{tls_key_password} placeholders. Every client of that server then speaks https:// with
client_context(), which trusts that CA alone.

The files are made with the `openssl` command-line tool, not the `cryptography` package: the GPU
runtime has no `cryptography` (neither .carry/deps.tar.xz nor the project's venv ships it), while
`openssl` comes with the CA bundle of every Debian/Ubuntu image (ca-certificates depends on it).
A CA and a leaf, rather than one self-signed leaf: upstream's own warm-up request verifies with
--ssl-ca-certs through requests/urllib3, which on newer Pythons checks chains with
VERIFY_X509_STRICT, and a strict chain wants a CA that is marked one and a leaf that is not.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scenarios.errors import SlimError

# Not a secret: it guards a key made for one run on the loopback; fixed so a launch line reads the same.
KEY_PASSWORD = "slim-tls-key-password"
PLACEHOLDERS = ("tls_cert", "tls_key", "tls_ca", "tls_key_password")
HOST = "127.0.0.1"
VALID_DAYS = 7

# Our own config, so the extensions do not depend on the host's openssl.cnf.
OPENSSL_CONFIG = f"""\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = slim test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:{HOST}, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # the server's certificate, signed by `ca`
    key: Path  # its private key (PEM, PKCS#8, AES-256 under KEY_PASSWORD)
    ca: Path  # the self-signed CA certificate the clients trust

    def placeholder_values(self) -> dict[str, str]:
        return {"tls_cert": str(self.cert), "tls_key": str(self.key), "tls_ca": str(self.ca),
                "tls_key_password": KEY_PASSWORD}


def write_tls_files(folder: Path) -> TlsFiles:
    """A fresh CA, server key and certificate in `folder` (made or emptied of earlier ones)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SlimError("a tls scenario needs the `openssl` command to make its certificates; none is on PATH")
    folder.mkdir(parents=True, exist_ok=True)
    config, ca_key, csr = folder / "openssl.cnf", folder / "ca.key", folder / "server.csr"
    files = TlsFiles(cert=folder / "cert.pem", key=folder / "key.pem", ca=folder / "ca.pem")
    config.write_text(OPENSSL_CONFIG)
    password = f"pass:{KEY_PASSWORD}"
    ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    for argv in (
        ["genpkey", *ec, "-out", ca_key],
        ["req", "-config", config, "-new", "-x509", "-key", ca_key, "-subj", "/CN=slim test CA",
         "-extensions", "ca", "-days", VALID_DAYS, "-out", files.ca],
        ["genpkey", *ec, "-aes-256-cbc", "-pass", password, "-out", files.key],
        ["req", "-config", config, "-new", "-key", files.key, "-passin", password, "-subj", f"/CN={HOST}",
         "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", files.ca, "-CAkey", ca_key, "-set_serial", "1",
         "-extfile", config, "-extensions", "server", "-days", VALID_DAYS, "-out", files.cert],
    ):
        _openssl(openssl, argv)
    for scratch in (ca_key, csr, config):  # only what the server and its clients read stays
        scratch.unlink()
    return files


def _openssl(openssl: str, argv: list) -> None:
    done = subprocess.run([openssl, *map(str, argv)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SlimError(f"openssl {argv[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")


def client_context(ca: Path) -> ssl.SSLContext:
    """Verifies the server's chain against `ca` only, hostname included. Strict X.509 checks on,
    as urllib3 turns them on for newer Pythons: a chain we accept, upstream's warm-up accepts too."""
    context = ssl.create_default_context(cafile=str(ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def client_env(files: TlsFiles) -> dict[str, str]:
    """For a companion process talking to the server: Python's ssl defaults (urllib, aiohttp, httpx)
    read SSL_CERT_FILE, requests reads REQUESTS_CA_BUNDLE."""
    return {"SSL_CERT_FILE": str(files.ca), "REQUESTS_CA_BUNDLE": str(files.ca)}


def scheme(tls: bool) -> str:
    return "https" if tls else "http"
