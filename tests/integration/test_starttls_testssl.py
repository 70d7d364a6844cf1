"""testssl.sh against portier's STARTTLS listeners: no CRITICAL, HIGH or
MEDIUM finding. SMTP always runs; IMAP, POP3, LDAP and FTP only with
PORTIER_SLOW=1 (one scan takes a few minutes), each as its own ctest entry
(integration/test_starttls_testssl_imap, _pop3, _ldap, _ftp) under its own limit,
since four scans of up to SCAN_LIMIT each cannot fit one file's 600 s.

The certificate names a CRL and an OCSP URI (never fetched): testssl rates
a certificate without either HIGH, which is about the certificate, not about
portier. The backend is the recording fake of starttls_support: testssl only needs the
TLS side, and a real opensmtpd would hold the machine-wide smtpd lock for the
whole scan."""

import json
import os
import re
import shutil
import sys
import time

import pytest

import harness
from harness import tls_items
from starttls_support import FakeBackend, revocable_leaf, starttls_listener

SLOW_REASON = "PORTIER_SLOW=1 not set: testssl on imap/pop3/ldap/ftp takes minutes per scan"
if os.environ.get("PORTIER_SLOW") != "1":
    # pytest -q shows skip reasons only with -rs; say it where ctest's log keeps it.
    sys.__stderr__.write("test_starttls_testssl: imap, pop3, ldap, ftp skipped: %s\n" % SLOW_REASON)
BAD = {"CRITICAL", "HIGH", "MEDIUM"}
SCAN_LIMIT = 600


def _slow(proto):
    if proto == "smtp":
        return proto
    return pytest.param(proto, marks=pytest.mark.skipif(os.environ.get("PORTIER_SLOW") != "1",
                                                        reason=SLOW_REASON))


@pytest.mark.skipif(shutil.which("testssl") is None, reason="testssl (package testssl.sh) missing")
@pytest.mark.parametrize("proto", [_slow(p) for p in ("smtp", "imap", "pop3", "ldap", "ftp")])
def test_testssl_finds_nothing_medium_or_worse(portier, certs, workdir, proto):
    if proto == "ftp":
        # AUTH TLS in front of a real (plaintext) vsftpd, as test_ftps runs it.
        from test_ftps import vsftpd
        proc, bport, _ = vsftpd(workdir)
        backend = proc
        extra = [("data_ports", "%d-%d" % (bport + 1, bport + 4))]
    else:
        backend = FakeBackend(proto)
        bport, extra = backend.port, []
    try:
        p = portier([("tls", tls_items(revocable_leaf(certs))),
                     starttls_listener(proto, proto, bport, extra=extra)])
        port = p.port(proto)
        out = os.path.join(str(workdir), "testssl-%s.json" % proto)
        start = time.monotonic()
        cp = harness.run(["timeout", str(SCAN_LIMIT), "testssl", "--quiet", "--color", "0",
                          "--warnings", "off", "--fast", "--add-ca", certs.ca,
                          "--jsonfile", out, "--ip", "127.0.0.1", "--starttls", proto,
                          "--openssl-timeout", "10"] +
                         # testssl 3.0 speaks LDAP StartTLS only through
                         # openssl, and then only its protocol checks run
                         # ("LDAP+STARTTLS over sockets not supported yet");
                         # test_ldap_cipher_suites below covers the rest.
                         (["--ssl-native", "--protocols"] if proto == "ldap" else []) +
                         ["localhost:%d" % port],
                         timeout=SCAN_LIMIT + 30)
        took = time.monotonic() - start
        print("testssl --starttls %s took %.1fs (exit %d)" % (proto, took, cp.returncode))
        assert cp.returncode != 124, "testssl did not finish in %ds" % SCAN_LIMIT
        assert os.path.exists(out), "testssl wrote no JSON; exit %d\n%s\n%s" % (
            cp.returncode, cp.out[-4000:], cp.err[-4000:])
        with open(out) as f:
            findings = json.load(f)
        assert len(findings) > (20 if proto != "ldap" else 5), \
            "testssl scanned too little:\n%s" % cp.out[-4000:]
        # The scan really went through STARTTLS to a TLS handshake.
        ids = {x.get("id") for x in findings}
        assert any(i in ids for i in ("TLS1_3", "TLS1_2")), sorted(ids)
        assert not any(x.get("id") == "scanProblem" and x.get("severity") in ("FATAL", "WARN")
                       for x in findings), [x for x in findings if x.get("id") == "scanProblem"]
        bad = [x for x in findings if x.get("severity") in BAD]
        assert not bad, "testssl found:\n" + "\n".join(
            "%s %s: %s" % (x["severity"], x["id"], x.get("finding")) for x in bad)
        # Both protocols were offered and nothing older.
        by_id = {x["id"]: x.get("finding", "") for x in findings}
        assert by_id.get("TLS1_2", "").startswith("offered"), by_id.get("TLS1_2")
        assert by_id.get("TLS1_3", "").startswith("offered"), by_id.get("TLS1_3")
        # (Native openssl cannot even try SSLv2/3; testssl says so.)
        for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1") if proto != "ldap" else ("TLS1", "TLS1_1"):
            assert by_id.get(old, "not offered").startswith("not offered"), (old, by_id.get(old))
    finally:
        backend.stop()


# TLS 1.2 suites outside portier's policy that BoringSSL itself still
# implements (ssl_cipher.cc), so that only the policy can refuse them, with
# the listener's key (RSA and ECDSA certificates both) able to sign for
# each: RSA key exchange, CBC with either signature, no encryption. (DHE
# and the SHA-256/384 CBC suites are not in BoringSSL at all, and Debian's
# openssl cannot offer 3DES: trying them would prove nothing.)
WEAK_TLS12 = ["AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA", "NULL-SHA",
              "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA",
              "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA"]
GOOD_TLS12 = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305",
              "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"]


def test_ldap_cipher_suites(portier, certs):
    """What testssl cannot check over LDAP StartTLS: that only ECDHE + AEAD
    suites are accepted in TLS 1.2 (openssl s_client, one suite at a time).
    A refusal is portier's: the client gets a handshake_failure alert and
    portier logs "no shared cipher suite" for that very attempt; any other
    failure (no StartTLS, a client that cannot offer the suite) fails."""
    backend = FakeBackend("ldap")
    try:
        p = portier([("tls", tls_items(certs.ec, certs.rsa)),
                     starttls_listener("ldap", "ldap", backend.port)])
        port = p.port("ldap")

        def handshake(cipher):
            cp = harness.run(["openssl", "s_client", "-starttls", "ldap", "-tls1_2",
                              "-cipher", cipher + ":@SECLEVEL=0",
                              "-connect", "127.0.0.1:%d" % port,
                              "-servername", "localhost", "-CAfile", certs.ca],
                             env={"OPENSSL_CONF": "/dev/null"}, input="", timeout=20)
            return cp, ("Cipher is " + cipher in cp.out or ("Cipher    : " + cipher) in cp.out)
        for good in GOOD_TLS12:
            cp, ok = handshake(good)
            assert ok, cp.out + cp.err
        refusal = (r"\[ldap\] handshake failed client=127\.0\.0\.1:\d+: no shared cipher suite "
                   r"\(portier offers ECDHE with AES-GCM or ChaCha20-Poly1305 only\)")
        for weak in WEAK_TLS12:
            mark = p.mark()
            cp, ok = handshake(weak)
            assert not ok, weak
            assert re.search(r"alert handshake failure", cp.err), (weak, cp.out + cp.err)
            p.wait_log(refusal, since=mark)
    finally:
        backend.stop()
