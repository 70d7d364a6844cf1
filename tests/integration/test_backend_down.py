"""Backend down or refusing: HTTP listeners answer 502 over TLS, others close
after logging; portier keeps serving and recovers when the backend is back."""

import os
import re
import socket
import struct
import threading

import pytest

import harness
from harness import curl, listener, tls_items


def test_http_listener_answers_502_over_tls(portier, certs, closed_port):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", closed_port, protocol="http")])
    mark = p.mark()
    cp = curl(certs, p.port("web"), "/anything", args=["-o", "/dev/null", "-w",
                                                       "%{http_code} %{ssl_verify_result}"])
    # curl exit 0: the TLS handshake and certificate verification succeeded,
    # and the answer was a complete HTTP response.
    assert cp.returncode == 0, cp.err
    assert cp.out == "502 0", cp.out
    p.wait_log(r"127\.0\.0\.1:%d" % closed_port, since=mark)


def test_http_502_then_recovers_when_backend_comes_up(portier, certs, closed_port):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", closed_port, protocol="http")])
    cp = curl(certs, p.port("web"), "/x", args=["-o", "/dev/null", "-w", "%{http_code}"])
    assert cp.out == "502", cp.out + cp.err
    # Now start an HTTP backend on that very port.
    try:
        b = _http_backend_on(closed_port)
    except OSError as e:
        raise AssertionError("port %d was taken in between: %s" % (closed_port, e))
    try:
        cp = curl(certs, p.port("web"), "/echo/up")
        assert cp.returncode == 0, cp.err
        assert "method=GET path=/echo/up" in cp.out
    finally:
        b.stop()


def _http_backend_on(port):
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            body = ("method=GET path=%s\n" % self.path).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class B:
        def __init__(self):
            self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
            self.srv.daemon_threads = True
            self.t = threading.Thread(target=self.srv.serve_forever,
                                      kwargs={"poll_interval": 0.05}, daemon=True)
            self.t.start()

        def stop(self):
            self.srv.shutdown()
            self.srv.server_close()
            self.t.join(timeout=10)
    return B()


def test_http_502_for_missing_unix_backend(portier, certs, workdir):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", backend="unix:%s" % (workdir / "nobody-here.sock"),
                          protocol="http")])
    cp = curl(certs, p.port("web"), "/", args=["-o", "/dev/null", "-w", "%{http_code}"])
    assert cp.returncode == 0, cp.err
    assert cp.out == "502"


def test_plain_listener_missing_unix_backend_is_no_handshake_failure(portier, workdir):
    """A unix: backend that is not there fails at once, before the
    connection has a state: logged as the close it is (no TLS was tried on
    a plain listener), not as a failed handshake."""
    p = portier([listener("raw", backend="unix:%s" % (workdir / "nobody-here.sock"),
                          mode="plain")])
    with socket.create_connection(("127.0.0.1", p.port("raw")), timeout=10) as s:
        assert harness.read_to_eof(s) == b""
    line = p.wait_log(r"\[raw\] close client=127\.0\.0\.1:\d+ ").string
    assert "No such file or directory" in line, line
    assert "handshake failed" not in p.log(), p.log()


def test_unix_socket_backend_relays(portier, certs, workdir):
    """The unix:/path backend form works when something listens there."""
    path = str(workdir / "backend.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(10 * harness.SLOW)
    try:
        p = portier([("tls", tls_items(certs.ec)),
                     listener("raw", backend="unix:" + path)])
        cli = harness.TLSClient(p.port("raw"), certs.client_context(), "localhost")
        c, _ = srv.accept()
        with c:
            c.settimeout(10 * harness.SLOW)
            cli.send(b"ping over unix")
            cli.close_notify()
            assert harness.read_to_eof(c) == b"ping over unix"
            c.sendall(b"pong")
        assert cli.recv_all() == b"pong"
        cli.close()
    finally:
        srv.close()


def test_tcp_listener_closes_and_logs(portier, certs, closed_port):
    p = portier([("tls", tls_items(certs.ec)), listener("raw", closed_port)])
    mark = p.mark()
    # The handshake completes (portier dials the backend only after it);
    # then portier, not the client, ends the connection: a TLS close_notify
    # and no bytes. The client sends nothing, so no reset can race the
    # close; any exception here (handshake failure, reset, timeout) fails.
    cli = harness.TLSClient(p.port("raw"), certs.client_context(), "localhost")
    try:
        got = cli.recv_all()
        assert cli.got_close_notify, "closed without close_notify"
    finally:
        cli.close()
    assert got == b"", "a tcp listener must not invent an answer: %r" % got
    line = p.wait_log(r"127\.0\.0\.1:%d" % closed_port, since=mark).string
    assert "refused" in line.lower(), line
    # portier is still serving
    assert harness.port_open(p.port("raw"))


def test_many_failures_do_not_leak_or_stall(portier, certs, closed_port, http_backend):
    """50 refused backend connects in a row, then a working listener still works."""
    p = portier([("tls", tls_items(certs.ec)),
                 listener("down", closed_port, protocol="http"),
                 listener("up", http_backend.port, protocol="http")])
    ctx = certs.client_context()
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", p.port("down")), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                data = b""
                for _ in range(100):
                    d = t.recv(4096)
                    if not d:
                        break
                    data += d
                assert data.startswith(b"HTTP/1.") and b" 502 " in data.split(b"\r\n")[0], data
    cp = curl(certs, p.port("up"), "/size/100000", args=["-o", os.devnull, "-w", "%{size_download}"])
    assert cp.out == "100000", cp.out + cp.err


class Slammer:
    """A backend that accepts every connection and ends it at once, without
    a byte: in order (FIN) or with a reset."""

    def __init__(self, reset):
        self.reset = reset
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.halt = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.halt.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            if self.reset:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()

    def stop(self):
        self.halt.set()
        self.t.join(10)
        self.sock.close()


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "reset"])
@pytest.mark.parametrize("protocol,words", [
    ("imap", rb"^\* BYE \[UNAVAILABLE\] "),
    ("smtp", rb"^421 "),
    ("pop3", rb"^-ERR "),
    ("http", rb"^HTTP/1\.1 502 "),
])
def test_implicit_tls_backend_that_ends_before_a_byte_is_refused_in_protocol(
        portier, certs, protocol, words, reset):
    """A backend that accepts and ends at once (a dying service behind a
    socket that still listens) is down, for the client: on an implicit-TLS
    listener the client gets the protocol's refusal, as when the connect
    fails, with the refusal's warning; not an empty session that looks
    like a normal close."""
    b = Slammer(reset)
    try:
        p = portier([("tls", tls_items(certs.ec)),
                     listener("s", b.port, protocol=protocol)])
        mark = p.mark()
        cli = harness.TLSClient(p.port("s"), certs.client_context(), "localhost")
        try:
            if protocol == "http":
                cli.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            got = cli.recv_all()
        finally:
            cli.close()
        assert re.match(words, got), got
        # A reset can come before portier has seen its connect complete:
        # then the connect itself failed, and says so.
        p.wait_log(r"\[s\] client=127\.0\.0\.1:\d+: backend ((closed|reset) the connection "
                   r"before sending a byte|127\.0\.0\.1:%d: Connection reset by peer); "
                   r"refusing in %s$" % (b.port, protocol), since=mark)
    finally:
        b.stop()


def test_tcp_backend_that_ends_before_a_byte_is_a_plain_close(portier, certs):
    """tcp has no words, and a backend that never answers may be its
    protocol: the session ends with close_notify, no refusal is logged."""
    b = Slammer(False)
    try:
        p = portier([("tls", tls_items(certs.ec)), listener("raw", b.port)])
        mark = p.mark()
        cli = harness.TLSClient(p.port("raw"), certs.client_context(), "localhost")
        try:
            assert cli.recv_all() == b""
            assert cli.got_close_notify
        finally:
            cli.close()
        p.wait_log(r"\[raw\] close client=\S+ .*: backend closed$", since=mark)
        assert "refusing" not in p.log()[mark:], p.log()[mark:]
    finally:
        b.stop()


class Mute:
    """A backend that accepts every connection and says nothing."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def stop(self):
        self.sock.close()


@pytest.mark.parametrize("protocol,words", [
    ("imap", rb"^\* BYE \[UNAVAILABLE\] "),
    ("smtp", rb"^421 "),
])
def test_implicit_tls_backend_that_never_greets_is_refused_at_connect_timeout(
        portier, certs, protocol, words):
    """On a mode = tls listener of a protocol where the server speaks
    first, a backend that accepts and never greets is refused in the
    protocol's words once connect_timeout has passed (the STARTTLS
    hand-over's deadline for the same greeting), not left to idle_timeout
    (30 minutes for IMAP) with the client waiting in silence."""
    b = Mute()
    try:
        p = portier([("tls", tls_items(certs.ec)),
                     listener("s", b.port, protocol=protocol,
                              extra=[("connect_timeout", "1s")])])
        mark = p.mark()
        cli = harness.TLSClient(p.port("s"), certs.client_context(), "localhost")
        try:
            got = cli.recv_all()
        finally:
            cli.close()
        assert re.match(words, got), got
        p.wait_log(r"\[s\] client=127\.0\.0\.1:\d+: backend 127\.0\.0\.1:%d: no greeting "
                   r"within 1s; refusing in %s$" % (b.port, protocol), since=mark)
    finally:
        b.stop()


@pytest.mark.parametrize("backend", ["closed", "slammer"])
def test_an_h2_session_is_ended_not_given_http1_text(portier, certs, closed_port, backend):
    """alpn = h2, for a backend that speaks HTTP/2: a client that agreed on
    h2 by ALPN gets an orderly end of its session (close_notify, no byte)
    when the backend is down or ends before a byte; the HTTP/1.1 502 text
    it got is a protocol error inside an HTTP/2 session. A client that
    agreed on nothing still gets the 502."""
    b = Slammer(False) if backend == "slammer" else None
    try:
        p = portier([("tls", tls_items(certs.ec)),
                     listener("h2", b.port if b else closed_port, protocol="http",
                              extra=[("alpn", "h2")])])
        mark = p.mark()
        for alpn in (["h2"], None):
            ctx = certs.client_context()
            if alpn:
                ctx.set_alpn_protocols(alpn)
            cli = harness.TLSClient(p.port("h2"), ctx, "localhost")
            try:
                assert cli.obj.selected_alpn_protocol() == (alpn[0] if alpn else None)
                if not alpn:
                    cli.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                got = cli.recv_all()
                if alpn:
                    assert got == b"", got
                    assert cli.got_close_notify, "closed without close_notify"
                else:
                    assert got.startswith(b"HTTP/1.1 502 "), got
            finally:
                cli.close()
        if b is None:
            p.wait_log(r"\[h2\] client=127\.0\.0\.1:\d+: backend 127\.0\.0\.1:%d: Connection "
                       r"refused; ending the TLS session$" % closed_port, since=mark)
        # One refusal in protocol: the client without ALPN's.
        p.wait_log(r"refusing in http$", since=mark)
        assert len(re.findall(r"refusing in http$", p.log()[mark:], re.M)) == 1, p.log()[mark:]
    finally:
        if b:
            b.stop()
