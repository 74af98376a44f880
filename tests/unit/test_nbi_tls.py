"""The NBI over HTTPS: the real NFVO process (``python -m mano.nbi.server``) with
``--tls-cert``/``--tls-key`` from a CA made at test time, on the NFVI RPC over a fake
driver; the client trusts that CA only when told to."""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_nfvo import FakeDriver  # tests/unit is on sys.path (rootdir-relative, no __init__)

from mano.nbi.client import NbiClient, NbiError, tls_verify
from testbed.infra_server import InfraServer


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool):
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=1))
         .not_valid_after(now + datetime.timedelta(hours=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA certificate and a server certificate for 127.0.0.1 it signed (PEM files)."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca = _cert("testbed test CA", ca_key, "testbed test CA", ca_key, ca=True)
    cert = _cert("127.0.0.1", key, "testbed test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "nbi.pem").write_bytes(cert.public_bytes(pem))
    (d / "nbi.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return d


@pytest.fixture
def nfvo_tls(tmp_path, pki):
    """The NFVO process serving HTTPS: (its URL, the admin secret)."""
    srv = InfraServer(FakeDriver()).start()
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mano.nbi.server", "--state", str(state), "--infra",
         f"http://127.0.0.1:{srv.port}", "--tls-cert", str(pki / "nbi.pem"),
         "--tls-key", str(pki / "nbi.key")],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (state / "nfvo.json").exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the NFVO did not start"
            time.sleep(0.05)
        url = json.loads((state / "nfvo.json").read_text())["url"]
        yield url, (state / "clients" / "admin.secret").read_text().strip()
    finally:
        proc.terminate()
        proc.wait(20)
        srv.stop()


def test_the_nbi_serves_https_and_the_client_trusts_the_given_ca(nfvo_tls, pki):
    """With --tls-cert/--tls-key the NBI's URL is https; a client given the CA gets a token
    and lists NS instances; without it the certificate is refused; plain HTTP to the port
    gets no answer."""
    url, secret = nfvo_tls
    assert url.startswith("https://127.0.0.1:"), url
    verify = tls_verify(pki / "ca.pem")
    token = NbiClient.token(url, "admin", secret, verify=verify)["access_token"]
    nbi = NbiClient(url, token, verify=verify)
    r = nbi.http.get("/nslcm/v1/ns_instances")
    assert r.status_code == 200 and r.json() == [], r.text
    nbi.close()
    with pytest.raises(NbiError, match="CERTIFICATE_VERIFY_FAILED"):
        NbiClient.token(url, "admin", secret)
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/nslcm/v1/api_versions", timeout=5)


def test_a_ca_file_that_is_no_certificate_is_refused_naming_it(tmp_path):
    """tls_verify on a file without PEM certificates raises NbiError naming the file."""
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(NbiError, match=f"cannot use {bad} as CA certificates"):
        tls_verify(bad)
    assert tls_verify(None) is True


@pytest.mark.skipif(os.geteuid() != 0, reason="`testbed up` checks for root first")
@pytest.mark.parametrize("args,words", [
    (["--tls-cert", "CERT"], "--tls-cert and --tls-key go together"),
    (["--tls-cert", "CERT", "--tls-key", "nowhere.key"], "--tls-key nowhere.key: no readable"),
])
def test_testbed_up_refuses_incomplete_tls_options_before_starting(tmp_path, pki, args,
                                                                   words):
    """`testbed up` with a certificate but no key, or a key file that is not there, stops
    with one error line naming the option, before any emulation starts."""
    args = [str(pki / "nbi.pem") if a == "CERT" else a for a in args]
    r = subprocess.run([sys.executable, "-m", "testbed.cli", "up", "--state",
                        str(tmp_path / "state"), *args], check=False, capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    assert r.returncode != 0 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
