"""`portier probe` (issue 19) against real servers started here: portier itself
in each mode (tls, starttls for smtp/imap/pop3/ldap, plain, redirect) in front
of plaintext backends, dovecot with its own TLS off, optional and required, a
closed port, an SSH-like banner, and certificates that expire soon or carry
the wrong name. Each test asserts the classification and the findings in the
human report and in --json (parsed), and the exit status."""

import json
import os
import socket
import threading

import pytest

import harness
from harness import listener, tls_items
from starttls_support import starttls_listener


def probe(port, *args, timeout=30):
    """portier probe 127.0.0.1:port args...: (exit code, human output)."""
    cp = harness.run([harness.PORTIER_BIN, "probe", "127.0.0.1:%d" % port] + list(args),
                     timeout=timeout)
    return cp.returncode, cp.out + cp.err


def probe_json(port, *args, timeout=30):
    """The same with --json: (exit code, the parsed object)."""
    cp = harness.run([harness.PORTIER_BIN, "probe", "--json", "127.0.0.1:%d" % port] +
                     list(args), timeout=timeout)
    assert cp.err == "", cp.err
    return cp.returncode, json.loads(cp.out)


def both(port, *args):
    """Human and JSON results of the same probe, checked to agree on the
    exit status: (rc, text, obj)."""
    rc, text = probe(port, *args)
    rcj, obj = probe_json(port, *args)
    assert rc == rcj, (text, obj)
    return rc, text, obj


def ids(obj):
    return sorted(f["id"] for f in obj["findings"])


@pytest.fixture(scope="module")
def modes(tmp_path_factory, certs):
    """One portier with a listener per mode; the backends are never reached
    (the probe stops after the handshake) but exist."""
    backend = harness.HTTPBackend()
    p = harness.Portier(tmp_path_factory.mktemp("probe-modes"), [
        ("tls", tls_items(certs.ec, certs.rsa)),
        listener("imaps", backend.port, protocol="imap"),
        listener("https", backend.port, protocol="http"),
        listener("smtps", backend.port, protocol="smtp"),
        listener("ldaps", backend.port, protocol="ldap"),
        starttls_listener("smtp", "smtp", backend.port),
        starttls_listener("imap", "imap", backend.port),
        starttls_listener("pop3", "pop3", backend.port),
        starttls_listener("ldap", "ldap", backend.port),
        listener("plain", backend.port, mode="plain", protocol="http"),
        listener("redirect", mode="redirect", protocol="http"),
    ])
    yield p
    p.stop()
    backend.stop()


@pytest.fixture
def ca(certs):
    return ["--cafile", certs.ca, "--sni", "localhost"]


def test_implicit_tls_imaps(modes, ca):
    rc, text, obj = both(modes.port("imaps"), "--as-port", "993", *ca)
    assert rc == 0, text
    assert "model        implicit-tls" in text
    assert "no problems found" in text
    assert obj["model"] == "implicit-tls" and obj["protocol"] == "imap"
    assert obj["protocol_from"] == "port"
    assert obj["tls_versions"] == {"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True,
                                   "TLSv1.3": True}
    assert obj["tls_version"] == "TLSv1.3" and obj["cipher"].startswith("TLS_")
    assert obj["group"]
    c = obj["certificate"]
    assert c["subject_cn"] == "localhost" and "mail.example.org" in c["sans"]
    assert c["verified"] is True and c["name_matches"] is True
    # ECDSA before RSA for a client that takes both (the probe's does)
    assert c["key_type"] == "EC" and c["days_left"] >= 360
    assert obj["findings"] == [] and obj["connections"] == 4


def test_implicit_tls_https_alpn(modes, ca):
    rc, text, obj = both(modes.port("https"), "--as-port", "443", *ca)
    assert rc == 0, text
    assert obj["model"] == "implicit-tls" and obj["protocol"] == "http"
    assert obj["alpn"] == "http/1.1"


@pytest.mark.parametrize("name,port,verb", [("smtp", 587, "STARTTLS"), ("imap", 143, "STARTTLS"),
                                            ("pop3", 110, "STLS"), ("ldap", 389, "StartTLS")])
def test_starttls_required_is_clean(modes, ca, name, port, verb):
    rc, text, obj = both(modes.port(name), "--as-port", str(port), *ca)
    assert rc == 0, text
    assert "model        starttls (required: no login before TLS)" in text
    assert obj["model"] == "starttls" and obj["protocol"] == name
    assert obj["starttls_offered"] is True and obj["starttls_required"] is True
    assert obj["tls_versions"]["TLSv1.3"] is True and obj["tls_versions"]["TLSv1.1"] is False
    assert obj["certificate"]["verified"] is True
    assert obj["findings"] == []


@pytest.mark.parametrize("name,port,other,word", [("imap", 993, 143, "IMAP"),
                                                  ("pop3", 995, 110, "POP3"),
                                                  ("smtp", 465, 587, "SMTP")])
def test_starttls_on_implicit_port(modes, ca, name, port, other, word):
    rc, text, obj = both(modes.port(name), "--as-port", str(port), *ca)
    assert rc == 1, text
    msg = ("%d speaks plaintext %s with STARTTLS: clients configured for SSL/TLS on %d "
           "will fail; either enable implicit TLS on %d or set clients to STARTTLS on %d"
           % (port, word, port, port, other))
    assert msg in text
    assert obj["model"] == "starttls"
    assert ids(obj) == ["starttls-on-implicit-port"]
    assert obj["findings"][0]["message"] == msg


def test_implicit_tls_on_starttls_port(modes, ca):
    # A server-first protocol's greeting is awaited for half the time
    # left, then a ClientHello goes out.
    rc, text, obj = both(modes.port("smtps"), "--as-port", "587", "--timeout", "5s", *ca)
    assert rc == 1, text
    assert obj["model"] == "implicit-tls" and obj["protocol"] == "smtp"
    assert ids(obj) == ["implicit-tls-on-starttls-port"]
    assert ("587 is submission (STARTTLS), where clients connect in plaintext and then "
            "send STARTTLS, but this server expects TLS at once") in text
    assert "set clients to SSL/TLS on 465" in text


@pytest.mark.parametrize("as_port, timeout", [(None, "1s"), ("993", "400ms")])
def test_a_short_timeout_leaves_the_client_hello_time(modes, ca, as_port, timeout):
    """The wait for a banner (1.5 s, on a port of no known protocol) and
    for a greeting (400 ms, on an implicit-TLS port) is at most half the
    time left: with a --timeout shorter than them a TLS server is still
    found (it was "nothing happened in time" / "no greeting in time")."""
    rc, obj = probe_json(modes.port("imaps"), "--timeout", timeout,
                         *((["--as-port", as_port] if as_port else []) + ca))
    assert (obj["model"], obj["error"], obj["tls"]) == ("implicit-tls", None, True), obj
    assert rc == 0, obj


def test_ldaps_on_389(modes, ca):
    rc, text, obj = both(modes.port("ldaps"), "--as-port", "389", *ca)
    assert rc == 1, text
    assert obj["model"] == "implicit-tls" and obj["connections"] >= 2
    assert ids(obj) == ["implicit-tls-on-starttls-port"]


def test_redirect_on_80(modes):
    rc, text, obj = both(modes.port("redirect"), "--as-port", "80")
    assert rc == 0, text
    assert obj["model"] == "plain" and obj["protocol"] == "http"
    assert obj["http_status"].startswith("HTTP/1.1 30")
    assert obj["http_location"].startswith("https://")
    assert obj["findings"] == [] and obj["tls"] is False


def test_plain_http_on_443(modes):
    rc, text, obj = both(modes.port("plain"), "--as-port", "443")
    assert rc == 1, text
    assert obj["model"] == "plain"
    assert ids(obj) == ["plaintext-on-implicit-port"]
    assert ("443 expects implicit TLS; this server answered in plaintext HTTP: clients "
            "configured for SSL/TLS on 443 will fail [") in text


def test_plain_http_on_80_without_redirect(modes):
    rc, text, obj = both(modes.port("plain"), "--as-port", "80")
    assert rc == 1, text
    assert ids(obj) == ["http-no-redirect"]
    assert obj["http_status"].startswith("HTTP/1.") and " 200 " in obj["http_status"] + " "


def test_tls_on_80(modes, ca):
    rc, text, obj = both(modes.port("https"), "--as-port", "80", *ca)
    assert rc == 1, text
    assert ids(obj) == ["implicit-tls-on-plain-port"]


def test_untrusted_chain(modes):
    rc, text, obj = both(modes.port("imaps"), "--as-port", "993", "--sni", "localhost")
    assert rc == 1, text
    assert ids(obj) == ["cert-untrusted"]
    assert "certificate chain does not verify against the system store" in text
    assert obj["certificate"]["verified"] is False and obj["certificate"]["verify_error"]


def test_closed_port(closed_port):
    rc, text, obj = both(closed_port)
    assert rc == 2, text
    assert "model        closed" in text
    assert obj["model"] == "closed" and obj["connections"] == 1


def test_usage_errors():
    for args in (["probe"], ["probe", "nohost"], ["probe", "127.0.0.1:0"],
                 ["probe", "127.0.0.1:25", "--timeout", "forever"],
                 ["probe", "127.0.0.1:25", "--protocol", "gopher"]):
        cp = harness.run([harness.PORTIER_BIN] + args)
        assert cp.returncode == 2, (args, cp.out, cp.err)


# --------------------------------------------------------------------------
# A server that is not TLS nor a known protocol: an SSH-like banner.

class LoopbackServer:
    """A listening socket on 127.0.0.1 and a thread that accepts on it, for
    a bounded number of 0.1 s rounds, and hands each connection to
    handle(c); stop() ends it."""

    rounds = 3000
    host = "127.0.0.1"

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        self.sock.bind((self.host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.serve, daemon=True)]
        self.threads[0].start()

    def serve(self):
        for _ in range(self.rounds):
            if self.done.is_set():
                return
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.handle(c)

    def handle(self, c):
        raise NotImplementedError

    def stop(self):
        self.done.set()
        self.sock.close()
        for t in self.threads:
            t.join(timeout=5)


class BannerServer(LoopbackServer):
    """Sends banner on each connection, then stays silent until the client
    closes. One connection at a time."""

    rounds = 1000

    def __init__(self, banner):
        self.banner = banner
        super().__init__()

    def handle(self, c):
        with c:
            c.sendall(self.banner)
            c.settimeout(0.1)
            # Reads what comes, answering nothing, until the client
            # goes (or 10 s): silent, not closing.
            for _ in range(int(100 * harness.SLOW)):
                try:
                    if not c.recv(4096):
                        break
                except socket.timeout:
                    if self.done.is_set():
                        break
                except OSError:
                    break


@pytest.fixture
def ssh_banner():
    s = BannerServer(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    yield s
    s.stop()


def test_ssh_banner(ssh_banner):
    rc, text, obj = both(ssh_banner.port)
    assert rc == 0, text
    assert obj["model"] == "other" and obj["protocol"] == "ssh"
    assert obj["protocol_from"] == "banner"
    assert obj["greeting"] == "SSH-2.0-OpenSSH_9.2p1 Debian-2"
    assert obj["connections"] == 1


def test_ssh_banner_on_imaps(ssh_banner):
    rc, text, obj = both(ssh_banner.port, "--as-port", "993")
    assert rc == 1, text
    assert ids(obj) == ["unexpected-service"]
    assert "993 is IMAPS, but ssh answered" in text


@pytest.mark.parametrize("port,service", [("443", "HTTPS"), ("636", "LDAPS")])
def test_ssh_banner_on_a_client_first_port(ssh_banner, port, service):
    """On a port whose client speaks first the probe sends a ClientHello at
    once; when that fails, the second connection waits a moment for a
    banner before it speaks, and SSH's names it (SSH on 443 is common)."""
    rc, text, obj = both(ssh_banner.port, "--as-port", port)
    assert rc == 1, text
    assert (obj["model"], obj["protocol"], obj["protocol_from"], obj["connections"]) == \
        ("other", "ssh", "banner", 2), obj
    assert obj["greeting"] == "SSH-2.0-OpenSSH_9.2p1 Debian-2", obj
    assert ids(obj) == ["unexpected-service"]
    assert "%s is %s, but ssh answered [" % (port, service) in text, text


@pytest.mark.parametrize("proto, msg", [
    ("smtp", "%d was given as SMTP (--protocol), but ssh answered ["),
    ("ldap", "%d was given as LDAP (--protocol), but ssh answered ["),
])
def test_ssh_banner_with_protocol_option(ssh_banner, proto, msg):
    """--protocol names what the admin expects on a port that is no
    well-known one: something else answering is a finding there too (it
    was exit 0, "no problems found")."""
    rc, text, obj = both(ssh_banner.port, "--protocol", proto, "--timeout", "2s")
    assert (rc, obj["model"], ids(obj)) == (1, "other", ["unexpected-service"]), text
    assert msg % ssh_banner.port in text, text


def test_hostile_banner_is_escaped():
    s = BannerServer(b"SSH-2.0-\x1b[31mred\x07\"q\\\r\n")
    try:
        rc, text, obj = both(s.port)
    finally:
        s.stop()
    assert "\x1b" not in text and "\x07" not in text
    assert obj["greeting"] == 'SSH-2.0-\\x1b[31mred\\x07\\"q\\\\'


class SmtpRefusingStarttls(LoopbackServer):
    """An SMTP server that offers STARTTLS and refuses it with a reply of
    the caller's bytes."""

    def __init__(self, refusal):
        self.refusal = refusal
        super().__init__()

    def handle(self, c):
        with c:
            c.settimeout(5)
            f = c.makefile("rb")
            c.sendall(b"220 mx.example.org ESMTP\r\n")
            for _ in range(4):
                line = f.readline(512)
                if not line:
                    return
                if line.upper().startswith((b"EHLO", b"HELO")):
                    c.sendall(b"250-mx.example.org\r\n250 STARTTLS\r\n")
                elif line.upper().startswith(b"STARTTLS"):
                    c.sendall(self.refusal)
                else:
                    c.sendall(b"221 bye\r\n")
                    return


def test_hostile_starttls_refusal_is_escaped():
    """The reply that refused STARTTLS is the server's text: the report and
    the finding quote it escaped, like the greeting, never with its ESC and
    BEL bytes raw (a terminal would run them)."""
    s = SmtpRefusingStarttls(b"454 4.7.0 \x1b[31mred\x07\xc2\x9b\"q\r\n")
    try:
        rc, text, obj = both(s.port, "--as-port", "25")
    finally:
        s.stop()
    assert rc == 1, text
    assert "STARTTLS refused: 454 4.7.0 \\x1b[31mred\\x07\\xc2\\x9b\\\"q" in text, text
    assert all(" " <= ch < "\x7f" or ch == "\n" for ch in text), repr(text)
    assert obj["tls_error"] == 'STARTTLS refused: 454 4.7.0 \\x1b[31mred\\x07\\xc2\\x9b\\"q', obj


def test_hostile_certificate_name_is_escaped_in_findings(tmp_path):
    """A served certificate's CN is the server's choice: the findings that
    name it escape it as the certificate line does, so a UTF-8 CSI (U+009B)
    never reaches the terminal raw; --json says it the same way (its bytes
    went as \\u00c2\\u009b, read back as other characters than the name's)."""
    key, pem = str(tmp_path / "evil.key"), str(tmp_path / "evil.pem")
    harness.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem, "-days",
                 "5", "-utf8", "-subj", "/CN=evil\u009b31m"], check=True,
                env={"OPENSSL_CONF": "/dev/null"})
    backend = harness.HTTPBackend()
    p = harness.Portier(tmp_path, [("tls", [("cert", pem), ("key", key)]),
                                   listener("evil", backend.port, protocol="imap")])
    try:
        cp = harness.run([harness.PORTIER_BIN, "probe", "127.0.0.1:%d" % p.port("evil"),
                          "--as-port", "993"])
        js = harness.run([harness.PORTIER_BIN, "probe", "127.0.0.1:%d" % p.port("evil"),
                          "--as-port", "993", "--json"])
    finally:
        p.stop()
        backend.stop()
    raw = cp.stdout
    assert b"  certificate  evil\\xc2\\x9b31m\n" in raw, raw
    assert b"certificate for evil\\xc2\\x9b31m expires in 5 days" in raw, raw
    assert b"certificate for evil\\xc2\\x9b31m does not name 127.0.0.1" in raw, raw
    assert all(b < 0x7f for b in raw), raw
    cert = json.loads(js.stdout)["certificate"]
    assert cert["subject_cn"] == "evil\\xc2\\x9b31m", cert
    # The issuer as the library writes it (RFC 2253 escapes), then as the
    # human output shows it.
    assert ("    issuer     %s\n" % cert["issuer"]).encode() in raw, (cert, raw)


# --------------------------------------------------------------------------
# Certificates: one expiring in 5 days, one for another name.

@pytest.fixture(scope="module")
def cert_portier(tmp_path_factory, certs):
    five = certs._leaf("five", "ec", ["localhost"], dates=["-days", "5"])
    backend = harness.HTTPBackend()
    p = harness.Portier(tmp_path_factory.mktemp("probe-certs"), [
        ("tls", tls_items(five)),
        listener("five", backend.port, protocol="imap"),
    ])
    q = harness.Portier(tmp_path_factory.mktemp("probe-certs2"), [
        ("tls", tls_items(certs.other)),
        listener("other", backend.port, protocol="imap"),
    ])
    yield p, q
    p.stop()
    q.stop()
    backend.stop()


def test_certificate_expires_soon(cert_portier, ca):
    p, _ = cert_portier
    rc, text, obj = both(p.port("five"), "--as-port", "993", *ca)
    assert rc == 1, text
    assert ids(obj) == ["cert-expiring"]
    assert obj["certificate"]["days_left"] == 5
    # Named in its subjectAltName: a match, not one by the CN alone.
    assert obj["certificate"]["name_matches"] is True, obj
    assert obj["certificate"]["name_by_cn"] is False, obj
    assert "certificate for localhost expires in 5 days: renew it" in text


def test_certificate_wrong_name(cert_portier, ca):
    _, q = cert_portier
    rc, text, obj = both(q.port("other"), "--as-port", "993", *ca)
    assert rc == 1, text
    assert ids(obj) == ["cert-name-mismatch"]
    assert obj["certificate"]["name_matches"] is False
    # The chain is judged apart from the name: it verifies.
    assert obj["certificate"]["verified"] is True
    assert "certificate for other.example.org does not name localhost" in text


class CertServer(LoopbackServer):
    """A TLS server (Python's ssl) with the certificate file cert and its
    key: for certificates portier itself would not serve."""
    def __init__(self, cert, key):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        super().__init__()

    def handle(self, c):
        c.settimeout(5 * harness.SLOW)
        try:
            with self.ctx.wrap_socket(c, server_side=True) as t:
                t.recv(1)
        except OSError:
            pass
        finally:
            c.close()


def probe_cn_cert(tmp_path, certs, ext=None):
    """Probe, for cn.example.org, a server whose certificate (of the test
    CA) has that subject CN and the extension lines ext (None: none)."""
    from test_cert_checks import signed
    cert, key = signed(certs, tmp_path, "cn", "/CN=cn.example.org", ext)
    s = CertServer(cert, key)
    try:
        return both(s.port, "--protocol", "http", "--as-port", "443",
                    "--cafile", certs.ca, "--sni", "cn.example.org")
    finally:
        s.stop()


def test_certificate_named_by_its_cn_alone(tmp_path, certs):
    """A certificate with no subjectAltName whose subject CN is the name:
    OpenSSL's clients take it, browsers refuse it. The name matches, and
    the report says by what; a finding says who refuses it. (The same
    check passed it as a plain match before.)"""
    rc, text, obj = probe_cn_cert(tmp_path, certs)
    assert rc == 1, text
    assert ids(obj) == ["cert-name-cn-only"], obj
    assert obj["certificate"]["name_matches"] is True, obj
    assert obj["certificate"]["name_by_cn"] is True, obj
    assert obj["certificate"]["verified"] is True, obj
    assert "    name       cn.example.org matches, by the subject CN alone\n" in text, text
    assert ("certificate for cn.example.org names cn.example.org in its subject CN alone, "
            "without a subjectAltName: browsers and other clients that follow RFC 6125 "
            "refuse it; reissue it with cn.example.org as a DNS name") in text, text


def test_a_cn_beside_a_subjectaltname_of_addresses_is_no_name(tmp_path, certs):
    """With a subjectAltName, even one of addresses only, the CN is not
    read (BoringSSL, as browsers): the name does not match, and it is not
    called a match by the CN."""
    rc, text, obj = probe_cn_cert(tmp_path, certs, ["subjectAltName = IP:127.0.0.1"])
    assert rc == 1, text
    assert ids(obj) == ["cert-name-mismatch"], obj
    assert obj["certificate"]["name_matches"] is False, obj
    assert obj["certificate"]["name_by_cn"] is False, obj


# --------------------------------------------------------------------------
# dovecot: its own TLS off, optional (ssl = yes, plaintext login allowed) and
# required (ssl = required).

class SourceRelay(LoopbackServer):
    """Accepts on 127.0.0.1 and relays each connection to 127.0.0.1:target from
    the source address 127.0.0.2. dovecot counts a connection whose remote
    address equals its local one as secured and then allows plaintext login
    whatever ssl says; seen from another loopback address it judges as it
    would a remote client."""

    def __init__(self, target):
        self.target = target
        super().__init__()

    def handle(self, c):
        t = threading.Thread(target=self.pump, args=(c,), daemon=True)
        self.threads.append(t)
        t.start()

    def pump(self, c):
        import select
        import time
        up = socket.socket()
        try:
            up.bind(("127.0.0.2", 0))
            up.connect(("127.0.0.1", self.target))
            end = time.monotonic() + 30 * harness.SLOW
            while not self.done.is_set() and time.monotonic() < end:
                r, _, _ = select.select([c, up], [], [], 0.1)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (up if s is c else c).sendall(data)
        except OSError:
            return
        finally:
            up.close()
            c.close()


def dovecot_ports(ssl, certs):
    d = harness.Dovecot(ssl=ssl, leaf=certs.ec if ssl else None)
    relays = [SourceRelay(d.imap_port), SourceRelay(d.pop3_port)]
    return d, relays


@pytest.fixture(scope="module", params=[None, "yes", "required"], ids=["ssl-no", "ssl-yes",
                                                                      "ssl-required"])
def dovecot_tls(request, certs):
    d, relays = dovecot_ports(request.param, certs)
    yield request.param, relays[0].port, relays[1].port
    for r in relays:
        r.stop()
    d.stop()


@pytest.mark.parametrize("proto,as_port,implicit", [("imap", 143, 993), ("pop3", 110, 995)])
def test_dovecot(dovecot_tls, ca, proto, as_port, implicit):
    ssl, imap_port, pop3_port = dovecot_tls
    port = imap_port if proto == "imap" else pop3_port
    rc, text, obj = both(port, "--as-port", str(as_port), *ca)
    assert obj["protocol"] == proto and "Dovecot" in obj["greeting"]
    if ssl is None:
        assert rc == 1, text
        assert obj["model"] == "plain" and obj["starttls_offered"] is False
        assert ids(obj) == ["no-tls"]
        assert "%d offers no STARTTLS: passwords and messages cross the network in clear" \
            % as_port in text
        assert obj["tls"] is False and obj["certificate"] is None
        rc, text, obj = both(port, "--as-port", str(implicit))
        assert rc == 1 and ids(obj) == ["plaintext-on-implicit-port"]
        assert ("%d expects implicit TLS; this server answered a plaintext %s greeting: "
                "clients configured for SSL/TLS on %d will fail, and it offers no STARTTLS "
                "either" % (implicit, proto.upper(), implicit)) in text
        return
    assert obj["model"] == "starttls" and obj["starttls_offered"] is True
    assert obj["tls_versions"]["TLSv1.2"] is True and obj["certificate"]["verified"] is True
    if ssl == "yes":
        assert rc == 1, text
        assert obj["starttls_required"] is False
        assert ids(obj) == ["starttls-not-required"]
        assert "STARTTLS offered but not required: credentials can be sent in clear" in text
    else:
        assert rc == 0, text
        assert obj["starttls_required"] is True and obj["findings"] == []
        assert "model        starttls (required: no login before TLS)" in text
    # The same server judged as the implicit-TLS port.
    rc, text, obj = both(port, "--as-port", str(implicit), *ca)
    assert rc == 1
    assert "starttls-on-implicit-port" in ids(obj)


# --------------------------------------------------------------------------
# An old TLS server (Python's ssl, OpenSSL at security level 0) that still
# takes TLS 1.0 and 1.1, with an expired certificate.

class OldTLSServer(CertServer):
    def __init__(self, leaf):
        import ssl
        import warnings
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # the point of it
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.set_ciphers("ALL:@SECLEVEL=0")
        self.ctx.load_cert_chain(leaf.cert, leaf.key)
        LoopbackServer.__init__(self)     # CertServer's handle(), this context


def test_old_tls_versions_and_expired_certificate(certs, ca):
    s = OldTLSServer(certs.expired)
    try:
        rc, text, obj = both(s.port, "--protocol", "http", "--as-port", "443", *ca)
        # Without the CA the chain does not verify either.
        rc2, text2, obj2 = both(s.port, "--protocol", "http", "--sni", "localhost")
    finally:
        s.stop()
    assert rc == 1, text
    assert obj["model"] == "implicit-tls" and obj["tls_version"] == "TLSv1.2"
    assert obj["tls_versions"] == {"TLSv1.0": True, "TLSv1.1": True, "TLSv1.2": True,
                                   "TLSv1.3": False}
    # The chain is fine but for the leaf's dates: one finding, not two.
    assert ids(obj) == ["cert-expired", "tls10-accepted", "tls11-accepted"]
    assert "cert-untrusted" in ids(obj2) and "cert-expired" in ids(obj2)
    assert "TLS 1.0 accepted: disable it" in text and "TLS 1.1 accepted: disable it" in text
    assert "certificate for localhost expired " in text
    assert obj["certificate"]["days_left"] < -2000
    assert obj["connections"] == 3


class StrictSNIServer(CertServer):
    """A TLS server with a certificate for some names only, which ends a
    handshake for any other name, or for none, with a fatal
    unrecognized_name alert (as a server that serves many names may); a
    name of refused gets a handshake_failure alert instead."""

    def __init__(self, leaf, names, refused):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(leaf.cert, leaf.key)
        self.ctx.sni_callback = lambda _s, name, _c: (
            None if name in names else ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
            if name in refused else ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME)
        LoopbackServer.__init__(self)     # CertServer's handle(), this context


def test_a_name_the_server_has_no_certificate_for(certs):
    """A server that refuses the name sent with unrecognized_name: the
    tls-failed finding says so and points at --sni, in the text and in
    the JSON, for a wrong --sni and for an address (no SNI sent); with a
    name it serves the same server is fine, and another alert gets no
    such hint."""
    s = StrictSNIServer(certs.ec, {"localhost"}, {"refused.example.org"})
    try:
        wrong = both(s.port, "--protocol", "http", "--cafile", certs.ca,
                     "--sni", "mail.example.net")
        none = both(s.port, "--protocol", "http", "--cafile", certs.ca)
        rc, obj = probe_json(s.port, "--protocol", "http", "--cafile", certs.ca,
                             "--sni", "localhost")
        rc2, obj2 = probe_json(s.port, "--protocol", "http", "--cafile", certs.ca,
                               "--sni", "refused.example.org")
    finally:
        s.stop()
    assert (rc, obj["tls"], obj["findings"]) == (0, True, []), obj
    assert (rc2, obj2["findings"]) == (1, [{"id": "tls-failed", "message": "TLS did not "
                                            "work: server sent alert: handshake failure"}]), obj2
    hint = {
        "wrong": "TLS did not work: server sent alert: unrecognized name: the server knows "
                 "no certificate for the name sent (SNI 'mail.example.net'); try --sni "
                 "with a name it serves",
        "none": "TLS did not work: server sent alert: unrecognized name: the server knows "
                "no certificate for a ClientHello without a name (no SNI is sent for the "
                "address 127.0.0.1); try --sni with a name it serves",
    }
    for key, (rc, text, obj) in (("wrong", wrong), ("none", none)):
        assert rc == 1, text
        assert obj["model"] == "implicit-tls" and obj["tls"] is False, obj
        assert obj["tls_error"] == "server sent alert: unrecognized name", obj
        assert obj["findings"] == [{"id": "tls-failed", "message": hint[key]}], obj
        assert "  - %s [tls-failed]\n" % hint[key] in text, text


class StallingTLSServer(CertServer):
    """A TLS server (TLS 1.2 and 1.3) that serves its first connection
    and leaves every later one without an answer until stopped."""

    def __init__(self, leaf):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(leaf.cert, leaf.key)
        self.served = 0
        LoopbackServer.__init__(self)

    def handle(self, c):
        self.served += 1
        if self.served == 1:
            CertServer.handle(self, c)
            return
        with c:
            self.done.wait(30 * harness.SLOW)


def test_a_version_handshake_out_of_time_is_untried(certs, ca):
    """The TLS 1.2 handshake of the version sweep gets no answer before
    the deadline: TLS 1.2 is untried (null), not refused; it was "TLSv1.2
    no" for a server that takes 1.2 but answered late."""
    s = StallingTLSServer(certs.ec)
    try:
        rc, obj = probe_json(s.port, "--protocol", "http", "--as-port", "443",
                             "--timeout", "2s", *ca)
    finally:
        s.stop()
    assert (rc, obj["model"], obj["tls_version"]) == (0, "implicit-tls", "TLSv1.3"), obj
    assert obj["tls_versions"] == {"TLSv1.0": None, "TLSv1.1": None, "TLSv1.2": None,
                                   "TLSv1.3": True}, obj


def test_a_certificate_expired_hours_ago(certs, ca):
    """A certificate past its end by two hours: the finding and the
    expires line say hours (they said "0 days ago")."""
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = lambda t: t.strftime("%Y%m%d%H%M%SZ")   # noqa: E731
    leaf = certs._leaf("expired2h", "ec", ["localhost"],
                       dates=["-startdate", stamp(now - datetime.timedelta(days=10)),
                              "-enddate", stamp(now - datetime.timedelta(hours=2))])
    s = OldTLSServer(leaf)
    try:
        rc, text = probe(s.port, "--protocol", "http", "--as-port", "443", *ca)
    finally:
        s.stop()
    assert rc == 1, text
    assert "certificate for localhost expired 2 hours ago: renew it [cert-expired]" in text, text
    assert " UTC (2 hours ago)\n" in text, text


# --------------------------------------------------------------------------
# Filtered: a listener whose accept queue is full drops new SYNs, as a
# firewall's DROP would; the connect times out.

def test_filtered_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    try:
        # Fill the accept queue (backlog 0 still takes one, sometimes two).
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        rc, text = probe(port, "--timeout", "1s")
        if "model        filtered (timeout)" not in text:
            pytest.skip("this kernel still accepted on a full queue: %s" % text)
        assert rc == 2
        assert "no answer to the connection within 1000 ms: a firewall drops it" in text
        assert "`portier firewall -c /etc/portier/portier.ini` prints the commands" in text
    finally:
        for f in fillers:
            f.close()
        s.close()


# --------------------------------------------------------------------------
# Plaintext-only servers of their own: slapd without TLS, opensmtpd without
# TLS.

def test_slapd_without_tls(slapd):
    rc, text, obj = both(slapd.port, "--as-port", "389")
    assert rc == 1, text
    assert obj["model"] == "plain" and obj["protocol"] == "ldap"
    assert obj["starttls_offered"] is False
    assert ids(obj) == ["no-tls"]
    assert "389 offers no StartTLS: passwords and entries cross the network in clear" in text
    rc, text, obj = both(slapd.port, "--as-port", "636")
    assert rc == 1, text
    assert obj["model"] == "plain" and obj["connections"] == 2
    assert ids(obj) == ["plaintext-on-implicit-port"]
    assert "636 expects implicit TLS; this server answered a plaintext LDAP response" in text


def test_opensmtpd_without_tls(smtpd):
    rc, text, obj = both(smtpd.port, "--as-port", "25")
    assert rc == 1, text
    assert obj["model"] == "plain" and obj["greeting"].startswith("220 ")
    assert ids(obj) == ["no-tls"]
    assert "25 offers no STARTTLS: mail from other servers arrives in clear" in text
    rc, text, obj = both(smtpd.port, "--as-port", "465")
    assert rc == 1, text
    assert ("465 expects implicit TLS; this server answered a plaintext SMTP greeting: "
            "clients configured for SSL/TLS on 465 will fail, and it offers no STARTTLS "
            "either") in text
    # Unknown port: the banner names the protocol, and the dialogue follows.
    rc, text, obj = both(smtpd.port)
    assert obj["protocol"] == "smtp" and obj["protocol_from"] == "banner"
    assert obj["model"] == "plain" and obj["starttls_offered"] is False


def test_smtp_refusal_on_465():
    s = BannerServer(b"554 5.3.2 mx.example.org no service for you\r\n")
    try:
        rc, text, obj = both(s.port, "--as-port", "465")
    finally:
        s.stop()
    assert rc == 1, text
    assert obj["model"] == "plain" and obj["protocol"] == "smtp"
    assert obj["error"] == "the server refused with 554"
    assert ids(obj) == ["plaintext-on-implicit-port"]
    # Whether it offers STARTTLS is not known: not claimed either way.
    assert "offers no STARTTLS" not in text and obj["starttls_offered"] is None


def test_ipv6_target_closed():
    s = socket.socket(socket.AF_INET6)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    s.close()
    cp = harness.run([harness.PORTIER_BIN, "probe", "--json", "[::1]:%d" % port])
    assert cp.returncode == 2, cp.out + cp.err
    obj = json.loads(cp.out)
    assert obj["host"] == "::1" and obj["model"] == "closed"


@pytest.mark.parametrize("banner, as_port, service, named", [
    (b"220 mx.example.org ESMTP Postfix\r\n", "21", "FTP (AUTH TLS)", "smtp"),
    (b"220 ProFTPD Server ready\r\n", "587", "submission (STARTTLS)", "ftp"),
])
def test_a_220_banner_that_names_the_other_protocol(banner, as_port, service, named):
    """SMTP on the FTP port, FTP on an SMTP port: the 220 names the other,
    and that is another service."""
    s = BannerServer(banner)
    try:
        rc, text, obj = both(s.port, "--as-port", as_port, "--timeout", "1s")
    finally:
        s.stop()
    assert (rc, obj["model"], obj["protocol"], ids(obj)) == \
        (1, "other", named, ["unexpected-service"]), text
    assert "%s is %s, but %s answered [" % (as_port, service, named) in text, text


class ScriptedServer(LoopbackServer):
    """Greets with banner, then answers each line by its verb from replies
    (the rest: default), until QUIT or 8 lines."""

    def __init__(self, banner, replies, default=b"500 unknown\r\n"):
        self.banner, self.replies, self.default = banner, replies, default
        self.verbs = []
        super().__init__()

    def handle(self, c):
        with c:
            c.settimeout(5)
            f = c.makefile("rb")
            c.sendall(self.banner)
            for _ in range(8):
                try:
                    line = f.readline(512)
                except OSError:
                    return
                if not line:
                    return
                verb = line.split()[0].upper() if line.split() else b""
                self.verbs.append(verb.decode("ascii", "replace"))
                c.sendall(self.replies.get(verb, self.default))
                if verb == b"QUIT":
                    return


def test_a_220_naming_neither_is_ftp_when_feat_lists_features(workdir, certs):
    """On a port that says neither, a 220 that names neither SMTP nor FTP
    is tried as SMTP first; vsftpd (its banner "Service ready") refuses the
    EHLO with 530, and a second connection asks FEAT: 211, so FTP, judged
    as FTP is."""
    proc, port = vsftpd(workdir, certs, "anon-banner", None, banner="Service ready")
    try:
        rc, text, obj = both(port, "--timeout", "3s")
    finally:
        proc.stop()
    assert (rc, obj["protocol"], obj["model"], obj["connections"], ids(obj)) == \
        (1, "ftp", "plain", 2, ["no-tls"]), text
    assert obj["greeting"] == "220 Service ready" and obj["error"] is None, obj


def test_a_220_naming_neither_stays_smtp_when_feat_lists_nothing():
    """The same banner from an SMTP server that refuses our EHLO: FEAT gets
    no 211 on the second connection, so the SMTP result stands."""
    s = ScriptedServer(b"220 Service ready\r\n",
                       {b"EHLO": b"550 5.7.1 not from you\r\n", b"QUIT": b"221 bye\r\n"},
                       b"500 5.5.2 unknown command\r\n")
    try:
        rc, text, obj = both(s.port, "--timeout", "3s")
    finally:
        s.stop()
    assert (rc, obj["protocol"], obj["model"], obj["error"], obj["connections"]) == \
        (2, "smtp", "error", "EHLO answered 550", 2), text
    assert "FEAT" in s.verbs and "EHLO" in s.verbs, s.verbs


class HostCheckingHTTP(LoopbackServer):
    """An HTTP server on ::1 that, as nginx does, answers 400 to a request
    whose Host is not a valid host (a bare IPv6 address), else redirects
    to https://."""

    host = "::1"

    def handle(self, c):
        with c:
            c.settimeout(5)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 8192:
                    b = c.recv(4096)
                    if not b:
                        return
                    head += b
                hosts = [l[5:].strip() for l in head.split(b"\r\n")
                         if l.lower().startswith(b"host:")]
                if hosts == [b"[::1]"]:
                    c.sendall(b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://[::1]/\r\n"
                              b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                else:
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
            except OSError:
                pass


def test_ipv6_target_http_host_and_header():
    """An IPv6 target: the HEAD request's Host is "[::1]" (it was "::1",
    which nginx answers with 400, a false http-no-redirect), and the report
    writes the target as "[::1]:PORT" (it wrote "::1:PORT")."""
    s = HostCheckingHTTP()
    try:
        cp = harness.run([harness.PORTIER_BIN, "probe", "[::1]:%d" % s.port, "--as-port", "80"])
        js = harness.run([harness.PORTIER_BIN, "probe", "--json", "[::1]:%d" % s.port,
                          "--as-port", "80"])
    finally:
        s.stop()
    obj = json.loads(js.out)
    assert (js.returncode, obj["model"], obj["http_status"], obj["findings"]) == \
        (0, "plain", "HTTP/1.1 301 Moved Permanently", []), obj
    assert obj["host"] == "::1" and obj["http_location"] == "https://[::1]/", obj
    assert cp.returncode == 0, cp.out
    assert cp.out.startswith("[::1]:%d  http (guessed from port 80)\n" % s.port), cp.out


def test_a_target_not_read_is_named_as_given():
    """A target that is no HOST:PORT (a bare IPv6 address with a port)
    heads the report as given; it was ":0  (protocol unknown)"."""
    cp = harness.run([harness.PORTIER_BIN, "probe", "::1:17030"])
    assert cp.returncode == 2, cp.out + cp.err
    assert cp.out.splitlines()[:3] == [
        "::1:17030", "  model        error",
        "  error        '::1:17030': expected HOST:PORT or [ADDRESS]:PORT"], cp.out


def test_unknown_banner_on_imaps():
    s = BannerServer(b"hello there\r\n")
    try:
        rc, text, obj = both(s.port, "--as-port", "993")
    finally:
        s.stop()
    assert rc == 1, text
    assert obj["model"] == "other" and obj["protocol"] is None
    assert obj["greeting"] == "hello there"
    assert ids(obj) == ["unexpected-service"]
    assert "993 is IMAPS, but something else answered" in text


@pytest.mark.parametrize("as_port", ["143", "993", "443", "389", None])
def test_silent_server_is_bounded_by_timeout(as_port):
    import time
    s = BannerServer(b"")   # accepts, says nothing, waits for the client
    args = ["--timeout", "2s"] + (["--as-port", as_port] if as_port else [])
    try:
        t0 = time.monotonic()
        rc, obj = probe_json(s.port, *args)
        took = time.monotonic() - t0
    finally:
        s.stop()
    assert rc == 2, obj
    assert obj["model"] == "error"
    assert "then said nothing" in obj["error"] and "within 2000 ms" in obj["error"]
    assert obj["elapsed_ms"] <= 2000 + 300 * harness.SLOW
    assert took < 2 + 3 * harness.SLOW


def test_host_name(ssh_banner):
    cp = harness.run([harness.PORTIER_BIN, "probe", "--json", "localhost:%d" % ssh_banner.port])
    obj = json.loads(cp.out)
    assert obj["host"] == "localhost" and obj["address"] == "127.0.0.1", obj
    assert obj["model"] == "other" and obj["protocol"] == "ssh"
    cp = harness.run([harness.PORTIER_BIN, "probe", "localhost:%d" % ssh_banner.port])
    assert cp.out.startswith("localhost:%d (127.0.0.1)" % ssh_banner.port), cp.out


# --------------------------------------------------------------------------
# stunnel, a second implementation: implicit TLS in front of the HTTP
# backend, and its server-side SMTP STARTTLS in front of opensmtpd.

def stunnel(workdir, certs, name, backend_port, protocol=None):
    def cmd(port):
        conf = os.path.join(str(workdir), name + ".conf")
        with open(conf, "w") as f:
            f.write("foreground = yes\npid =\n[%s]\naccept = 127.0.0.1:%d\n"
                    "connect = 127.0.0.1:%d\ncert = %s\nkey = %s\n%s"
                    % (name, port, backend_port, certs.ec.cert, certs.ec.key,
                       "protocol = %s\n" % protocol if protocol else ""))
        return ["stunnel4", conf]
    return harness.start_listening(cmd, "stunnel-" + name, str(workdir))


def test_stunnel_implicit(workdir, certs, ca, http_backend):
    proc, port = stunnel(workdir, certs, "https", http_backend.port)
    try:
        rc, text, obj = both(port, "--as-port", "443", *ca)
        rc2, text2, obj2 = both(port, "--as-port", "80", *ca)
    finally:
        proc.stop()
    assert rc == 0, text
    assert obj["model"] == "implicit-tls" and obj["tls_versions"]["TLSv1.3"] is True
    assert obj["certificate"]["verified"] is True and obj["findings"] == []
    assert rc2 == 1 and ids(obj2) == ["implicit-tls-on-plain-port"]


def test_stunnel_smtp_starttls(workdir, certs, ca, smtpd):
    proc, port = stunnel(workdir, certs, "smtp", smtpd.port, protocol="smtp")
    try:
        rc, text, obj = both(port, "--as-port", "587", *ca)
        rc2, text2, obj2 = both(port, "--as-port", "465", *ca)
    finally:
        proc.stop()
    assert rc == 0, text
    assert obj["model"] == "starttls" and obj["starttls_offered"] is True
    assert "OpenSMTPD" in obj["greeting"] and obj["tls"] is True
    assert rc2 == 1 and ids(obj2) == ["starttls-on-implicit-port"]
    assert "465 speaks plaintext SMTP with STARTTLS" in text2


def test_tls13_only_server(portier, certs, ca, http_backend):
    p = portier([("tls", tls_items(certs.ec) + [("policy", "modern")]),
                 listener("imaps", http_backend.port, protocol="imap")])
    rc, text, obj = both(p.port("imaps"), "--as-port", "993", *ca)
    assert rc == 0, text
    assert obj["tls_versions"] == {"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": False,
                                   "TLSv1.3": True}
    assert "versions     TLSv1.0 no TLSv1.1 no TLSv1.2 no TLSv1.3 yes" in text


# --------------------------------------------------------------------------
# FTP: vsftpd in plaintext, with AUTH TLS (explicit) and with implicit TLS.
# The probe never logs in: FEAT and AUTH TLS only.

def vsftpd(workdir, certs, name, tls, banner=None):
    empty = os.path.join(str(workdir), "empty")
    os.makedirs(empty, exist_ok=True)
    extra = "ssl_enable=NO\n"
    if tls:
        extra = ("ssl_enable=YES\nrsa_cert_file=%s\nrsa_private_key_file=%s\n%s"
                 % (certs.ec.cert, certs.ec.key, "implicit_ssl=YES\n" if tls == "implicit"
                    else ""))
    if banner is not None:
        extra += "ftpd_banner=%s\n" % banner

    def cmd(port):
        conf = os.path.join(str(workdir), name + ".conf")
        with open(conf, "w") as f:
            f.write("background=NO\nlisten=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\n"
                    "listen_port=%d\nsecure_chroot_dir=%s\nseccomp_sandbox=NO\n"
                    "anonymous_enable=NO\nlocal_enable=YES\npam_service_name=vsftpd\n%s"
                    % (port, empty, extra))
        return ["vsftpd", conf]
    return harness.start_listening(cmd, "vsftpd-" + name, str(workdir))


@pytest.mark.parametrize("tls", [None, "explicit", "implicit"])
def test_vsftpd(workdir, certs, ca, tls):
    proc, port = vsftpd(workdir, certs, tls or "plain", tls)
    try:
        rc21, text21, obj21 = both(port, "--as-port", "21", *ca)
        rc990, text990, obj990 = both(port, "--as-port", "990", *ca)
    finally:
        proc.stop()
    assert obj21["protocol"] == "ftp" and obj990["protocol"] == "ftp"
    if tls is None:
        assert obj21["model"] == "plain" and obj21["greeting"].startswith("220 ")
        assert ids(obj21) == ["no-tls"]
        assert "21 offers no AUTH TLS: passwords and files cross the network in clear" in text21
        assert ids(obj990) == ["plaintext-on-implicit-port"]
        assert ("990 expects implicit TLS; this server answered a plaintext FTP greeting: "
                "clients configured for SSL/TLS on 990 will fail, and it offers no AUTH TLS "
                "either") in text990
    elif tls == "explicit":
        assert obj21["model"] == "starttls" and obj21["starttls_offered"] is True
        assert obj21["tls"] is True and obj21["certificate"]["verified"] is True
        # FEAT does not say whether a login needs TLS first: not claimed.
        assert obj21["starttls_required"] is None
        assert "starttls-not-required" not in ids(obj21)
        assert "starttls-on-implicit-port" in ids(obj990)
        assert ("990 speaks plaintext FTP with AUTH TLS: clients configured for SSL/TLS on "
                "990 will fail; either enable implicit TLS on 990 or set clients to AUTH TLS "
                "on 21") in text990
    else:
        assert obj990["model"] == "implicit-tls" and obj990["tls"] is True
        assert "implicit-tls-on-starttls-port" in ids(obj21)
        assert "set clients to SSL/TLS on 990" in text21


# --------------------------------------------------------------------------
# --config: every listener of a running portier's config, at the ports its
# ports_file says, judged against its mode as well.

def test_config(workdir, certs, http_backend):
    from harness import Portier, ini_text
    sections = [("tls", tls_items(certs.ec)),
                listener("imaps", http_backend.port, protocol="imap"),
                starttls_listener("pop3", "pop3", http_backend.port),
                listener("redirect", mode="redirect", protocol="http")]
    p = Portier(workdir, sections)
    try:
        cp = harness.run([harness.PORTIER_BIN, "probe", "--config", p.ini, "--json",
                          "--cafile", certs.ca, "--sni", "localhost"])
        assert cp.returncode == 0, cp.out + cp.err
        obj = json.loads(cp.out)
        assert obj["config"] == p.ini
        got = {(l["listener"], l["config_mode"], l["model"], l["protocol"], l["port"])
               for l in obj["listeners"]}
        assert got == {("imaps", "tls", "implicit-tls", "imap", p.port("imaps")),
                       ("pop3", "starttls", "starttls", "pop3", p.port("pop3")),
                       ("redirect", "redirect", "plain", "http", p.port("redirect"))}
        assert all(l["findings"] == [] for l in obj["listeners"])
        # The certificate served is the config's (redirect serves none).
        assert {l["listener"]: l["cert_config"] for l in obj["listeners"]} == \
            {"imaps": True, "pop3": True, "redirect": None}
        cp = harness.run([harness.PORTIER_BIN, "probe", "--config", p.ini,
                          "--cafile", certs.ca, "--sni", "localhost"])
        assert "    config     the one in %s\n" % certs.ec.cert in cp.out, cp.out

        # A config naming other files than portier serves: another
        # certificate for the same names (a renewal not loaded yet), or
        # one for other names (another server, another config).
        for leaf, msg in ((certs.rsa, "serves a certificate for the same names (localhost, "
                           "mail.example.org, 127.0.0.1, ::1) as %s, but not that file's "
                           "(serial " % certs.rsa.cert),
                          (certs.other, "serves a certificate for localhost, mail.example.org,"
                           " 127.0.0.1, ::1, but the config's %s is for other.example.org: "
                           "another server holds the port" % certs.other.cert)):
            renamed = os.path.join(str(workdir), "renamed.ini")
            with open(renamed, "w") as f:
                f.write(ini_text([p.sections[0], ("tls", tls_items(leaf))] +
                                 list(p.sections[2:])))
            cp = harness.run([harness.PORTIER_BIN, "probe", "--config", renamed,
                              "--cafile", certs.ca, "--sni", "localhost"])
            assert cp.returncode == 1, cp.out + cp.err
            assert ("port %d %s" % (p.port("imaps"), msg)) in cp.out, cp.out
            assert ("port %d %s" % (p.port("pop3"), msg)) in cp.out, cp.out
            assert "    config     NOT the one in %s\n" % leaf.cert in cp.out, cp.out
            assert cp.out.count("[cert-not-config]") == 2, cp.out

        # A config that says otherwise than what answers (another
        # server on the port, or the wrong file): mode = starttls where
        # TLS answers at once.
        other = os.path.join(str(workdir), "other.ini")
        secs = list(p.sections)
        secs[2] = starttls_listener("imaps", "imap", http_backend.port)
        with open(other, "w") as f:
            f.write(ini_text(secs))
        cp = harness.run([harness.PORTIER_BIN, "probe", "--config", other,
                          "--cafile", certs.ca, "--sni", "localhost"])
        assert cp.returncode == 1, cp.out + cp.err
        assert ("[imaps] mode = starttls: 127.0.0.1:%d" % p.port("imaps")) in cp.out
        assert ("listener [imaps] has mode = starttls, but port %d answers as implicit-tls: "
                "clients set up for the config will fail [config-mismatch]"
                % p.port("imaps")) in cp.out
        # Usage: --config takes no target.
        cp = harness.run([harness.PORTIER_BIN, "probe", "--config", other, "127.0.0.1:1"])
        assert cp.returncode == 2
    finally:
        p.stop()


def test_config_probes_a_wildcard_address_on_loopback(workdir, certs, http_backend):
    """A listener on every address (a bare port, whose ports_file line is
    [::]:PORT, or 0.0.0.0) is probed on the loopback address of its family,
    as the doc says: the probe went to "::" and judged the certificate
    against that name ("name :: does NOT match")."""
    from harness import Portier
    sections = [("tls", tls_items(certs.ec)),
                listener("any", http_backend.port, protocol="imap", listen="0"),
                listener("v4any", http_backend.port, protocol="imap", listen="0.0.0.0:0")]
    p = Portier(workdir, sections)
    try:
        cp = harness.run([harness.PORTIER_BIN, "probe", "--config", p.ini, "--json",
                          "--cafile", certs.ca])
        assert cp.returncode == 0, cp.out + cp.err
        got = {l["listener"]: (l["address"], l["model"], l["findings"])
               for l in json.loads(cp.out)["listeners"]}
        assert got == {"any": ("::1", "implicit-tls", []),
                       "v4any": ("127.0.0.1", "implicit-tls", [])}, got
    finally:
        p.stop()


def test_config_without_ports_file_probes_its_listen_addresses(workdir, certs, http_backend):
    """The config an admin probes has no ports_file (only tests and tooling
    set one): its listen lines are probed, a bare port on 127.0.0.1, a
    written address as written, and --host replaces the address of each.
    A ports_file the config names that does not exist (portier not
    running) is the same."""
    from harness import Portier, ini_text
    low = harness.free_port_range(2)
    ports = [low, low + 1]
    sections = [("tls", tls_items(certs.ec)),
                listener("v4", http_backend.port, protocol="imap",
                         listen="127.0.0.1:%d" % ports[0]),
                listener("any", http_backend.port, protocol="imap", listen=str(ports[1]))]
    p = Portier(workdir, sections)
    try:
        assert (p.port("v4"), p.port("any")) == tuple(ports)
        for i, glob in enumerate(([], [("ports_file", os.path.join(str(workdir), "none"))])):
            path = os.path.join(str(workdir), "admin%d.ini" % i)
            with open(path, "w") as f:
                f.write(ini_text([("portier", glob)] + sections))
            cp = harness.run([harness.PORTIER_BIN, "probe", "--config", path, "--json",
                              "--cafile", certs.ca, "--sni", "localhost"])
            assert cp.returncode == 0, cp.out + cp.err
            got = {l["listener"]: (l["address"], l["port"], l["model"], l["findings"])
                   for l in json.loads(cp.out)["listeners"]}
            assert got == {"v4": ("127.0.0.1", ports[0], "implicit-tls", []),
                           "any": ("127.0.0.1", ports[1], "implicit-tls", [])}, got
        cp = harness.run([harness.PORTIER_BIN, "probe", "--config", path, "--json",
                          "--host", "::1", "--cafile", certs.ca, "--sni", "localhost"])
        got = {l["listener"]: (l["host"], l["port"], l["model"], l["error"])
               for l in json.loads(cp.out)["listeners"]}
        # The bare port listens on ::1 too; the v4 one does not.
        assert got == {"any": ("::1", ports[1], "implicit-tls", None),
                       "v4": ("::1", ports[0], "closed",
                              "connection refused: nothing listens")}, got
        assert cp.returncode == 2, cp.out + cp.err
    finally:
        p.stop()


# --------------------------------------------------------------------------
# Servers that answer neither the protocol nor TLS, and probes cut short.

class ClosingServer(LoopbackServer):
    """Accepts and closes at once, without a word."""

    def handle(self, c):
        c.close()


class SwallowingServer(LoopbackServer):
    """Reads what the client sends first (a request, a ClientHello), then
    closes without a word. Read first, so that the close is a FIN: closing
    over unread bytes would be a reset, or not, as the bytes race it."""

    def handle(self, c):
        with c:
            c.settimeout(5)
            try:
                c.recv(4096)
            except OSError:
                pass


class WhatServer(LoopbackServer):
    """Says nothing first; answers whatever comes (a command, a
    ClientHello) with a line that is no protocol's, then closes."""

    def handle(self, c):
        with c:
            c.settimeout(5)
            try:
                if c.recv(4096):
                    c.sendall(b"what?\r\n")
            except OSError:
                pass


NOT_TLS = "the server did not answer with TLS (a plaintext service, or one that wants " \
          "STARTTLS first?)"


@pytest.mark.parametrize("server, as_port, rc, error, findings", [
    (ClosingServer, "25", 1, "the server closed the connection without a word",
     ["unexpected-service"]),
    (WhatServer, "25", 1, "no greeting, and no TLS: " + NOT_TLS, ["unexpected-service"]),
    (SwallowingServer, "389", 1, "neither plaintext ldap nor TLS (the server closed the "
     "connection during the handshake)", ["unexpected-service"]),
    (SwallowingServer, "25", 1, "no greeting, and no TLS: the server closed the "
     "connection during the handshake", ["unexpected-service"]),
    (WhatServer, "389", 1, "neither plaintext ldap nor TLS (%s)" % NOT_TLS,
     ["unexpected-service"]),
    (WhatServer, "80", 1, "neither plaintext http nor TLS (%s)" % NOT_TLS,
     ["unexpected-service"]),
    # TLS first, then a moment for a banner (none), then plaintext
    (WhatServer, "443", 1, "neither TLS (%s) nor plaintext http" % NOT_TLS,
     ["unexpected-service"]),
    # No port to judge by: nothing is found, and the probe did not finish.
    (ClosingServer, None, 2, "the server closed the connection without a word", []),
    (WhatServer, None, 2, "no banner, and no TLS: " + NOT_TLS, []),
])
def test_neither_the_protocol_nor_tls(server, as_port, rc, error, findings):
    """Each way of trying the port's models in turn ends with what every
    model got; the port's service stays named, as no banner named another."""
    s = server()
    try:
        got, text, obj = both(s.port, "--timeout", "2s",
                              *(["--as-port", as_port] if as_port else []))
    finally:
        s.stop()
    assert (got, obj["model"], obj["error"], ids(obj)) == (rc, "other", error, findings), text
    assert obj["protocol"] == {"25": "smtp", "389": "ldap", "80": "http", "443": "http",
                               None: None}[as_port]
    assert ("no problems found" in text) == (rc == 2), text


@pytest.mark.parametrize("as_port, service", [("993", "IMAPS"),
                                               ("587", "submission (STARTTLS)")])
def test_a_server_that_closes_at_once(as_port, service):
    """A server that closes before a word on a server-first port was
    sent no ClientHello: the finding says it closed at once (a connection
    limit, TCP wrappers), not that it "answered neither in TLS nor in
    plaintext". Exit 1, as for any unexpected service."""
    s = ClosingServer()
    try:
        rc, text, obj = both(s.port, "--as-port", as_port, "--timeout", "2s")
    finally:
        s.stop()
    assert (rc, obj["model"], ids(obj), obj["tls_error"]) == \
        (1, "other", ["unexpected-service"], None), text
    assert ("%s is %s, but the server closed the connection at once, without a word: a "
            "limit on connections (per client or in all), TCP wrappers (hosts.deny), or "
            "another service that waits for no one [" % (as_port, service)) in text, text


@pytest.mark.parametrize("banner, as_port, error", [
    (b"220 mx.example.org ESMTP\r\n", "25", "no answer in time to the capability request"),
    (b"220 mx.example.org ESMTP\r\n", "587", "no answer in time to the capability request"),
    (b"554 5.3.2 mx.example.org no service for you\r\n", "587",
     "the server refused with 554"),
    (b"* OK IMAP4rev1 ready\r\n", "143", "no answer in time to the capability request"),
    # A greeting begun and not finished in time (Postfix's postscreen
    # pauses inside its "220-"; a server that drips): still the protocol
    # in plaintext. It was "other", the greeting "not understood".
    (b"220-mx.example.org ESMTP Postfix\r\n", "25", "greeting not complete in time"),
    (b"* OK IMAP4rev1 rea", "143", "greeting not complete in time"),
    (b"* O", "143", "greeting not complete in time"),
    # FTP greets with 220 as SMTP does: a banner that names neither is
    # the port's protocol (it was "21 is FTP (AUTH TLS), but smtp answered").
    (b"220-FileZilla Server 1.8.0\r\n220 Please visit https://filezilla-project.org/\r\n",
     "21", "no answer in time to the capability request"),
    (b"220 Service ready\r\n", "21", "no answer in time to the capability request"),
])
def test_a_probe_cut_short_is_not_nothing_found(banner, as_port, error):
    """A server that greets and then does not answer the capability
    request, or refuses service: the model is known (plaintext, as the
    port wants) but not whether STARTTLS is offered. Exit 2 and a report
    that says the rest is unknown; it was exit 0, "no problems found",
    which a monitoring check takes for a healthy port."""
    s = BannerServer(banner)
    try:
        rc, text, obj = both(s.port, "--as-port", as_port, "--timeout", "1s")
    finally:
        s.stop()
    assert (rc, obj["model"], obj["error"], obj["findings"]) == (2, "plain", error, []), text
    assert obj["starttls_offered"] is None, obj
    assert text.endswith("no problems found before the probe stopped (error above): the "
                         "rest is not known\n"), text


@pytest.mark.parametrize("banner, as_port, word", [
    (b"220-mx.example.org ESMTP Postfix\r\n", "465", "SMTP"),
    (b"* O", "993", "IMAP"),
])
def test_an_unfinished_greeting_on_an_implicit_port(banner, as_port, word):
    """A plaintext greeting begun on an implicit-TLS port is plaintext
    there, finished or not: the finding says so (it was "another service
    holds the port")."""
    s = BannerServer(banner)
    try:
        rc, text, obj = both(s.port, "--as-port", as_port, "--timeout", "1s")
    finally:
        s.stop()
    assert (rc, obj["model"], obj["error"], ids(obj)) == \
        (1, "plain", "greeting not complete in time", ["plaintext-on-implicit-port"]), text
    assert ("%s expects implicit TLS; this server answered a plaintext %s greeting: "
            "clients configured for SSL/TLS on %s will fail [" % (as_port, word, as_port)) in text


class LateSmtpServer(LoopbackServer):
    """An SMTP server without STARTTLS that greets only after delay
    seconds (slower than the probe's wait for a greeting on an implicit
    port), whatever the client sent meanwhile."""

    def __init__(self, delay):
        self.delay = delay
        super().__init__()

    def handle(self, c):
        with c:
            if self.done.wait(self.delay):
                return
            c.settimeout(5)
            f = c.makefile("rb")
            try:
                c.sendall(b"220 mx.example.org ESMTP\r\n")
                for _ in range(4):
                    line = f.readline(512)
                    if not line:
                        return
                    if line.upper().startswith(b"EHLO"):
                        c.sendall(b"250-mx.example.org\r\n250 8BITMIME\r\n")
                    elif line.upper().startswith(b"QUIT"):
                        c.sendall(b"221 bye\r\n")
                        return
                    else:
                        c.sendall(b"500 what?\r\n")
            except OSError:
                pass


def test_a_late_greeting_on_an_implicit_port():
    """An SMTP server that greets after a second on 465: the ClientHello,
    sent when no greeting came within the wait, gets its plaintext greeting
    back; a second connection waits for the greeting and judges by it (it
    was "answered neither in TLS nor in plaintext smtp", model other)."""
    s = LateSmtpServer(1.0)
    try:
        rc, text, obj = both(s.port, "--as-port", "465")
    finally:
        s.stop()
    assert (rc, obj["model"], obj["protocol"], ids(obj)) == \
        (1, "plain", "smtp", ["plaintext-on-implicit-port"]), text
    assert obj["greeting"] == "220 mx.example.org ESMTP" and obj["connections"] == 2, obj
    assert ("465 expects implicit TLS; this server answered a plaintext SMTP greeting: "
            "clients configured for SSL/TLS on 465 will fail, and it offers no STARTTLS "
            "either [plaintext-on-implicit-port]") in text


class RecordingLdapServer(LoopbackServer):
    """An LDAP server without StartTLS: it answers the root DSE search
    with success and no entry, refuses StartTLS (protocolError), then
    keeps every byte the client sends until it closes."""

    def __init__(self):
        self.rest = []
        super().__init__()

    @staticmethod
    def message(c):
        """One LDAP message of short-form length, or b"" at the end."""
        head = b""
        while len(head) < 2:
            b = c.recv(2 - len(head))
            if not b:
                return b""
            head += b
        body = b""
        while len(body) < head[1]:
            b = c.recv(head[1] - len(body))
            if not b:
                return b""
            body += b
        return head + body

    def handle(self, c):
        with c:
            c.settimeout(5)
            got = b""
            try:
                if self.message(c):
                    c.sendall(bytes.fromhex("300c02010165070a010004000400"))
                if self.message(c):
                    c.sendall(bytes.fromhex("300c02010278070a010204000400"))
                while True:
                    b = c.recv(4096)
                    if not b:
                        break
                    got += b
            except OSError:
                pass
            self.rest.append(got)


def test_ldap_unbind_is_whole():
    """After a refused StartTLS the probe says goodbye with a whole
    UnbindRequest, seven bytes: it sent six, without the final 0x00 (the
    empty content's length), which a directory reads as a cut message."""
    s = RecordingLdapServer()
    try:
        rc, obj = probe_json(s.port, "--as-port", "389", "--timeout", "2s")
    finally:
        s.stop()
    assert (rc, obj["model"], obj["protocol"], ids(obj)) == (1, "plain", "ldap", ["no-tls"]), obj
    assert s.rest == [bytes.fromhex("30050201034200")], s.rest
