"""TLS policy: versions, suites, certificate selection (SNI, ECDSA vs RSA),
session resumption, ALPN, and the log lines of failed handshakes."""

import os
import re
import socket
import ssl
import time

import pytest

import harness
from harness import listener, s_client, tls_items

REQUEST = b"GET /echo/policy HTTP/1.0\r\nHost: localhost\r\n\r\n"


@pytest.fixture
def web(portier, certs, http_backend):
    """An http listener with an ECDSA and an RSA certificate for the same names."""
    return portier([("tls", tls_items(certs.ec, certs.rsa)),
                    listener("web", http_backend.port, protocol="http")])


def handshake_ok(out):
    return re.search(r"Cipher is (?!\(NONE\))\S+", out) is not None


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_versions_refused(web, flag):
    mark = web.mark()
    cp = s_client(web.port("web"), [flag, "-cipher", "ALL:@SECLEVEL=0"])
    assert cp.returncode != 0, cp.out
    assert not handshake_ok(cp.out), cp.out
    # Proof that the client did offer the old version and portier refused it
    # for that reason: the log carries tlsctx_error()'s words for
    # SSL_R_UNSUPPORTED_PROTOCOL, not merely some line with "version" in it.
    web.wait_log(r"\[web\] handshake failed client=127\.0\.0\.1:\d+: client's TLS version "
                 r"is too old \(portier accepts TLS 1\.2 and 1\.3 only\)", since=mark)


@pytest.mark.parametrize("flag,proto", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_current_versions_accepted_and_relay(web, certs, flag, proto):
    cp = s_client(web.port("web"), [flag, "-ign_eof"], stdin=REQUEST, ca=certs.ca)
    assert cp.returncode == 0, cp.out + cp.err
    assert "Protocol  : " + proto in cp.out or ("New, %s," % proto) in cp.out, cp.out
    assert "Verify return code: 0 (ok)" in cp.out
    assert "method=GET path=/echo/policy host=localhost" in cp.out


def nmap_ciphers(port):
    cp = harness.run(["nmap", "-Pn", "-n", "-p", str(port), "--script", "+ssl-enum-ciphers",
                      "--script-timeout", "90s", "127.0.0.1"], timeout=150)
    assert cp.returncode == 0, cp.out + cp.err
    found = {}
    proto = None
    for line in cp.out.splitlines():
        m = re.match(r"\|\s+(SSLv3|TLSv1\.[0-3]):\s*$", line)
        if m:
            proto = m.group(1)
            found[proto] = []
            continue
        m = re.match(r"\|\s+(TLS_\w+)\s", line)
        if m and proto:
            found[proto].append(m.group(1))
    return found, cp.out


ALLOWED_12 = re.compile(r"TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)|"
                        r"CHACHA20_POLY1305_SHA256)")
ALLOWED_13 = re.compile(r"TLS_(AKE_WITH_)?(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)")


def test_only_ecdhe_aead_suites_offered(web):
    found, out = nmap_ciphers(web.port("web"))
    assert set(found) == {"TLSv1.2", "TLSv1.3"}, out
    assert found["TLSv1.2"] and found["TLSv1.3"], out
    bad = [c for c in found["TLSv1.2"] if not ALLOWED_12.fullmatch(c)]
    bad += [c for c in found["TLSv1.3"] if not ALLOWED_13.fullmatch(c)]
    assert not bad, "suites other than ECDHE+AEAD offered: %s\n%s" % (bad, out)
    # Both certificates are in play, so both key types' suites are offered.
    assert any("_ECDSA_" in c for c in found["TLSv1.2"]), out
    assert any("_RSA_" in c for c in found["TLSv1.2"]), out


@pytest.mark.parametrize("cipher,ok", [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", True),
    ("ECDHE-RSA-AES256-GCM-SHA384", True),
    ("ECDHE-RSA-CHACHA20-POLY1305", True),
    ("AES128-GCM-SHA256", False),            # RSA key exchange
    ("DHE-RSA-AES128-GCM-SHA256", False),    # finite-field DH
    ("ECDHE-RSA-AES128-SHA", False),         # CBC
    ("ECDHE-ECDSA-AES256-SHA384", False),    # CBC
])
def test_tls12_suite(web, certs, cipher, ok):
    cp = s_client(web.port("web"), ["-tls1_2", "-cipher", cipher + ":@SECLEVEL=0"], ca=certs.ca)
    assert handshake_ok(cp.out) == ok, cp.out + cp.err
    if ok:
        assert "Cipher    : " + cipher in cp.out, cp.out


@pytest.mark.parametrize("policy_items", [[("policy", "modern")], [("min_version", "1.3")]])
def test_tls13_only(portier, certs, http_backend, policy_items):
    p = portier([("tls", tls_items(certs.ec) + policy_items),
                 listener("web", http_backend.port, protocol="http")])
    assert not handshake_ok(s_client(p.port("web"), ["-tls1_2"], ca=certs.ca).out)
    cp = s_client(p.port("web"), ["-tls1_3"], ca=certs.ca)
    assert handshake_ok(cp.out), cp.out


def peer_der(port, name, ctx=None):
    """The leaf certificate portier sends for SNI name (None: no SNI)."""
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10 * harness.SLOW) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            return t.getpeercert(binary_form=True)


def test_sni_selects_certificate(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec, certs.wild, certs.other)),
                 listener("web", http_backend.port, protocol="http")])
    port = p.port("web")
    verify = certs.client_context()
    assert peer_der(port, "other.example.org", verify) == certs.other.der
    assert peer_der(port, "mail.example.org", verify) == certs.ec.der
    assert peer_der(port, "localhost", verify) == certs.ec.der
    # exact SAN beats the wildcard listed earlier; the wildcard covers one label
    assert peer_der(port, "foo.example.org", verify) == certs.wild.der
    assert peer_der(port, "a.b.example.org") == certs.ec.der
    assert peer_der(port, "unknown.example.net") == certs.ec.der
    assert peer_der(port, None) == certs.ec.der
    # A fully qualified name with its trailing dot is the same host
    # (BoringSSL hands the dot on; nginx takes it so too).
    assert peer_der(port, "other.example.org.") == certs.other.der
    assert peer_der(port, "FOO.example.org.") == certs.wild.der


def test_sni_default_is_the_first_certificate(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.other, certs.ec)),
                 listener("web", http_backend.port, protocol="http")])
    assert peer_der(p.port("web"), "unknown.example.net") == certs.other.der
    assert peer_der(p.port("web"), None) == certs.other.der
    assert peer_der(p.port("web"), "localhost") == certs.ec.der


def test_listener_cert_overrides_tls_section(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http",
                          extra=[("cert", certs.other.cert), ("key", certs.other.key)]),
                 listener("web2", http_backend.port, protocol="http")])
    assert peer_der(p.port("web"), "localhost") == certs.other.der
    assert peer_der(p.port("web2"), "localhost") == certs.ec.der


@pytest.mark.parametrize("args,expect", [
    (["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"], "ec"),
    (["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384"], "rsa"),
    (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], "ec"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "rsa"),
    (["-tls1_2", "-sigalgs", "RSA+SHA256:RSA-PSS+SHA256"], "rsa"),
])
@pytest.mark.parametrize("order", ["ec,rsa", "rsa,ec"])
def test_ecdsa_or_rsa_by_client_sigalgs(portier, certs, http_backend, args, expect, order):
    leaves = [getattr(certs, n) for n in order.split(",")]
    p = portier([("tls", tls_items(*leaves)),
                 listener("web", http_backend.port, protocol="http")])
    cp = s_client(p.port("web"), args, ca=certs.ca)
    assert handshake_ok(cp.out), cp.out + cp.err
    assert harness.first_pem_der(cp.out) == getattr(certs, expect).der, cp.out


def _get(t):
    t.sendall(REQUEST)
    out = b""
    for _ in range(1000):
        d = t.recv(65536)
        if not d:
            break
        out += d
    return out


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_session_resumption(web, certs, version):
    ctx = certs.client_context()
    ctx.minimum_version = ctx.maximum_version = version
    port = web.port("web")
    with socket.create_connection(("127.0.0.1", port), timeout=10 * harness.SLOW) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            assert b"method=GET" in _get(t)
            session = t.session
            assert not t.session_reused
    assert session is not None and session.has_ticket, "no session ticket issued"
    harness.wait_for(lambda: harness.close_lines(web.log()), 5, "first close line")
    mark = web.mark()
    with socket.create_connection(("127.0.0.1", port), timeout=10 * harness.SLOW) as s:
        with ctx.wrap_socket(s, server_hostname="localhost", session=session) as t:
            assert b"method=GET" in _get(t)
            assert t.session_reused, "portier did not resume the session"
    m = web.wait_log(r"resumed=(\S+)", since=mark)
    assert m.group(1).lower() in ("yes", "1", "true"), m.group(0)
    first = harness.parse_kv(harness.close_lines(web.log())[0])
    assert first.get("resumed", "").lower() in ("no", "0", "false"), first


def test_alpn(portier, certs, dovecot):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("imaps", dovecot.imap_port, protocol="imap")])
    port = p.port("imaps")

    def connect(protos):
        ctx = certs.client_context()
        if protos:
            ctx.set_alpn_protocols(protos)
        with socket.create_connection(("127.0.0.1", port), timeout=10 * harness.SLOW) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                greeting = t.recv(1000)
                return t.selected_alpn_protocol(), greeting
    alpn, greeting = connect(["imap"])
    assert alpn == "imap" and greeting.startswith(b"* OK")
    alpn, greeting = connect(None)
    assert alpn is None and greeting.startswith(b"* OK")
    # ALPACA: a client that offers only a foreign protocol is refused, with
    # the no_application_protocol alert (RFC 7301 section 3.2), not any other
    # failure; and portier says why.
    mark = p.mark()
    with pytest.raises(ssl.SSLError) as e:
        connect(["http/1.1"])
    # Debian's Python has no reason code for this alert: match its text.
    assert "tlsv1 alert no application protocol" in str(e.value), e.value
    p.wait_log(r"\[imaps\] handshake failed client=127\.0\.0\.1:\d+: client offered only "
               r"foreign ALPN protocols \(cross-protocol attack defence\)", since=mark)


def _expect_closed(sock, seconds):
    """Read until EOF or reset within seconds; returns what was received."""
    sock.settimeout(seconds * harness.SLOW)
    got = b""
    try:
        for _ in range(100):
            d = sock.recv(4096)
            if not d:
                break
            got += d
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("portier kept the connection open for %ds" % seconds)
    return got


def test_plaintext_client_on_implicit_tls_port_imap(portier, certs, closed_port):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("imaps", closed_port, protocol="imap",
                          extra=[("handshake_timeout", "5s")])])
    port = p.port("imaps")
    mark = p.mark()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"a001 LOGIN user password\r\n")
        _expect_closed(s, 10)
    m = p.wait_log(r"client spoke plaintext on implicit-TLS port (\d+); use imaps:// or port 143",
                   since=mark)
    # The port the client dialled, as bound (the listener is configured as 0
    # for the test, and the hint must not say 0).
    assert int(m.group(1)) == port, m.group(0)


def test_plaintext_client_on_implicit_tls_port_http(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http",
                          extra=[("handshake_timeout", "5s")])])
    mark = p.mark()
    with socket.create_connection(("127.0.0.1", p.port("web")), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        _expect_closed(s, 10)
    m = p.wait_log(r"client spoke plaintext on implicit-TLS port (\d+); use https:// or port 80",
                   since=mark)
    assert int(m.group(1)) == p.port("web"), m.group(0)
    assert not http_backend.requests, "a plaintext request reached the backend"


def test_silent_client_hits_handshake_timeout(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http",
                          extra=[("handshake_timeout", "1500ms")])])
    mark = p.mark()
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", p.port("web")), timeout=10) as s:
        _expect_closed(s, 10)
    elapsed = time.monotonic() - t0
    assert 1.3 <= elapsed <= 6 * harness.SLOW, elapsed
    # The deadline as configured (not rounded to "2s"), and the likely cause.
    p.wait_log(r"\[web\] handshake failed client=.*: TLS handshake timed out after 1500ms with no ClientHello "
               r"\(a plaintext client waiting for a greeting on an implicit-TLS port\?\)$",
               since=mark)


def _leaf_of(certs, workdir, name, genpkey):
    """A leaf of the test CA for Certs.MAIN_NAMES whose key genpkey's
    arguments make (Certs itself makes P-256 and RSA keys only)."""
    class Leaf:
        pass
    d = str(workdir)
    leaf = Leaf()
    leaf.key, leaf.cert = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    csr, pem, ext = (os.path.join(d, name + s) for s in (".csr", ".leaf.pem", ".ext"))
    env = {"OPENSSL_CONF": "/dev/null"}
    harness.run(["openssl", "genpkey"] + genpkey + ["-out", leaf.key], env=env, check=True)
    harness.run(["openssl", "req", "-new", "-key", leaf.key, "-subj", "/CN=localhost",
                 "-out", csr], env=env, check=True)
    with open(ext, "w") as f:
        f.write("subjectAltName = DNS:localhost, DNS:mail.example.org\n")
    harness.run(["openssl", "x509", "-req", "-in", csr, "-CA", certs.ca,
                 "-CAkey", os.path.join(certs.dir, "ca.key"), "-set_serial", "77",
                 "-days", "90", "-extfile", ext, "-out", pem], env=env, check=True)
    with open(pem) as f, open(certs.ca) as ca, open(leaf.cert, "w") as out:
        text = f.read()
        out.write(text + ca.read())
    leaf.der = ssl.PEM_cert_to_DER_cert(text)
    return leaf


P384 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]
ED25519 = ["-algorithm", "ED25519"]


@pytest.mark.parametrize("args,expect", [
    # TLS 1.3 signature algorithms name the curve: a P-256 one does not
    # take the P-384 certificate, and the RSA one serves that client.
    (["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256"], "rsa"),
    (["-tls1_3", "-sigalgs", "ecdsa_secp384r1_sha384:rsa_pss_rsae_sha256"], "p384"),
    # TLS 1.2 ones do not; there the curve must be in supported_groups.
    (["-tls1_2", "-groups", "P-256"], "rsa"),
    (["-tls1_2", "-groups", "X25519:P-384"], "p384"),
    (["-tls1_2"], "p384"),
])
@pytest.mark.parametrize("order", ["p384,rsa", "rsa,p384"])
def test_ecdsa_certificate_only_on_a_curve_the_client_takes(portier, certs, workdir,
                                                            http_backend, args, expect, order):
    leaves = {"p384": _leaf_of(certs, workdir, "p384", P384), "rsa": certs.rsa}
    p = portier([("tls", tls_items(*(leaves[n] for n in order.split(",")))),
                 listener("web", http_backend.port, protocol="http")])
    cp = s_client(p.port("web"), args, ca=certs.ca)
    assert handshake_ok(cp.out), cp.out + cp.err
    assert harness.first_pem_der(cp.out) == leaves[expect].der, cp.out


@pytest.mark.parametrize("args,expect", [
    (["-tls1_3"], "ed"),
    (["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"], "rsa"),
    (["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256"], "rsa"),
    (["-tls1_3", "-sigalgs", "ed25519:ecdsa_secp256r1_sha256"], "ed"),
    (["-tls1_2", "-sigalgs", "ed25519:RSA+SHA256"], "ed"),
    (["-tls1_2", "-sigalgs", "ECDSA+SHA256:RSA+SHA256"], "rsa"),
])
def test_ed25519_certificate_only_for_a_client_offering_ed25519(portier, certs, workdir,
                                                               http_backend, args, expect):
    leaves = {"ed": _leaf_of(certs, workdir, "ed", ED25519), "rsa": certs.rsa}
    p = portier([("tls", tls_items(leaves["ed"], certs.rsa)),
                 listener("web", http_backend.port, protocol="http")])
    cp = s_client(p.port("web"), args, ca=certs.ca)
    assert handshake_ok(cp.out), cp.out + cp.err
    assert harness.first_pem_der(cp.out) == leaves[expect].der, cp.out
