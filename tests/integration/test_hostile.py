"""Hostile clients against every listener type (tls, starttls, redirect,
plain): a stalled, dripping, partial or abusive client must cost the worker
no CPU while it waits, must not keep 20 ordinary clients of the same
listener from being served meanwhile, and must be closed by the timeout
that applies, which its close line names.

The CPU measure is the worker's utime+stime (/proc/PID/stat) over a quiet
window of about a second while only the hostile client is connected: a
worker that spins on it shows ~100 % of a CPU. Such findings do not stop a
test; it goes on (ordinary clients, the timeout) and fails at the end
naming all of them (hostile_support.Findings). Timeouts are short (secs():
1-3 s, stretched for sanitizer builds)."""

import os
import re
import socket
import ssl
import time

import pytest

import harness
from harness import listener, tls_items
from hostile_support import (DRIP_PERIOD, REASON, Backend, Dripper, Findings, client_hello,
                             close_reason, commands, https_ordinary, ldaps_ordinary,
                             plain_echo_ordinary, read_until_closed, redirect_ordinary, secs,
                             serve_echo, serve_ldap, serve_ordinary, serve_smtp_xclient,
                             starttls_ordinary, tls_echo_ordinary, tls_session_over,
                             wait_close)
from starttls_support import (HOSTNAME, OID_NOTICE, PROTOCOLS, Client, FakeBackend,
                              LDAPResult, UPGRADE, ldap_bind, ldap_search, ldap_split,
                              ldap_unbind, smtp_upgrade, starttls_listener)


def factory(make_one):
    """A fixture body: yields make(arg) -> make_one(arg), stopping each at the end."""
    made = []

    def make(arg):
        b = make_one(arg)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def backend():
    """Factory: backend(serve) -> a running hostile_support.Backend."""
    yield from factory(Backend)


@pytest.fixture
def fake():
    """Factory: fake(protocol) -> a running starttls_support.FakeBackend."""
    yield from factory(FakeBackend)


def tls_section(certs):
    return ("tls", tls_items(certs.ec))


def local_port(sock):
    return sock.getsockname()[1]


# --- 1. a partial TLS record after the handshake --------------------------

HEADER = b"\x17\x03\x03\x40\x00"          # application data, 16384 bytes to come
PARTIAL = {"3-bytes": HEADER[:3], "header": HEADER, "header+1": HEADER + b"\x41",
           "header+8000": HEADER + b"\x41" * 8000}


@pytest.mark.parametrize("partial", list(PARTIAL))
def test_partial_tls_record_costs_nothing_and_idles_out(portier, certs, http_backend, partial):
    idle = secs(3)
    p = portier([tls_section(certs),
                 listener("web", http_backend.port, protocol="http",
                          extra=[("idle_timeout", "%ds" % idle)])])
    pid = p.worker_pid()
    ctx = certs.client_context()
    mark = p.mark()
    with Findings() as f:
        h = harness.TLSClient(p.port("web"), ctx, "localhost")
        port = local_port(h.sock)
        try:
            h.sock.sendall(PARTIAL[partial])     # raw bytes: a record never completed
            f.quiet(pid, "a TLS client held a partial record (%s)" % partial)
            serve_ordinary(https_ordinary(p.port("web"), ctx))
            f.still_open(p, port, mark, "the ordinary clients were served")
            read_until_closed(h.sock, idle + 5)
        finally:
            h.close()
        line = wait_close(p, port, mark)
        assert close_reason(line) == REASON["idle"].format(t=idle), line


# --- 2. an honest upload, one byte per record -----------------------------

def test_byte_per_record_upload_is_relayed_and_never_idles_out(portier, certs, backend):
    idle = 2            # the upload below lasts 1.5 idle_timeouts and more
    b = backend(serve_echo)
    p = portier([tls_section(certs),
                 listener("raw", b.port, extra=[("idle_timeout", "%ds" % idle)])])
    pid = p.worker_pid()
    ctx = certs.client_context()
    mark = p.mark()
    n = int(idle * 1.5 / DRIP_PERIOD) + 2
    sent = bytes(0x41 + i % 26 for i in range(n))
    with Findings() as f:
        h = harness.TLSClient(p.port("raw"), ctx, "localhost")
        port = local_port(h.sock)
        sess = b.session(0)

        def upload():
            for i in range(n):
                t0 = time.monotonic()
                h.send(sent[i:i + 1])                  # one byte, one TLS record
                # Each byte reaches the backend on its own, not held for more.
                harness.wait_for(lambda: len(sess.data) >= i + 1, 2,
                                 "byte %d of the slow upload at the backend" % (i + 1))
                pause = DRIP_PERIOD - (time.monotonic() - t0)
                if pause > 0:
                    time.sleep(pause)          # the client's pace, not a wait for portier
        try:
            f.quiet(pid, "a TLS client uploaded one byte per record every %.1fs"
                    % DRIP_PERIOD, during=upload)
            assert bytes(sess.data) == sent
            f.still_open(p, port, mark, "the upload ended (its bytes came within "
                         "idle_timeout of each other)")
            serve_ordinary(tls_echo_ordinary(p.port("raw"), ctx))
            f.still_open(p, port, mark, "the ordinary clients were served")
            h.close_notify()
            assert sess.done.wait(5 * harness.SLOW), "the backend saw no end of the upload"
            assert sess.end == "eof", sess.end
            echoed = h.recv_all()
        finally:
            h.close()
        assert echoed == sent
        line = wait_close(p, port, mark)
        assert close_reason(line) == "client closed", line


# --- 3. LDAPS: one byte of a message header, then the end of stream -------

def test_ldaps_partial_header_costs_nothing_and_its_eof_reaches_backend(portier, certs,
                                                                         backend):
    b = backend(serve_ldap)
    idle = secs(10)      # longer than the test: the end must come from the client
    p = portier([tls_section(certs),
                 listener("ldaps", b.port, protocol="ldap",
                          extra=[("idle_timeout", "%ds" % idle)])])
    pid = p.worker_pid()
    ctx = certs.client_context()
    mark = p.mark()
    with Findings() as f:
        h = harness.TLSClient(p.port("ldaps"), ctx, "localhost")
        port = local_port(h.sock)
        sess = b.session(0)
        try:
            h.send(b"\x30")             # the first byte of an LDAPMessage, nothing more
            f.quiet(pid, "an LDAPS client held one byte of a message header")
            serve_ordinary(ldaps_ordinary(p.port("ldaps"), ctx))
            f.still_open(p, port, mark, "the ordinary clients were served")
            h.close_notify()
            assert sess.done.wait(5 * harness.SLOW), (
                "the backend never saw the end of the client's stream (got %r, still open)"
                % bytes(sess.data))
            assert sess.end == "eof", "the backend saw %s, not an orderly end" % sess.end
            # The held byte may be passed on or dropped at the end; nothing else.
            assert bytes(sess.data) in (b"", b"\x30"), bytes(sess.data)
            rest = h.recv_all()
        finally:
            h.close()
        assert rest == b""
        line = wait_close(p, port, mark)
        assert close_reason(line) == "client closed", line


# --- 4. STARTTLS optional, MAIL to a backend that is not there ------------

def assert_no_crash(p, pid, what):
    """The first worker still serves (the master started no other) and nothing
    reported a memory error."""
    log = p.log()
    assert "Sanitizer" not in log and "runtime error:" not in log, \
        "%s: sanitizer report in portier's log:\n%s" % (what, log)
    assert "starting another" not in log, "%s: a worker died:\n%s" % (what, log)
    assert p.workers() == {1: pid}, "%s: worker pids %r, expected {1: %d}; log:\n%s" % (
        what, p.workers(), pid, log)


def test_plaintext_mail_to_missing_backend_does_not_crash_the_worker(portier, certs):
    p = portier([tls_section(certs),
                 starttls_listener("smtp", "smtp", backend="unix:/path/that/does/not/exist",
                                   extra=[("starttls", "optional")])])
    pid = p.worker_pid()
    port = p.port("smtp")
    for i in range(10):
        # HELO and EHLO ask the backend: refused there, a client that
        # pipelined its mail behind the hello included.
        for hello in (b"HELO a\r\nMAIL FROM:<a>\r\n", b"EHLO a\r\n"):
            c = Client(port)
            try:
                assert c.smtp_reply().startswith(b"220 ")
                c.send(hello)
                assert c.smtp_reply().startswith(b"421 "), "round %d" % (i + 1)
                assert c.read_to_eof() == b""
            finally:
                c.close()
        # The same worker greets the next client.
        c = Client(port)
        try:
            assert c.smtp_reply().startswith(b"220 "), "round %d" % (i + 1)
        finally:
            c.close()
        assert_no_crash(p, pid, "round %d" % (i + 1))


# --- 5. a slow reader of a close-delimited body ---------------------------

def slow_tls_read(t, slow_bytes, slow_chunk=4096, pause=0.02):
    """Read through a harness.TLSConn, pulling slow_chunk bytes off the socket
    every pause seconds until slow_bytes of plaintext came, then as fast as
    they come. Returns (plaintext, how it ended: "close_notify", "fin" or
    "reset")."""
    out = bytearray()
    for _ in range(1 << 20):
        try:
            for _ in range(1 << 16):
                d = t.obj.read(65536)
                if not d:
                    return bytes(out), "close_notify"
                out += d
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            return bytes(out), "close_notify"
        slow = len(out) < slow_bytes
        try:
            d = t.sock.recv(slow_chunk if slow else 65536)
        except ConnectionResetError:
            return bytes(out), "reset"
        if not d:
            return bytes(out), "fin"
        t.incoming.write(d)
        if slow:
            time.sleep(pause)          # the reader's pace
    raise AssertionError("read loop did not end")


def test_close_delimited_body_to_slow_reader_ends_with_close_notify(portier, certs, backend):
    body = os.urandom(4 << 20)
    head = b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"

    def serve(s):
        # No length: the body ends where the backend closes.
        for _ in range(1000):
            if b"\r\n\r\n" in s.data:
                break
            if not s.recv():
                return
        s.send(head + body)
    b = backend(serve)
    idle = secs(5)
    p = portier([tls_section(certs),
                 listener("web", b.port, protocol="http",
                          extra=[("idle_timeout", "%ds" % idle)])])
    ctx = certs.client_context()
    mark = p.mark()
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small window, so portier meets backpressure rather than kernel buffers.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    raw.settimeout((idle + 10) * harness.SLOW)
    t0 = time.monotonic()
    try:
        raw.connect(("127.0.0.1", p.port("web")))
        port = local_port(raw)
        t = tls_session_over(raw, ctx)
        t.send(b"GET /big HTTP/1.0\r\nHost: localhost\r\n\r\n")
        got, how = slow_tls_read(t, slow_bytes=256 << 10)
        took = time.monotonic() - t0
        if how == "close_notify":
            t.close_notify()
    finally:
        raw.close()
    assert len(got) == len(head) + len(body) and got == head + body, \
        "got %d of %d bytes" % (len(got), len(head) + len(body))
    assert how == "close_notify", (
        "the body ended with %s instead of close_notify, %.1fs after the request "
        "(idle_timeout %ds); log:\n%s" % (how, took, idle, p.log()[mark:]))
    line = wait_close(p, port, mark)
    assert close_reason(line) == "backend closed", line


def test_close_notify_that_meets_a_full_socket_is_sent_when_it_has_room(portier, certs,
                                                                        backend):
    """On loopback the socket buffer is rarely full at the very moment of
    close_notify, so the kernel's EAGAIN is injected there (tests/fault,
    LD_PRELOAD into the real binary, once): the alert must still go out when
    the socket has room, not be dropped and replaced by a bare FIN when
    idle_timeout passes (a truncation the client's TLS stack may take for a
    complete body). TLS 1.2, where an alert is a record of its own type."""
    shim = os.path.join(harness.PORTIER_BUILD, "tests", "libsend_fault.so")
    assert os.path.exists(shim), "the fault shim was not built: %s" % shim
    body = os.urandom(100000)

    def serve(s):
        for _ in range(1000):
            if b"\r\n\r\n" in s.data:
                break
            if not s.recv():
                return
        s.send(b"HTTP/1.0 200 OK\r\n\r\n" + body)
    b = backend(serve)
    idle = secs(5)
    asan = os.environ.get("ASAN_OPTIONS", "")
    p = portier([tls_section(certs),
                 listener("web", b.port, protocol="http",
                          extra=[("idle_timeout", "%ds" % idle)])],
                env={"LD_PRELOAD": shim, "PORTIER_FAULT_ALERT_EAGAIN": "1",
                     # the shim comes before ASan's runtime in the list
                     "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:"
                                     "verify_asan_link_order=0" + (":" + asan if asan else "")})
    ctx = certs.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    mark = p.mark()
    raw = socket.create_connection(("127.0.0.1", p.port("web")), timeout=(idle + 10) * harness.SLOW)
    try:
        port = local_port(raw)
        t = tls_session_over(raw, ctx)
        t.send(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        got, how = slow_tls_read(t, slow_bytes=0)
        if how == "close_notify":
            t.close_notify()
    finally:
        raw.close()
    assert got.endswith(body), "got %d bytes" % len(got)
    assert "send_fault: one TLS alert send made to fail with EAGAIN" in p.log()[mark:], \
        "the injected fault was never met; log:\n" + p.log()[mark:]
    assert how == "close_notify", (
        "the body ended with %s instead of close_notify; log:\n%s" % (how, p.log()[mark:]))
    line = wait_close(p, port, mark)
    assert close_reason(line) == "backend closed", line


# --- 6. XCLIENT / XFORWARD injection --------------------------------------

SMTP_SETUPS = {"tls": ("tls", False), "starttls": ("starttls", False),
               "starttls-xclient": ("starttls", True)}


@pytest.mark.parametrize("setup", list(SMTP_SETUPS))
def test_smtp_client_cannot_inject_xclient_or_xforward(portier, certs, backend, setup):
    mode, xclient = SMTP_SETUPS[setup]
    b = backend(serve_smtp_xclient)
    if mode == "tls":
        sec = listener("smtp", b.port, mode="tls", protocol="smtp",
                       extra=[("hostname", HOSTNAME)])
    else:
        sec = starttls_listener("smtp", "smtp", b.port,
                                extra=[("xclient", "yes")] if xclient else [])
    p = portier([tls_section(certs), sec])
    with Findings() as f:
        c = Client(p.port("smtp"))
        try:
            if mode == "tls":
                c.tls(certs)
                assert c.smtp_reply().startswith(b"220 ")
            else:
                smtp_upgrade(c, certs)
            c.send(b"EHLO client.example.net\r\n")
            ehlo = c.smtp_reply()
            assert ehlo.startswith(b"250"), ehlo
            for word in (b"XCLIENT", b"XFORWARD", b"STARTTLS"):
                f.check(word not in ehlo.upper(), "the client was offered %s: %r"
                        % (word.decode(), ehlo))
            c.send(b"XCLIENT LOGIN=admin ADDR=10.1.1.1\r\n")
            r = c.smtp_reply()
            f.check(r.startswith(b"550 5.7.0"), "XCLIENT from the client answered %r" % r)
            c.send(b"XFORWARD ADDR=10.1.1.1\r\n")
            r = c.smtp_reply()
            f.check(r.startswith(b"550 5.7.0"), "XFORWARD from the client answered %r" % r)
            c.send(b"MAIL FROM:<a>\r\nXCLIENT NAME=x\r\nRCPT TO:<b>\r\n")    # one write
            rs = [c.smtp_reply(), c.smtp_reply(), c.smtp_reply()]
            f.check(rs[0].startswith(b"250") and b"MAIL ok" in rs[0] and
                    rs[1].startswith(b"550 5.7.0") and
                    rs[2].startswith(b"250") and b"RCPT ok" in rs[2],
                    "pipelined MAIL, XCLIENT, RCPT answered %r" % rs)
            c.send(b"QUIT\r\n")
            assert c.smtp_reply().startswith(b"221 ")
            c.read_to_eof()
        finally:
            c.close()
        s = b.session(0)
        assert s.done.wait(5 * harness.SLOW)
        lines = s.lines()
        want = ([b"EHLO", b"XCLIENT"] if xclient else []) + [b"EHLO", b"MAIL", b"RCPT",
                                                             b"QUIT"]
        f.check(commands(s) == want, "the backend received %r" % lines)
        if xclient:     # portier's own, with the real client's address, before the client's
            f.check(len(lines) > 1 and lines[1].startswith(b"XCLIENT ADDR=127.0.0.1 PORT="),
                    "portier's XCLIENT is not second: %r" % lines)
        data = bytes(s.data)
        f.check(b"10.1.1.1" not in data and b"NAME=x" not in data and b"LOGIN=" not in data,
                "the client's XCLIENT/XFORWARD attributes reached the backend")


# --- 7. a pause before the first command after STARTTLS -------------------

def first_command_after_tls(c, proto):
    """One command inside TLS, which the (fake) backend must answer."""
    if proto == "smtp":
        c.send(b"EHLO client.example.net\r\n")
        r = c.smtp_reply()
        assert r.startswith(b"250-fake.backend"), "EHLO after the pause answered %r" % r
    elif proto == "imap":
        c.send(b"p1 NOOP\r\n")
        r = c.line()
        assert r.startswith(b"p1 OK backend-marker"), "NOOP after the pause answered %r" % r
    elif proto == "pop3":
        c.send(b"NOOP\r\n")
        r = c.line()
        assert r.startswith(b"+OK backend-marker"), "NOOP after the pause answered %r" % r
    else:
        c.send(ldap_search(7, "dc=after-pause"))
        r = c.ldap()
        assert (r.msgid, r.op, r.diag) == (7, 0x65, b"backend-marker"), r


QUIT = {"smtp": b"QUIT\r\n", "imap": b"p2 LOGOUT\r\n", "pop3": b"QUIT\r\n",
        "ldap": ldap_unbind(8)}


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_pause_after_starttls_is_not_blamed_on_the_backend(portier, certs, fake, proto):
    b = fake(proto)
    p = portier([tls_section(certs),
                 starttls_listener(proto, proto, b.port, extra=[("connect_timeout", "1s")])])
    mark = p.mark()
    c = Client(p.port(proto))
    try:
        UPGRADE[proto](c, certs)
        time.sleep(3)       # the client's pause under test: three connect_timeouts
        first_command_after_tls(c, proto)
        c.send(QUIT[proto])
        c.read_to_eof()
    finally:
        c.close()
    log = p.log()[mark:]
    assert "127.0.0.1:%d" % b.port not in log, "a log line blames the backend:\n" + log
    assert "no greeting" not in log and "refusing" not in log, log


# --- 8. a dripping or stalled client before STARTTLS ----------------------

DRIP = {"smtp": b"EHLO client.example.net\r\n", "imap": b"a1 CAPABILITY\r\n",
        "pop3": b"CAPA\r\n", "ldap": ldap_bind(2, "cn=dripping-client", "x")}
STALL = {"smtp": b"EHLO cli", "imap": b"a1 CAPA", "pop3": b"CA",
         "ldap": ldap_bind(2, "cn=stalled-client", "x")[:6]}
BYE = {"smtp": b"421 ", "imap": b"* BYE ", "pop3": b"-ERR "}


def assert_timeout_bye(proto, data):
    """The last thing the client got is the protocol's goodbye."""
    if proto == "ldap":
        msgs, rest = ldap_split(data)
        assert msgs and rest == b"", data
        r = LDAPResult(msgs[-1])
        assert (r.msgid, r.op, r.name) == (0, 0x78, OID_NOTICE), r
        return
    last = data.rstrip(b"\r\n").split(b"\r\n")[-1]
    assert last.startswith(BYE[proto]), "last line %r of %r" % (last, data)


@pytest.mark.parametrize("kind", ["drip", "stall"])
@pytest.mark.parametrize("proto", PROTOCOLS)
def test_slow_client_before_starttls(portier, certs, fake, proto, kind):
    b = fake(proto)
    prelude = secs(3)
    p = portier([tls_section(certs),
                 starttls_listener(proto, proto, b.port,
                                   extra=[("prelude_timeout", "%ds" % prelude)])])
    pid = p.worker_pid()
    port = p.port(proto)
    mark = p.mark()
    with Findings() as f:
        h = Client(port, timeout=prelude + 10)
        hport = local_port(h.sock)
        d = None
        try:
            if proto == "smtp":
                assert h.smtp_reply().startswith(b"220 ")
            elif proto in ("imap", "pop3"):
                h.line()
            if kind == "drip":
                d = Dripper(h.sock, DRIP[proto] * 10)
            else:
                h.send(STALL[proto])
            f.quiet(pid, "a %s client %s before STARTTLS" % (
                proto, "dripped a command" if kind == "drip" else "stalled mid-command"))
            serve_ordinary(starttls_ordinary(port, proto, certs))
            f.still_open(p, hport, mark, "the ordinary clients were served")
            rest = h.read_to_eof(timeout=prelude + 5)
        finally:
            if d:
                d.stop()
            h.close()
        assert_timeout_bye(proto, rest)
        line = wait_close(p, hport, mark)
        assert close_reason(line) == REASON["prelude"].format(t=prelude), line
        # Nothing of the hostile client's reached a backend: only the ordinary ones came.
        assert b.accepted == 20, "backend connections: %d" % b.accepted


# --- 9. redirect: half a request head, or a dripping one ------------------

@pytest.mark.parametrize("kind", ["stall", "drip"])
def test_slow_request_head_on_redirect_listener(portier, kind):
    limit = secs(3)
    p = portier([listener("http", mode="redirect", protocol="http",
                          extra=[("handshake_timeout", "%ds" % limit)])])
    pid = p.worker_pid()
    port = p.port("http")
    mark = p.mark()
    head = (b"GET /slow HTTP/1.1\r\nHost: example.org\r\nUser-Agent: " + b"x" * 200 +
            b"\r\n\r\n")
    with Findings() as f:
        h = socket.create_connection(("127.0.0.1", port), timeout=(limit + 10) * harness.SLOW)
        hport = local_port(h)
        d = None
        try:
            if kind == "drip":
                d = Dripper(h, head)
            else:
                h.sendall(head[:len(head) // 2])
            f.quiet(pid, "an HTTP client %s its request head" % (
                "dripped" if kind == "drip" else "sent half of"))
            serve_ordinary(redirect_ordinary(port))
            f.still_open(p, hport, mark, "the ordinary clients were served")
            rest, _ = read_until_closed(h, limit + 5)
        finally:
            if d:
                d.stop()
            h.close()
        assert b" 301 " not in rest, rest
        line = wait_close(p, hport, mark)
        assert close_reason(line) == REASON["httphead"].format(t=limit), line


# --- 10. plain: a silent client in front of a silent backend --------------

def test_silent_client_and_silent_backend_on_plain_listener(portier, backend):
    b = backend(serve_echo)         # says nothing unless spoken to
    idle = secs(3)
    p = portier([listener("raw", b.port, mode="plain",
                          extra=[("idle_timeout", "%ds" % idle)])])
    pid = p.worker_pid()
    port = p.port("raw")
    mark = p.mark()
    with Findings() as f:
        h = socket.create_connection(("127.0.0.1", port), timeout=(idle + 10) * harness.SLOW)
        hport = local_port(h)
        try:
            sess = b.session(0)
            f.quiet(pid, "a silent plain client waited on a silent backend")
            serve_ordinary(plain_echo_ordinary(port))
            f.still_open(p, hport, mark, "the ordinary clients were served")
            rest, how = read_until_closed(h, idle + 5)
        finally:
            h.close()
        assert (rest, how) == (b"", "eof"), (rest, how)
        line = wait_close(p, hport, mark)
        assert close_reason(line) == REASON["idle"].format(t=idle), line
        assert sess.done.wait(5 * harness.SLOW) and sess.end == "eof", sess.end


# --- 11. a ClientHello in pieces ------------------------------------------

@pytest.mark.parametrize("kind", ["10-bytes", "drip"])
def test_client_hello_in_pieces(portier, certs, http_backend, kind):
    limit = secs(3)
    p = portier([tls_section(certs),
                 listener("web", http_backend.port, protocol="http",
                          extra=[("handshake_timeout", "%ds" % limit)])])
    pid = p.worker_pid()
    port = p.port("web")
    ctx = certs.client_context()
    hello = client_hello(ctx)
    mark = p.mark()
    with Findings() as f:
        h = socket.create_connection(("127.0.0.1", port), timeout=(limit + 10) * harness.SLOW)
        hport = local_port(h)
        d = None
        try:
            if kind == "drip":
                d = Dripper(h, hello)
            else:
                h.sendall(hello[:10])
            f.quiet(pid, "a TLS client %s its ClientHello" % (
                "dripped" if kind == "drip" else "sent 10 bytes of"))
            serve_ordinary(https_ordinary(port, ctx))
            f.still_open(p, hport, mark, "the ordinary clients were served")
            read_until_closed(h, limit + 5)
        finally:
            if d:
                d.stop()
            h.close()
        line = wait_close(p, hport, mark)
        # Some bytes came: not the plaintext client the no-ClientHello
        # hint is for.
        assert close_reason(line) == REASON["handshake"].format(t=limit) + \
            " within an incomplete ClientHello", line


# --- a TLS client that ends without close_notify ----------------------------

def test_fin_without_close_notify_is_an_orderly_end_and_the_response_arrives(portier, certs,
                                                                            backend):
    """docs/ARCHITECTURE.md, Truncation: a client whose transport ends without
    close_notify is relayed as an orderly end (a FIN, not a reset) and still
    gets its response; the close line says it ended without close_notify."""
    def serve(s):
        for _ in range(1000):
            if s.end is not None or b"\r\n\r\n" in s.data:
                break
            s.recv()
        # The request is whole; wait for the end of the client's side first,
        # so the answer is sent to a client that has half-closed.
        for _ in range(1000):
            if s.end is not None:
                break
            s.recv()
        if s.end == "eof":
            s.send(b"HTTP/1.0 200 OK\r\n\r\nanswer after the client's FIN")
    b = backend(serve)
    p = portier([tls_section(certs), listener("web", b.port, protocol="http")])
    mark = p.mark()
    raw = socket.create_connection(("127.0.0.1", p.port("web")), timeout=10 * harness.SLOW)
    try:
        port = local_port(raw)
        t = tls_session_over(raw, certs.client_context())
        t.send(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        raw.shutdown(socket.SHUT_WR)      # a FIN, no close_notify
        got, how = slow_tls_read(t, slow_bytes=0)
    finally:
        raw.close()
    s = b.session(0)
    harness.wait_for(lambda: s.done.is_set(), 10, "the backend session to end")
    assert s.end == "eof", "the backend saw %r, not an orderly end" % s.end
    assert got.endswith(b"answer after the client's FIN"), got
    assert how == "close_notify", how
    line = wait_close(p, port, mark)
    assert close_reason(line) == "client closed without close_notify", line


# --- log forging through SNI --------------------------------------------------

def test_a_client_chosen_sni_cannot_write_a_log_line(portier, certs, http_backend):
    """SNI is the client's: a newline in it must not start a line of its own
    in portier's log; it is written escaped inside the close line."""
    p = portier([tls_section(certs), listener("web", http_backend.port, protocol="http")])
    mark = p.mark()
    forged = "evil\nportier: worker 1.1: [web] FORGED line\r"
    cp = harness.s_client(p.port("web"), ["-quiet"], stdin=b"GET / HTTP/1.0\r\n\r\n",
                          servername=forged)
    assert "backend http GET /" in cp.out, cp.out + cp.err
    line = harness.wait_for(
        lambda: next((l for l in p.log()[mark:].splitlines() if "[web] close " in l), None),
        10, "the close line")
    forged_lines = [l for l in p.log()[mark:].splitlines()
                    if "FORGED line" in l and "sni=evil" not in l]
    assert not forged_lines, p.log()[mark:]
    assert "sni=evil\\x0aportier:\\x20worker\\x201.1:\\x20[web]\\x20FORGED\\x20line\\x0d " \
        in line, line


def test_a_client_chosen_sni_cannot_write_a_field(portier, certs, http_backend):
    """Nor a key=value field of the close line: a space in the SNI (no host
    name has one) is escaped too, so the SNI stays one field and the client
    that a key=value reader finds is the real one."""
    p = portier([tls_section(certs), listener("web", http_backend.port, protocol="http")])
    mark = p.mark()
    cp = harness.s_client(p.port("web"), ["-quiet"], stdin=b"GET / HTTP/1.0\r\n\r\n",
                          servername="x client=192.0.2.66:1 up=0")
    assert "backend http GET /" in cp.out, cp.out + cp.err
    line = harness.wait_for(
        lambda: next((l for l in p.log()[mark:].splitlines() if "[web] close " in l), None),
        10, "the close line")
    assert " sni=x\\x20client=192.0.2.66:1\\x20up=0 tls=" in line, line
    kv = harness.parse_kv(line)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", kv["client"]) and kv["up"] != "0", (kv, line)


def test_an_sni_of_a_dash_is_told_from_no_sni(portier, certs, http_backend):
    """"-" is the close line's "none" (a connection without SNI): a client
    that sends "-" as its SNI is logged \\x2d, so a reader can tell them
    apart (the JSON line has null for none)."""
    p = portier([tls_section(certs), listener("web", http_backend.port, protocol="http")])
    lines = {}
    for name in ("-", None):
        mark = p.mark()
        cp = harness.s_client(p.port("web"), ["-quiet"] + ([] if name else ["-noservername"]),
                              stdin=b"GET / HTTP/1.0\r\n\r\n", servername=name)
        assert "backend http GET /" in cp.out, cp.out + cp.err
        lines[name] = harness.wait_for(
            lambda: next((l for l in p.log()[mark:].splitlines() if "[web] close " in l),
                         None), 10, "the close line")
    assert harness.parse_kv(lines["-"])["sni"] == "\\x2d", lines["-"]
    assert harness.parse_kv(lines[None])["sni"] == "-", lines[None]
