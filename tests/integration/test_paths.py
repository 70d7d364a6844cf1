"""Paths of the connection state machine that no other file exercises
(issue 15, "untested today"): the UPGRADING deadline, the RESPOND linger,
a backend reset mid-relay, a backend that closes during the STARTTLS
hand-over, and every handshake-failure reason tlsctx_error() promises.

Each test checks the exact words of the close line (conn.c, conn_relay.c,
conn_starttls.c, tlsctx.c) and what the client sees on the wire."""

import re
import socket
import ssl
import struct
import threading
import time

import pytest

import harness
from harness import listener, s_client, tls_items
from starttls_support import Client, smtp_upgrade, starttls_listener

SLOW = harness.SLOW


def close_line(p, pattern, since, timeout=5):
    """The close line of one connection (a 'close client=' or 'handshake
    failed client=' line) whose reason matches pattern; returns the match."""
    return p.wait_log(r"(?:close|handshake failed) client=127\.0\.0\.1:(\d+) .*?" + pattern,
                      timeout=timeout, since=since)


def line_time(line):
    """The time= field of a close line, in seconds."""
    m = re.search(r" time=([0-9.]+)s", line)
    assert m, line
    return float(m.group(1))


# --------------------------------------------------------------------------
# 1. UPGRADING: the go-ahead for STARTTLS was sent, no ClientHello follows

def test_upgrading_deadline(portier, certs, closed_port):
    """handshake_timeout (not prelude_timeout, 30 s) bounds the wait for the
    first TLS bytes after STARTTLS; the backend is never contacted."""
    p = portier([("tls", tls_items(certs.ec)),
                 starttls_listener("smtp", "smtp", closed_port,
                                   extra=[("handshake_timeout", "1500ms")])])
    mark = p.mark()
    c = Client(p.port("smtp"))
    try:
        c.smtp_reply()
        c.send(b"EHLO client.example.net\r\n")
        c.smtp_reply()
        c.send(b"STARTTLS\r\n")
        assert c.smtp_reply().startswith(b"220 ")
        t0 = time.monotonic()
        rest = c.read_to_eof(timeout=1.5 + 3 * SLOW)   # then silence, no ClientHello
        waited = time.monotonic() - t0
    finally:
        c.close()
    assert rest == b"", rest
    assert 1.4 <= waited <= 1.5 + 3 * SLOW, waited
    m = close_line(p, r": no TLS handshake within 1500ms of STARTTLS$", mark)
    assert " tls=- " in m.string, m.string
    assert "backend" not in p.log()[mark:], p.log()[mark:]


# --------------------------------------------------------------------------
# 2. RESPOND: the redirect's linger

REQUEST = b"GET /some/where HTTP/1.1\r\nHost: www.example.org\r\n\r\n"


def check_301(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw
    assert head.startswith(b"HTTP/1.1 301 "), raw
    assert b"\r\nLocation: https://www.example.org/some/where\r\n" in head + b"\r\n", raw
    m = re.search(rb"\r\nContent-Length: (\d+)", head)
    assert m and len(body) == int(m.group(1)), raw


def redirect_listener(portier):
    return portier([listener("http", mode="redirect", protocol="http")])


def test_respond_linger_ends_a_silent_client(portier):
    """A client that gets its 301 and neither reads nor closes is closed
    after the 2 s linger, with the reply and a FIN (no reset) waiting."""
    p = redirect_listener(portier)
    mark = p.mark()
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * SLOW) as s:
        s.sendall(REQUEST)
        me = s.getsockname()[1]
        m = close_line(p, r": replied$", mark, timeout=2 + 3 * SLOW)
        assert int(m.group(1)) == me, m.string
        # Closed by the deadline, not before it (the client did nothing).
        assert 1.9 <= line_time(m.string) <= 2 + 1.5 * SLOW, m.string
        raw = harness.read_to_eof(s)      # ConnectionResetError fails the test
    check_301(raw)


def test_respond_reads_out_a_client_that_keeps_sending(portier):
    """A client that keeps sending after its request is read out, so the
    close does not reset the connection under the reply: it gets the whole
    301 and a clean end, and the connection ends on its EOF, not the deadline."""
    p = redirect_listener(portier)
    mark = p.mark()
    junk = b"X-Junk: " + b"j" * 1000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * SLOW) as s:
        s.sendall(REQUEST)
        me = s.getsockname()[1]
        # 512 KiB more than a socket pair holds unread on loopback by
        # default, sent without reading: portier must read it out.
        for _ in range(512):
            s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        m = close_line(p, r": replied$", mark, timeout=2 + 3 * SLOW)
        assert int(m.group(1)) == me, m.string
        # The reply is read only now, after portier closed.
        raw = harness.read_to_eof(s)      # ConnectionResetError fails the test
    check_301(raw)
    assert line_time(m.string) < 1.9, m.string


# --------------------------------------------------------------------------
# 3. A backend reset while the relay is open

def test_backend_reset_mid_relay(portier, certs, raw_backend):
    """The backend answers part of a response, then resets (SO_LINGER 0).
    The close line says "backend reset"; the client's stream ends with a
    TCP FIN and no close_notify (conn_close without conn_client_shut), so a
    TLS client can tell the cut-off response from a complete one."""
    go = threading.Event()

    def resetter(conn):
        req = conn.recv(100)
        conn.sendall(b"partial-response")
        assert go.wait(10 * SLOW), "the client never saw the partial response"
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return req      # RawBackend closes conn: a RST with SO_LINGER 0
    b = raw_backend(resetter)
    p = portier([("tls", tls_items(certs.ec)), listener("tcp", b.port, protocol="tcp")])
    mark = p.mark()
    ctx = certs.client_context()
    # Python sets OP_IGNORE_UNEXPECTED_EOF, which makes a ragged end read as
    # a zero return: clear it, so that a bare FIN raises "unexpected eof".
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    c = harness.TLSClient(p.port("tcp"), ctx, "localhost")
    try:
        me = c.sock.getsockname()[1]
        c.send(b"hello")
        got = b""
        while len(got) < len(b"partial-response"):
            got += c._loop(c.obj.read, 65536)
        assert got == b"partial-response", got
        go.set()
        with pytest.raises(ssl.SSLError) as e:
            c.recv_all()
    finally:
        go.set()
        c.close()
    assert b.wait_result() == b"hello"
    assert "UNEXPECTED_EOF" in str(e.value) or isinstance(e.value, ssl.SSLEOFError), e.value
    assert c.eof_tcp and not c.got_close_notify
    m = close_line(p, r": backend reset$", mark)
    assert int(m.group(1)) == me, m.string


def test_backend_reset_reaches_a_plaintext_client_as_a_reset(portier, raw_backend):
    """On a plain listener a FIN would let the client take a cut-off reply for
    a complete one (an HTTP/1.0 body ends with the connection): the backend's
    reset becomes the client's."""
    go = threading.Event()

    def resetter(conn):
        req = conn.recv(100)
        conn.sendall(b"partial-response")
        assert go.wait(10 * SLOW), "the client never saw the partial response"
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return req      # RawBackend closes conn: a RST with SO_LINGER 0
    b = raw_backend(resetter)
    p = portier([listener("tcp", b.port, mode="plain", protocol="tcp")])
    mark = p.mark()
    s = socket.create_connection(("127.0.0.1", p.port("tcp")), timeout=10 * SLOW)
    try:
        me = s.getsockname()[1]
        s.sendall(b"hello")
        got = b""
        while len(got) < len(b"partial-response"):
            d = s.recv(65536)
            assert d, "portier ended the stream before the partial response"
            got += d
        assert got == b"partial-response", got
        go.set()
        with pytest.raises(ConnectionResetError):
            for _ in range(100):
                assert s.recv(65536) != b"", "an orderly end (FIN) instead of a reset"
    finally:
        go.set()
        s.close()
    assert b.wait_result() == b"hello"
    m = close_line(p, r": backend reset$", mark)
    assert int(m.group(1)) == me, m.string


# --------------------------------------------------------------------------
# 4. A backend that closes during the STARTTLS hand-over

@pytest.mark.parametrize("said", [b"", b"220-fake.backend ESMTP"],
                         ids=["no-greeting", "half-greeting"])
def test_backend_closes_during_greeting(portier, certs, raw_backend, said):
    """After the client's TLS handshake portier connects the backend and
    waits for its 220; a backend that closes first (before a word, or in
    the middle of a multi-line greeting) earns the client SMTP's 421 over
    TLS, and the log names the cause."""
    def closer(conn):
        if said:
            conn.sendall(said)
        return b"closed"
    b = raw_backend(closer)
    p = portier([("tls", tls_items(certs.ec)), starttls_listener("smtp", "smtp", b.port)])
    mark = p.mark()
    c = Client(p.port("smtp"))
    try:
        smtp_upgrade(c, certs)
        reply = c.smtp_reply()
        rest = c.read_to_eof()
    finally:
        c.close()
    assert b.wait_result() == b"closed"
    assert re.match(rb"421 [^\r\n]*\r\n$", reply), reply
    assert b"fake.backend" not in reply + rest, reply + rest
    assert rest == b"", rest
    p.wait_log(r"warning: \[smtp\] client=127\.0\.0\.1:\d+: backend closed %s its "
               r"greeting; refusing in smtp$" % ("during" if said else "before"), since=mark)
    close_line(p, r": backend unavailable, refused in protocol$", mark)


# --------------------------------------------------------------------------
# 5. Handshake failures: the reason tlsctx_error() (or handshake_io) gives

@pytest.fixture
def tls_port(portier, certs, closed_port):
    p = portier([("tls", tls_items(certs.ec)), listener("web", closed_port, protocol="tcp")])
    return p, p.port("web")


def failed(p, mark, reason, port=None):
    m = p.wait_log(r"\[web\] handshake failed client=127\.0\.0\.1:(\d+): " + reason + "$",
                   since=mark)
    if port is not None:
        assert int(m.group(1)) == port, m.string
    return m


def test_handshake_failure_version_too_old(tls_port):
    p, port = tls_port
    mark = p.mark()
    cp = s_client(port, ["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"])
    assert cp.returncode != 0, cp.out
    failed(p, mark, r"client's TLS version is too old \(portier accepts TLS 1\.2 and "
                    r"1\.3 only\)")


def test_handshake_failure_no_shared_cipher(tls_port):
    """TLS 1.2 with RSA key exchange and CBC only: nothing portier offers."""
    p, port = tls_port
    mark = p.mark()
    cp = s_client(port, ["-tls1_2", "-cipher", "AES128-SHA:AES256-SHA:@SECLEVEL=0"])
    assert cp.returncode != 0, cp.out
    failed(p, mark, r"no shared cipher suite \(portier offers ECDHE with AES-GCM or "
                    r"ChaCha20-Poly1305 only\)")


def test_handshake_failure_malformed_client_hello(tls_port):
    """A handshake record whose ClientHello body is garbage."""
    p, port = tls_port
    mark = p.mark()
    body = b"\x03\x03" + b"\xff" * 6                  # a version, then nonsense
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    with socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW) as s:
        me = s.getsockname()[1]
        s.sendall(b"\x16\x03\x01" + len(msg).to_bytes(2, "big") + msg)
        try:
            harness.read_to_eof(s)          # an alert, then the end
        except ConnectionResetError:
            pass
    failed(p, mark, r"malformed TLS message from the client", me)


def test_handshake_failure_client_rejects_certificate(tls_port, certs):
    """A client that trusts another CA sends an alert; the log names it."""
    p, port = tls_port
    mark = p.mark()
    cp = s_client(port, ["-tls1_2"], ca=certs.other.leaf)
    assert cp.returncode != 0, cp.out
    assert "Verification error: " in cp.out, cp.out
    failed(p, mark, r"client sent alert: [^()]*unknown[ _]CA[^()]* \(did it reject the "
                    r"certificate\?\)")


def test_handshake_failure_client_rejects_certificate_in_tls13(tls_port, certs):
    """In TLS 1.3 an OpenSSL client sends that alert in plaintext, before its
    handshake keys; BoringSSL, expecting an encrypted record, says only
    BAD_PACKET_LENGTH. portier watches the handshake's record headers and
    says what happened instead."""
    p, port = tls_port
    mark = p.mark()
    cp = s_client(port, ["-tls1_3"], ca=certs.other.leaf)
    assert cp.returncode != 0, cp.out
    assert "Verification error: " in cp.out, cp.out
    failed(p, mark, r"client sent an alert in plaintext during the TLS 1\.3 handshake, as an "
                    r"OpenSSL client does when it rejects the certificate \(did it\?\)")


def test_handshake_failure_closed_without_client_hello(tls_port):
    p, port = tls_port
    mark = p.mark()
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    me = s.getsockname()[1]
    s.close()
    failed(p, mark, r"client closed during the handshake without a ClientHello", me)
