"""send_proxy = v1 | v2: every backend connection opens with the header of
HAProxy's PROXY protocol (doc/proxy-protocol.txt), before any other byte.

The backends here read the header byte by byte as the specification lays it
out (v2: signature, version and command, family, length, addresses, each
TLV; v1: one line of at most 107 bytes) and then relay: what they report is
compared with what the client really has (its socket's address, the
listener's, the SNI, ALPN, version and cipher it negotiated). dovecot, a
real backend that parses the header, checks the same from its login log.
"""

import contextlib
import os
import re
import shutil
import socket
import ssl
import struct
import threading

import pytest

import harness
from harness import listener
from starttls_support import Client, starttls_listener

V2_SIG = b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_SSL = 0x01, 0x02, 0x20
PP2_SUBTYPE_SSL_VERSION, PP2_SUBTYPE_SSL_CIPHER = 0x21, 0x23
PP2_CLIENT_SSL = 0x01
ALPN = "x-portier-test"
SNI = "mail.example.org"


def recv_exact(c, n):
    out = b""
    while len(out) < n:
        d = c.recv(n - len(out))
        assert d, "EOF after %d of %d header bytes: %r" % (len(out), n, out)
        out += d
    return out


def parse_tlvs(data):
    """[(type, value)] of a TLV list that must fill data exactly."""
    out, i = [], 0
    while i < len(data):
        assert len(data) - i >= 3, "a TLV header cut off: %r" % data[i:]
        t, n = data[i], struct.unpack("!H", data[i + 1:i + 3])[0]
        assert i + 3 + n <= len(data), "TLV 0x%02x says %d bytes, %d left" % (
            t, n, len(data) - i - 3)
        out.append((t, data[i + 3:i + 3 + n]))
        i += 3 + n
    return out


def read_v2(c):
    """The v2 header from socket c: a dict of what it says."""
    head = recv_exact(c, 16)
    assert head[:12] == V2_SIG, "not the v2 signature: %r" % head
    assert head[12] == 0x21, "version/command 0x%02x, expected 0x21 (v2, PROXY)" % head[12]
    fam, length = head[13], struct.unpack("!H", head[14:16])[0]
    body = recv_exact(c, length)
    h = {"version": 2, "fam": fam}
    if fam == 0x11:            # TCP over IPv4
        assert length >= 12, length
        h["src"] = (socket.inet_ntop(socket.AF_INET, body[0:4]),
                    struct.unpack("!H", body[8:10])[0])
        h["dst"] = (socket.inet_ntop(socket.AF_INET, body[4:8]),
                    struct.unpack("!H", body[10:12])[0])
        rest = body[12:]
    elif fam == 0x21:          # TCP over IPv6
        assert length >= 36, length
        h["src"] = (socket.inet_ntop(socket.AF_INET6, body[0:16]),
                    struct.unpack("!H", body[32:34])[0])
        h["dst"] = (socket.inet_ntop(socket.AF_INET6, body[16:32]),
                    struct.unpack("!H", body[34:36])[0])
        rest = body[36:]
    else:
        raise AssertionError("family 0x%02x, expected TCP4 or TCP6" % fam)
    tlvs = parse_tlvs(rest)
    types = [t for t, _ in tlvs]
    assert len(types) == len(set(types)), "a TLV twice: %r" % tlvs
    h["tlvs"] = types
    for t, v in tlvs:
        if t == PP2_TYPE_ALPN:
            h["alpn"] = v.decode()
        elif t == PP2_TYPE_AUTHORITY:
            h["authority"] = v.decode()
        elif t == PP2_TYPE_SSL:
            assert len(v) >= 5, v
            h["ssl_client"], h["ssl_verify"] = v[0], struct.unpack("!I", v[1:5])[0]
            subs = parse_tlvs(v[5:])
            h["ssl_subs"] = [s for s, _ in subs]
            for s, sv in subs:
                if s == PP2_SUBTYPE_SSL_VERSION:
                    h["ssl_version"] = sv.decode()
                elif s == PP2_SUBTYPE_SSL_CIPHER:
                    h["ssl_cipher"] = sv.decode()
        else:
            raise AssertionError("unexpected TLV 0x%02x %r" % (t, v))
    return h


def read_v1(c):
    """The v1 line from socket c, read a byte at a time (nothing past it)."""
    line = b""
    while not line.endswith(b"\r\n"):
        assert len(line) < 107, "v1 line over 107 bytes: %r" % line
        line += recv_exact(c, 1)
    m = re.fullmatch(rb"PROXY (TCP4|TCP6) (\S+) (\S+) (\d+) (\d+)\r\n", line)
    assert m, "not a v1 PROXY line: %r" % line
    fam = socket.AF_INET if m.group(1) == b"TCP4" else socket.AF_INET6
    # The addresses must be what inet_pton reads, in canonical form.
    for a in (m.group(2), m.group(3)):
        assert socket.inet_ntop(fam, socket.inet_pton(fam, a.decode())) == a.decode(), line
    return {"version": 1, "line": line, "proto": m.group(1).decode(),
            "src": (m.group(2).decode(), int(m.group(4))),
            "dst": (m.group(3).decode(), int(m.group(5)))}


class _Prefixed:
    """Socket c with bytes already read put back in front."""

    def __init__(self, c, pending):
        self.c, self.pending = c, pending

    def recv(self, n):
        if self.pending:
            d, self.pending = self.pending[:n], self.pending[n:]
            return d
        return self.c.recv(n)


def read_header(c):
    """v1 or v2, told apart by the first byte as a receiver does."""
    first = recv_exact(c, 1)
    if first == V2_SIG[:1]:
        return read_v2(_Prefixed(c, first))
    assert first == b"P", "neither v1 nor v2 starts with %r" % first
    return read_v1(_Prefixed(c, first))


def echo_handler(c):
    """The header, then the client's bytes echoed back until its EOF."""
    h = read_header(c)
    got = harness.read_to_eof(c, limit=1 << 20)
    c.sendall(got)
    h["data"] = got
    return h


@contextlib.contextmanager
def unix_backend(path, handler):
    """A one-connection backend on a unix socket; yields a list that gets
    handler's result (or the exception's text)."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(15 * harness.SLOW)
    out = []

    def serve():
        try:
            c, _ = srv.accept()
        except OSError as e:
            out.append(repr(e))
            return
        with c:
            c.settimeout(15 * harness.SLOW)
            try:
                out.append(handler(c))
            except Exception as e:  # reported by the test
                out.append(repr(e))
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield out, t
    finally:
        srv.close()
        t.join(timeout=5)


def tls_ctx(certs, alpn=ALPN, maxv=None):
    ctx = certs.client_context()
    if alpn:
        ctx.set_alpn_protocols([alpn])
    if maxv:
        ctx.maximum_version = maxv
    return ctx


def tls_roundtrip(port, ctx, payload, host="127.0.0.1", sni=SNI):
    """A TLS client: sends payload, half-closes, reads to the end. Returns
    (its own socket address, version, cipher, ALPN, bytes read)."""
    t = harness.TLSClient(port, ctx, sni, host=host)
    try:
        me = t.sock.getsockname()[:2]
        info = (t.obj.version(), t.obj.cipher()[0], t.obj.selected_alpn_protocol())
        t.send(payload)
        t.close_notify()
        back = t.recv_all()
    finally:
        t.close()
    return (me,) + info + (back,)


def log_cipher(p, port):
    """tls= and cipher= of the close line of the client from port."""
    m = p.wait_log(r"close client=\S+:%d .*tls=(\S+) cipher=(\S+)" % port)
    return m.group(1), m.group(2)


def tls_listener(name, backend_port=None, version="v2", backend=None, listen="127.0.0.1:0"):
    return listener(name, backend_port, mode="tls", protocol="tcp", listen=listen,
                    backend=backend, extra=[("alpn", ALPN), ("send_proxy", version)])


def test_v2_on_a_tls_listener_carries_addresses_and_tls_facts(portier, certs, raw_backend):
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)), tls_listener("imps", b.port)])
    lhost, lport = p.ports["imps"][0]
    me, version, cipher, alpn, back = tls_roundtrip(lport, tls_ctx(certs), b"hello\n")
    h = b.wait_result()
    assert back == b"hello\n"
    # Exactly the client's bytes after the header: nothing before it,
    # nothing of it left over.
    assert h["data"] == b"hello\n", h
    assert h["fam"] == 0x11
    assert h["src"] == tuple(me), (h, me)
    assert h["dst"] == (lhost, lport), h
    assert h["tlvs"] == [PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_SSL], h
    assert alpn == ALPN and h["alpn"] == ALPN
    assert h["authority"] == SNI
    assert h["ssl_client"] == PP2_CLIENT_SSL and h["ssl_verify"] == 0, h
    assert h["ssl_subs"] == [PP2_SUBTYPE_SSL_VERSION, PP2_SUBTYPE_SSL_CIPHER], h
    assert h["ssl_version"] == version == "TLSv1.3", h
    # TLS 1.3 suites have one name in OpenSSL and the IETF registry alike.
    assert h["ssl_cipher"] == cipher, (h, cipher)


def test_v2_cipher_is_the_ietf_name_portier_logs(portier, certs, raw_backend):
    """TLS 1.2: the cipher TLV is the IETF name (as in portier's own log),
    not OpenSSL's; no SNI, no ALPN: only the SSL TLV."""
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)), tls_listener("imps", b.port)])
    ctx = tls_ctx(certs, alpn=None, maxv=ssl.TLSVersion.TLSv1_2)
    ctx.check_hostname = False
    me, version, cipher, alpn, back = tls_roundtrip(p.port("imps"), ctx, b"x", sni=None)
    h = b.wait_result()
    assert back == b"x" and h["src"] == tuple(me)
    assert h["tlvs"] == [PP2_TYPE_SSL], h
    assert "alpn" not in h and "authority" not in h
    assert version == "TLSv1.2" and h["ssl_version"] == "TLSv1.2"
    tls, logged = log_cipher(p, me[1])
    assert tls == "TLSv1.2" and h["ssl_cipher"] == logged, (h, logged)
    assert logged.startswith("TLS_ECDHE_ECDSA_WITH_"), logged
    assert cipher.startswith("ECDHE-ECDSA-"), cipher     # OpenSSL's, for contrast


def test_v1_on_a_tls_listener(portier, certs, raw_backend):
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)), tls_listener("imps", b.port, "v1")])
    lhost, lport = p.ports["imps"][0]
    me, _, _, _, back = tls_roundtrip(lport, tls_ctx(certs), b"one\r\ntwo\r\n")
    h = b.wait_result()
    assert back == b"one\r\ntwo\r\n" and h["data"] == back
    assert h["line"] == b"PROXY TCP4 %s %s %d %d\r\n" % (
        me[0].encode(), lhost.encode(), me[1], lport), h


def tcp_queues(local, remote):
    """(tx_queue, rx_queue) of the IPv4 TCP socket local -> remote, from
    /proc/net/tcp; None when there is none."""
    def hexaddr(a):
        return "%s:%04X" % (socket.inet_aton(a[0])[::-1].hex().upper(), a[1])
    want = (hexaddr(local), hexaddr(remote))
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) == want:
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def test_plain_listener_header_comes_before_buffered_client_bytes(portier):
    """mode = plain: no TLVs. The backend's accept queue is full, so
    portier's connect hangs (its SYN dropped, sent again a second later)
    while the client's bytes and EOF arrive and portier reads them: they
    wait in its buffer, and the header still goes first, whole."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler = None
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(0)
        bport = srv.getsockname()[1]
        filler = socket.create_connection(("127.0.0.1", bport), timeout=5)
        p = portier([listener("plain", bport, mode="plain", extra=[("send_proxy", "v2")])])
        lhost, lport = p.ports["plain"][0]
        payload = b"early bytes " * 1000
        with socket.create_connection((lhost, lport), timeout=10 * harness.SLOW) as s:
            me = s.getsockname()
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            # portier has read every byte (none in flight, none queued at
            # its socket) before its backend connection exists.
            harness.wait_for(lambda: tcp_queues(me, (lhost, lport)) == (0, 0) and
                             tcp_queues((lhost, lport), me) == (0, 0),
                             5, "portier to read the client's bytes")
            c, _ = srv.accept()       # the filler: the queue has room again
            c.close()
            srv.settimeout(10 * harness.SLOW)
            b, _ = srv.accept()       # portier, after its SYN is sent again
            with b:
                b.settimeout(10 * harness.SLOW)
                h = echo_handler(b)
            back = harness.read_to_eof(s)
    finally:
        if filler:
            filler.close()
        srv.close()
    assert back == payload and h["data"] == payload
    assert h["src"] == tuple(me) and h["dst"] == (lhost, lport), h
    assert h["tlvs"] == [], h


def acme_handler(c):
    """The header, then one request head, answered."""
    h = read_header(c)
    head = b""
    while b"\r\n\r\n" not in head:
        assert len(head) < 8192, head
        d = c.recv(4096)
        assert d, "EOF inside the request head: %r" % head
        head += d
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\ntoken")
    h["data"] = head
    return h


def test_redirect_listener_sends_the_header_before_the_acme_request(portier, raw_backend):
    b = raw_backend(acme_handler)
    p = portier([("http", [("listen", "127.0.0.1:0"), ("mode", "redirect"),
                           ("acme_backend", "127.0.0.1:%d" % b.port),
                           ("send_proxy", "v2")])])
    lhost, lport = p.ports["http"][0]
    req = (b"GET /.well-known/acme-challenge/Tok_1 HTTP/1.1\r\nHost: example.org\r\n"
           b"\r\n")
    with socket.create_connection((lhost, lport), timeout=10 * harness.SLOW) as s:
        me = s.getsockname()
        s.sendall(req)
        back = harness.read_to_eof(s)
    h = b.wait_result()
    assert back.endswith(b"\r\n\r\ntoken"), back
    assert h["data"] == req, h
    assert h["src"] == tuple(me) and h["dst"] == (lhost, lport), h
    assert h["tlvs"] == [], h     # no TLS on this hop: no TLVs


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_ipv6_client(portier, certs, raw_backend, version):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.skip("::1 is not available here: %s" % e)
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)),
                 tls_listener("v6", b.port, version, listen="[::1]:0")])
    lhost, lport = p.ports["v6"][0]
    assert lhost == "::1"
    me, _, _, _, back = tls_roundtrip(lport, tls_ctx(certs), b"six", host="::1")
    h = b.wait_result()
    assert back == b"six" and h["data"] == b"six"
    assert me[0] == "::1"
    assert h["src"] == tuple(me) and h["dst"] == ("::1", lport), h
    if version == "v1":
        assert h["proto"] == "TCP6" and h["line"] == b"PROXY TCP6 ::1 ::1 %d %d\r\n" % (
            me[1], lport)
    else:
        assert h["fam"] == 0x21 and h["authority"] == SNI and h["alpn"] == ALPN


def test_unix_backend_gets_the_clients_tcp_addresses(portier, certs):
    d = harness.world_dir("proxy-unix")
    path = os.path.join(d, "backend.sock")
    try:
        with unix_backend(path, echo_handler) as (out, t):
            p = portier([("tls", harness.tls_items(certs.ec)),
                         tls_listener("unix", backend="unix:" + path)])
            lhost, lport = p.ports["unix"][0]
            me, _, _, _, back = tls_roundtrip(lport, tls_ctx(certs), b"via unix")
            t.join(timeout=15 * harness.SLOW)
            assert out and isinstance(out[0], dict), out
            h = out[0]
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert back == b"via unix" and h["data"] == b"via unix"
    assert h["fam"] == 0x11 and h["src"] == tuple(me) and h["dst"] == (lhost, lport), h
    assert h["authority"] == SNI


def smtp_backend_wanting_proxy_first(c):
    """Like a backend with PROXY enabled: says nothing before the header.
    Returns the header and every command line it got."""
    c.settimeout(10 * harness.SLOW)
    h = read_header(c)
    c.sendall(b"220 backend ESMTP\r\n")
    f = c.makefile("rb")
    seen = []
    for _ in range(20):
        line = f.readline(1000)
        if not line:
            break
        seen.append(line)
        cmd = line.strip().upper()
        if cmd.startswith(b"EHLO"):
            c.sendall(b"250-backend\r\n250-XCLIENT NAME ADDR PORT PROTO HELO\r\n"
                      b"250 8BITMIME\r\n")
        elif cmd.startswith(b"QUIT"):
            c.sendall(b"221 bye\r\n")
            break
        else:
            c.sendall(b"250 ok\r\n")
    h["seen"] = seen
    return h


def test_starttls_smtp_header_before_the_greeting_replaces_xclient(portier, certs,
                                                                   raw_backend):
    b = raw_backend(smtp_backend_wanting_proxy_first)
    p = portier([("tls", harness.tls_items(certs.ec)),
                 starttls_listener("sub", "smtp", b.port,
                                   extra=[("xclient", "yes"), ("send_proxy", "v2")])])
    lhost, lport = p.ports["sub"][0]
    c = Client(lport)
    try:
        me = c.sock.getsockname()
        c.smtp_reply()
        c.send(b"EHLO client.example.net\r\n")
        c.smtp_reply()
        c.send(b"STARTTLS\r\n")
        assert c.smtp_reply().startswith(b"220 ")
        ctx = tls_ctx(certs, alpn="smtp")
        c.tls(certs, server_hostname=SNI, ctx=ctx)
        alpn, version, cipher = (c.sock.selected_alpn_protocol(), c.sock.version(),
                                 c.sock.cipher()[0])
        c.send(b"EHLO client.example.net\r\n")
        ehlo = c.smtp_reply()
        c.send(b"QUIT\r\n")
        assert c.smtp_reply().startswith(b"221")
    finally:
        c.close()
    assert ehlo.startswith(b"250"), ehlo
    h = b.wait_result()
    assert h["src"] == tuple(me) and h["dst"] == (lhost, lport), h
    assert alpn == "smtp" and h["alpn"] == "smtp"
    assert h["authority"] == SNI
    assert h["ssl_client"] == PP2_CLIENT_SSL
    assert h["ssl_version"] == version and h["ssl_cipher"] == cipher
    # portier's own EHLO, then the client's: no XCLIENT with PROXY.
    assert not any(l.upper().startswith(b"XCLIENT") for l in h["seen"]), h["seen"]
    assert h["seen"][0].startswith(b"EHLO "), h["seen"]
    assert h["seen"][-1].upper() == b"QUIT\r\n", h["seen"]


def test_starttls_optional_plaintext_client_gets_no_tls_tlvs(portier, certs, raw_backend):
    """SMTP, starttls = optional, a client that never upgrades: the header
    (no TLVs: there is no TLS) comes before the replayed EHLO."""
    b = raw_backend(smtp_backend_wanting_proxy_first)
    p = portier([("tls", harness.tls_items(certs.ec)),
                 starttls_listener("mx", "smtp", b.port,
                                   extra=[("starttls", "optional"), ("send_proxy", "v2")])])
    lhost, lport = p.ports["mx"][0]
    c = Client(lport)
    try:
        me = c.sock.getsockname()
        c.smtp_reply()
        c.send(b"EHLO client.example.net\r\n")
        c.smtp_reply()
        c.send(b"MAIL FROM:<a@example.net>\r\n")
        assert c.smtp_reply().startswith(b"250")
        c.send(b"QUIT\r\n")
        assert c.smtp_reply().startswith(b"221")
    finally:
        c.close()
    h = b.wait_result()
    assert h["src"] == tuple(me) and h["dst"] == (lhost, lport), h
    assert h["tlvs"] == [], h
    assert [l.upper() for l in h["seen"]] == [
        b"EHLO CLIENT.EXAMPLE.NET\r\n", b"MAIL FROM:<A@EXAMPLE.NET>\r\n", b"QUIT\r\n"], h["seen"]


def test_check_warns_that_proxy_replaces_xclient(workdir, certs):
    text = harness.ini_text([
        ("tls", harness.tls_items(certs.ec)),
        starttls_listener("sub", "smtp", 2525, extra=[("xclient", "yes"),
                                                      ("send_proxy", "v1")])])
    rc, out, path = harness.portier_check(workdir, text)
    assert rc == 0, out
    assert re.search(r"(?m)^warning: %s:\d+: \[sub\] xclient: send_proxy = v1 .*"
                     r"PROXY replaces XCLIENT" % re.escape(path), out), out


@pytest.mark.parametrize("items, where, what", [
    ([("send_proxy", "v3")], "send_proxy", "'v3' is not one of none, v1, v2"),
    ([("send_proxy", "yes")], "send_proxy", "'yes' is not one of none, v1, v2"),
])
def test_bad_send_proxy_is_refused(workdir, items, where, what):
    text = harness.ini_text([listener("l", 8080, mode="plain", extra=items)])
    rc, out, path = harness.portier_check(workdir, text)
    assert rc == 1, out
    assert "[l] %s: %s" % (where, what) in out, out


def test_send_proxy_on_redirect_needs_an_acme_backend(workdir):
    text = harness.ini_text([("web", [("listen", "127.0.0.1:0"), ("mode", "redirect"),
                                      ("send_proxy", "v1")])])
    rc, out, _ = harness.portier_check(workdir, text)
    assert rc == 1 and "[web] send_proxy: mode = redirect connects to no backend" in out, out
    text = harness.ini_text([("web", [("listen", "127.0.0.1:0"), ("mode", "redirect"),
                                      ("acme_backend", "127.0.0.1:8402"),
                                      ("send_proxy", "v1")])])
    rc, out, _ = harness.portier_check(workdir, text)
    assert rc == 0, out


# --------------------------------------------------------------------------
# dovecot: a real backend that parses the header (haproxy = yes) and logs
# the client it names.

@pytest.fixture(scope="module")
def dovecot_haproxy():
    d = harness.Dovecot(haproxy=True)
    yield d
    d.stop()


def imap_session(c, dovecot):
    """Log in through portier and read the test message's subject."""
    c.send(b"a1 LOGIN %s %s\r\n" % (harness.MAIL_USER.encode(), harness.MAIL_PASS.encode()))
    assert re.search(rb"(?m)^a1 OK", c.until(rb"(?m)^a1 .*\r\n")), "login refused"
    c.send(b"a2 SELECT INBOX\r\n")
    c.until(rb"(?m)^a2 OK.*\r\n")
    c.send(b"a3 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\r\n")
    got = c.until(rb"(?m)^a3 OK.*\r\n")
    assert dovecot.token.encode() in got, got
    c.send(b"a4 LOGOUT\r\n")
    c.until(rb"(?m)^a4 OK.*\r\n")


def dovecot_login_line(dovecot, rport):
    """dovecot's login line for the client from port rport, as a dict."""
    rx = re.compile(r"imap-login: (?:Info: )?Login: .*\brport=%d\b.*" % rport)
    try:
        m = harness.wait_for(lambda: rx.search(dovecot.file_log()), 10,
                             "dovecot's login line for rport=%d" % rport)
    except AssertionError as e:
        raise AssertionError("%s; dovecot's log:\n%s" % (e, dovecot.file_log()))
    kv = harness.parse_kv(m.group(0).replace(",", " "))
    kv["line"] = m.group(0)
    return kv


def test_dovecot_sees_the_client_through_a_v2_header(portier, certs, dovecot_haproxy):
    p = portier([("tls", harness.tls_items(certs.ec)),
                 listener("imaps", backend="127.0.0.1:%d" % dovecot_haproxy.imap_port,
                          mode="tls", protocol="imap", extra=[("send_proxy", "v2")])])
    lhost, lport = p.ports["imaps"][0]
    c = Client(lport)
    try:
        me = c.sock.getsockname()
        c.tls(certs, server_hostname=SNI)
        assert c.line().startswith(b"* OK")
        imap_session(c, dovecot_haproxy)
    finally:
        c.close()
    kv = dovecot_login_line(dovecot_haproxy, me[1])
    # The client's port and the listener's, not portier's own connection
    # to dovecot (whose ports dovecot would log without the header).
    assert (kv["rip"], int(kv["rport"])) == (me[0], me[1]), kv
    assert (kv["lip"], int(kv["lport"])) == (lhost, lport), kv
    assert lport != dovecot_haproxy.imap_port
    assert kv["user"] == "<%s>" % harness.MAIL_USER
    # PP2_CLIENT_SSL: dovecot counts the client's connection as secured.
    assert re.search(r", secured,", kv["line"]), kv


def test_dovecot_greets_a_starttls_client_after_a_v1_header(portier, certs, dovecot_haproxy):
    """dovecot says nothing before the header: portier must send it before it
    waits for the greeting, or the hand-over times out."""
    p = portier([("tls", harness.tls_items(certs.ec)),
                 starttls_listener("imap", "imap",
                                   backend="127.0.0.1:%d" % dovecot_haproxy.imap_port,
                                   extra=[("send_proxy", "v1")])])
    lhost, lport = p.ports["imap"][0]
    c = Client(lport)
    try:
        me = c.sock.getsockname()
        c.line()
        c.send(b"a0 STARTTLS\r\n")
        assert c.line().startswith(b"a0 OK")
        c.tls(certs, server_hostname=SNI)
        # After TLS, portier has met dovecot: the client's capability
        # query is dovecot's answer.
        c.send(b"a9 CAPABILITY\r\n")
        caps = c.until(rb"(?m)^a9 .*\r\n")
        assert b"a9 OK" in caps, caps
        imap_session(c, dovecot_haproxy)
    finally:
        c.close()
    kv = dovecot_login_line(dovecot_haproxy, me[1])
    assert (kv["rip"], int(kv["rport"])) == (me[0], me[1]), kv
    assert (kv["lip"], int(kv["lport"])) == (lhost, lport), kv


# --------------------------------------------------------------------------
# nginx as an HTTP backend: `listen ... proxy_protocol` takes the header, and
# $proxy_protocol_* say what it named (nginx 1.22 has no TLV variables yet).

NGINX_ANSWER = ("pp=$proxy_protocol_addr:$proxy_protocol_port "
                "srv=$proxy_protocol_server_addr:$proxy_protocol_server_port")


@pytest.fixture
def nginx(workdir):
    proc = harness.start_nginx(workdir, answer=NGINX_ANSWER, listen=" proxy_protocol",
                               log_format="'%s peer=$remote_addr \"$request\"'" % NGINX_ANSWER)
    yield proc
    proc.stop()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_sees_the_client_through_the_header(portier, certs, nginx, version):
    p = portier([("tls", harness.tls_items(certs.ec)),
                 listener("https", nginx.port, mode="tls", protocol="http",
                          extra=[("send_proxy", version)])])
    lhost, lport = p.ports["https"][0]
    cp = harness.curl(certs, lport, "/who-%s" % version,
                      args=["-w", "local=%{local_ip}:%{local_port}"])
    assert cp.returncode == 0, cp.err
    m = re.fullmatch(r"pp=(\S+) srv=(\S+)\nlocal=(\S+)", cp.out)
    assert m, cp.out
    client, server, local = m.groups()
    assert client == local, cp.out
    assert server == "%s:%d" % (lhost, lport), cp.out
    line = harness.wait_for(
        lambda: [l for l in open(nginx.access_log).read().splitlines()
                 if '"GET /who-%s ' % version in l], 10, "nginx's access log line")[0]
    assert line.startswith("pp=%s srv=%s:%d peer=%s " % (local, lhost, lport,
                                                          local.rsplit(":", 1)[0])), line
