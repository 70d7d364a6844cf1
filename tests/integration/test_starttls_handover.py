"""The STARTTLS hand-over when a backend or a client misbehaves at its edges.

After the client's TLS handshake portier connects the backend and consumes
its greeting (and, with xclient = yes, its own EHLO and XCLIENT exchange)
before any byte is relayed. A backend that resets instead of greeting, that
resets in the middle of that exchange, or that greets with a line that is
no greeting of its protocol is a backend that is down for the client: it
gets the protocol's refusal inside TLS (docs/starttls.md, "The hand-over"),
the log names what portier was waiting for, and the refusal is counted. LDAP
has no greeting, so its hand-over waits for nothing, and a backend that
resets right after the connect meets the relay instead: the client must
still get its Notice of Disconnection, as on an ldaps listener.

A client that resets right after STARTTLS (before its ClientHello, or in the
middle of it), one that closes in the middle of it, and a worker's SIGTERM
while a ClientHello is half there, are failed handshakes, counted by the
reasons docs/operations.md lists.

The backends are small fakes in threads (harness.RawBackend); a reset is
SO_LINGER 0, then close."""

import os
import signal
import socket
import ssl
import struct

import pytest

import harness
from harness import tls_items
from starttls_support import (HOSTNAME, OID_NOTICE, Client, LDAPResult, UPGRADE, ldap_search,
                              ldap_split, ldap_starttls, starttls_listener)
from test_metrics import samples, scrape, value

STATS = [("stats", "127.0.0.1:0"), ("workers", "1")]

REFUSAL = {
    "smtp": b"421 4.3.0 " + HOSTNAME.encode() + b" service not available\r\n",
    "imap": b"* BYE [UNAVAILABLE] Service not available\r\n",
    "pop3": b"-ERR [SYS/TEMP] Service not available\r\n",
}
GREETING = {"smtp": b"220 backend ESMTP\r\n", "imap": b"* OK backend ready\r\n",
            "pop3": b"+OK backend ready\r\n"}


# --------------------------------------------------------------------------
# Fake backends

def read_line(c, limit=1000):
    """One line from socket c, read a byte at a time so that nothing after
    it is taken; b"" if the peer ended first."""
    line = b""
    while not line.endswith(b"\n") and len(line) < limit:
        d = c.recv(1)
        if not d:
            break
        line += d
    return line


def reset(c):
    """Arm c so that its close (RawBackend closes it after the handler) is
    a reset: SO_LINGER on with a zero timeout."""
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def after_proxy_header(then):
    """A backend behind send_proxy = v1: reads portier's PROXY header, which
    portier sends as soon as the hand-over begins, then runs then(c). The
    header is what tells the fake that portier has reached the hand-over:
    a reset sent sooner could meet portier's check of the connect itself
    and be logged as a failed connect instead."""
    def handler(c):
        header = read_line(c)
        assert header.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 "), header
        return then(c)
    return handler


def resets_at_once(c):
    reset(c)
    return "reset"


def sends_then_resets(data):
    def then(c):
        c.sendall(data)
        reset(c)
        return "reset"
    return then


def greets_then_reads(greeting):
    """Greets with greeting, then reads what portier sends to its end."""
    def handler(c):
        c.sendall(greeting)
        return harness.read_to_eof(c)
    return handler


XC_EHLO_REPLY = b"250-backend\r\n250-XCLIENT NAME ADDR PORT PROTO HELO\r\n250 8BITMIME\r\n"


def xclient_backend_resetting(stage):
    """A Postfix-like XCLIENT backend that resets at stage of portier's
    exchange: after reading portier's EHLO ("ehlo"), after the first line
    of its EHLO reply ("ehlo-reply"), or after reading XCLIENT ("xclient").
    Returns the lines portier sent it."""
    def handler(c):
        seen = []
        c.sendall(b"220 backend ESMTP\r\n")
        seen.append(read_line(c))
        if stage == "ehlo-reply":
            c.sendall(XC_EHLO_REPLY.split(b"\r\n")[0] + b"\r\n")
        elif stage == "xclient":
            c.sendall(XC_EHLO_REPLY)
            seen.append(read_line(c))
        reset(c)
        return seen
    return handler


# --------------------------------------------------------------------------
# What the client, the log and the counters say

def upgraded_client(p, proto, certs):
    c = Client(p.port(proto))
    UPGRADE[proto](c, certs)
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3"), c.sock.version()
    return c


def refused(p, proto, certs):
    """A client's STARTTLS; after its handshake it says nothing and reads
    to the end. Returns (what it got, its port)."""
    c = upgraded_client(p, proto, certs)
    try:
        me = c.sock.getsockname()[1]
        got = c.read_to_eof()
    finally:
        c.close()
    return got, me


def refusal_logged(p, proto, me):
    """The refusal's warning (its reason) and the close line's reason."""
    why = p.wait_log(r"warning: \[%s\] client=127\.0\.0\.1:%d: (.*); refusing in %s$"
                     % (proto, me, proto)).group(1)
    close = p.wait_log(r"\[%s\] close client=127\.0\.0\.1:%d .*tls=TLSv1\.[23] .*: ([^:]*)$"
                       % (proto, me)).group(1)
    return why, close


def counters(p, listener, reason, n=1):
    """The metrics once n connections of listener closed for reason."""
    def closed():
        text = scrape(p.port("[stats]"))
        return value(text, "portier_connections_closed_total", listener=listener,
                     reason=reason) == n and text
    return harness.wait_for(closed, 5, "%d close(s) counted as %s" % (n, reason))


def family_total(text, name, listener):
    return sum(v for (n, labels), v in samples(text).items()
               if n == name and ("listener", listener) in labels)


def assert_refusal_counted(p, proto, greeting_failure=True):
    """One refusal, one close as backend_down; a greeting failure counts as
    a backend that could not be used, of kind greeting and no other."""
    text = counters(p, proto, "backend_down")
    assert value(text, "portier_refusals_total", listener=proto) == 1
    assert family_total(text, "portier_connections_closed_total", proto) == 1
    if greeting_failure:
        assert value(text, "portier_backend_connect_failures_total", listener=proto,
                     kind="greeting") == 1
        assert family_total(text, "portier_backend_connect_failures_total", proto) == 1
    # The client's handshake succeeded: no failure is counted for it.
    assert family_total(text, "portier_handshake_failures_total", proto) == 0


def start(portier, certs, proto, backend_port, extra=()):
    return portier([("tls", tls_items(certs.ec)),
                    starttls_listener(proto, proto, backend_port, extra=extra)], glob=STATS)


# --------------------------------------------------------------------------
# 1. The hand-over

@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_backend_reset_instead_of_its_greeting_is_refused(portier, certs, raw_backend, proto):
    """The backend accepts and resets without a byte: the client reads the
    protocol's refusal over TLS and then the end; the log says the backend
    reset before its greeting."""
    b = raw_backend(after_proxy_header(resets_at_once))
    p = start(portier, certs, proto, b.port, extra=[("send_proxy", "v1")])
    got, me = refused(p, proto, certs)
    assert got == REFUSAL[proto], got
    assert b.wait_result() == "reset"
    why, close = refusal_logged(p, proto, me)
    assert why == "backend reset before its greeting", why
    assert close == "backend unavailable, refused in protocol", close
    assert_refusal_counted(p, proto)


@pytest.mark.parametrize("proto,part", [
    ("smtp", b"220-backend ESMTP\r\n220-more"),
    ("imap", b"* OK backend"),
    ("pop3", b"+OK backend"),
])
def test_backend_reset_in_the_middle_of_its_greeting_is_refused(portier, certs, raw_backend,
                                                                proto, part):
    """Part of a greeting (an SMTP multi-line one: a whole line and a part),
    then a reset: the refusal, and a log that says it was during the
    greeting; nothing of the greeting reaches the client."""
    b = raw_backend(after_proxy_header(sends_then_resets(part)))
    p = start(portier, certs, proto, b.port, extra=[("send_proxy", "v1")])
    got, me = refused(p, proto, certs)
    assert got == REFUSAL[proto], got
    assert b.wait_result() == "reset"
    why, close = refusal_logged(p, proto, me)
    assert why == "backend reset during its greeting", why
    assert close == "backend unavailable, refused in protocol", close
    assert_refusal_counted(p, proto)


@pytest.mark.parametrize("stage,seen,logged", [
    ("ehlo", 1, "backend reset before its reply to portier's EHLO (for XCLIENT)"),
    ("ehlo-reply", 1, "backend reset during its reply to portier's EHLO (for XCLIENT)"),
    ("xclient", 2, "backend reset before its reply to XCLIENT"),
])
def test_backend_reset_during_portiers_xclient_exchange_is_refused(portier, certs, raw_backend,
                                                                   stage, seen, logged):
    """xclient = yes: after the backend's greeting portier sends its own
    EHLO, then XCLIENT, and consumes the replies. A backend that resets in
    that exchange gets the client a 421, and the log names the reply that
    was awaited, as for a backend that closes there (test_xclient.py),
    not the greeting, which had come whole."""
    b = raw_backend(xclient_backend_resetting(stage))
    p = start(portier, certs, "smtp", b.port, extra=[("xclient", "yes")])
    got, me = refused(p, "smtp", certs)
    assert got == REFUSAL["smtp"], got
    lines = b.wait_result()
    assert len(lines) == seen, lines
    assert lines[0] == b"EHLO %s\r\n" % HOSTNAME.encode(), lines
    if seen == 2:
        assert lines[1].startswith(b"XCLIENT ADDR=127.0.0.1 PORT="), lines
    why, close = refusal_logged(p, "smtp", me)
    assert why == logged, why
    assert close == "backend unavailable, refused in protocol", close
    assert_refusal_counted(p, "smtp")


@pytest.mark.parametrize("proto,greeting,logged", [
    ("imap", b"* HELLO backend ready\r\n", "malformed backend greeting"),
    ("smtp", b"220x backend ESMTP\r\n", "malformed or oversized backend greeting"),
    ("pop3", b"+OKAY backend ready\r\n", "malformed backend greeting"),
], ids=["imap-HELLO", "smtp-220x", "pop3-OKAY"])
def test_a_greeting_of_no_known_kind_is_refused(portier, certs, raw_backend, proto, greeting,
                                                logged):
    """A greeting that is neither positive nor negative (IMAP `* HELLO`:
    not OK, PREAUTH nor BYE; SMTP `220x`: neither `220 ` nor `220-`; POP3
    `+OKAY`) is no greeting: the client gets the refusal, never the line,
    and the backend gets nothing from portier but its close."""
    b = raw_backend(greets_then_reads(greeting))
    p = start(portier, certs, proto, b.port)
    got, me = refused(p, proto, certs)
    assert got == REFUSAL[proto], got
    assert b.wait_result() == b""
    why, close = refusal_logged(p, proto, me)
    assert why == logged, why
    assert close == "backend unavailable, refused in protocol", close
    assert_refusal_counted(p, proto)


def ldap_notice(data):
    """The Notice of Disconnection (RFC 4511 4.4.1) of an unavailable
    backend, whole and alone in data."""
    msgs, rest = ldap_split(data)
    assert len(msgs) == 1 and rest == b"", data
    r = LDAPResult(msgs[0])
    assert (r.msgid, r.op, r.code, r.name, r.diag) == (
        0, 0x78, 52, OID_NOTICE, b"service not available"), r


@pytest.mark.parametrize("end", ["reset", "fin"])
def test_ldap_backend_that_ends_before_a_byte_is_refused(portier, certs, raw_backend, end):
    """LDAP has no greeting: the hand-over has nothing to wait for and the
    relay starts at once. A backend that then ends (a reset, or a FIN)
    before its first byte may only have closed a connection the client had
    not used yet: portier keeps the client and connects again at its first
    request (test_redial.py). When that connection ends the same way, the
    backend is down for the client: its request gets the Notice of
    Disconnection (unavailable) that an ldaps listener gives in that case,
    not a TLS session that ends in silence."""
    seen = []

    def then(c):
        seen.append(c)
        if len(seen) > 1:
            # The request first, so that ending after it is a FIN still
            # (unread bytes would make the close a reset).
            data = b""
            while not ldap_split(data)[0]:
                more = c.recv(4096)
                assert more, data
                data += more
        if end == "reset":
            reset(c)
        return end
    b = raw_backend(after_proxy_header(then))
    p = start(portier, certs, "ldap", b.port, extra=[("send_proxy", "v1")])
    mark = p.mark()
    c = upgraded_client(p, "ldap", certs)
    try:
        me = c.sock.getsockname()[1]
        p.wait_log(r"\[ldap\] client=127\.0\.0\.1:%d: backend %s the connection before "
                   r"sending a byte, and the client has sent none yet" % (
                       me, "reset" if end == "reset" else "closed"), since=mark)
        c.send(ldap_search(2, "dc=example,dc=org"))
        got = c.read_to_eof()
    finally:
        c.close()
    ldap_notice(got)
    assert b.wait_result() == end
    assert b.wait_result() == end   # the second connection, for the request
    why, close = refusal_logged(p, "ldap", me)
    assert why == "backend %s the connection before sending a byte" % (
        "reset" if end == "reset" else "closed"), why
    assert close == "backend unavailable, refused in protocol", close
    assert_refusal_counted(p, "ldap", greeting_failure=False)


# --------------------------------------------------------------------------
# 2. The client's end of the upgrade

def client_hello(certs):
    """A real ClientHello record, as the test client would send it."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = certs.client_context().wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:16]
    return hello


def go_ahead(proto, certs, p):
    """A plaintext client that said STARTTLS and read portier's go-ahead."""
    c = Client(p.port(proto))
    if proto == "smtp":
        c.smtp_reply()
        c.send(b"EHLO client.example.net\r\n")
        c.smtp_reply()
        c.send(b"STARTTLS\r\n")
        assert c.smtp_reply().startswith(b"220 2.0.0 "), c.buf
    else:
        c.send(ldap_starttls(1))
        r = c.ldap()
        assert (r.op, r.code) == (0x78, 0), r
    return c


def rst(c):
    reset(c.sock)
    c.close()


def rx_queue(local_port, remote_port):
    """Bytes waiting unread in portier's socket of the connection from
    127.0.0.1:remote_port to 127.0.0.1:local_port (/proc/net/tcp), or None
    when there is no such socket."""
    want = ("0100007F:%04X" % local_port, "0100007F:%04X" % remote_port)
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) == want:
                return int(fields[4].split(":")[1], 16)
    return None


def failures_counted(p, proto, hs_reason, close_reason):
    """One close, for close_reason, counted as one failed handshake for
    hs_reason and nothing else; no backend was tried."""
    text = counters(p, proto, close_reason)
    assert value(text, "portier_handshake_failures_total", listener=proto,
                 reason=hs_reason) == 1
    assert family_total(text, "portier_handshake_failures_total", proto) == 1
    assert family_total(text, "portier_connections_closed_total", proto) == 1
    assert family_total(text, "portier_handshakes_total", proto) == 0
    assert family_total(text, "portier_backend_connect_failures_total", proto) == 0
    assert value(text, "portier_refusals_total", listener=proto) == 0


@pytest.mark.parametrize("proto", ["smtp", "ldap"])
def test_client_reset_after_the_go_ahead_is_a_failed_handshake(portier, certs, closed_port,
                                                               proto):
    """The client reads portier's go-ahead and resets instead of sending
    its ClientHello: closed as client_reset ("client reset after
    STARTTLS"), a handshake failure counted as client_reset, and the
    backend is never dialled."""
    p = start(portier, certs, proto, closed_port)
    c = go_ahead(proto, certs, p)
    me = c.sock.getsockname()[1]
    rst(c)
    why = p.wait_log(r"\[%s\] close client=127\.0\.0\.1:%d sni=- tls=- cipher=- resumed=- "
                     r"up=0 down=\d+ time=\S+: (.*)$" % (proto, me)).group(1)
    assert why == "client reset after STARTTLS", why
    failures_counted(p, proto, "client_reset", "client_reset")


@pytest.mark.parametrize("end,logged,counted", [
    ("reset", "Connection reset by peer", "client_reset"),
    ("fin", "client closed during the handshake within an incomplete ClientHello",
     "client_closed")], ids=["reset", "fin"])
@pytest.mark.parametrize("proto", ["smtp", "ldap"])
def test_client_ends_in_the_middle_of_its_client_hello(portier, certs, closed_port, proto,
                                                       end, logged, counted):
    """Half a ClientHello after the go-ahead, then a reset or a FIN: the
    handshake failed because the client ended it (its log line says how,
    and that part of a ClientHello had come: not a timeout, not a
    malformed hello, not a client that sent nothing), counted as
    client_reset or client_closed; no backend."""
    p = start(portier, certs, proto, closed_port)
    hello = client_hello(certs)
    c = go_ahead(proto, certs, p)
    me = c.sock.getsockname()[1]
    c.send(hello[:len(hello) // 2])
    if end == "reset":
        rst(c)
    else:
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_to_eof() == b""
        c.close()
    why = p.wait_log(r"\[%s\] handshake failed client=127\.0\.0\.1:%d: (.*)$"
                     % (proto, me)).group(1)
    assert why == logged, why
    failures_counted(p, proto, counted, "handshake_failed")


def test_sigterm_during_a_client_hello_is_a_shutdown(portier, certs, closed_port):
    """A worker stops (SIGTERM) while a client's ClientHello is half there:
    the connection ends with the stop's reason, as a failed handshake
    counted as shutdown (the counters outlive the worker: the master
    starts another, which answers the scrape), and the client sees the
    end of its connection, nothing else."""
    p = start(portier, certs, "imap", closed_port)
    worker = p.worker_pid(1)
    hello = client_hello(certs)
    c = Client(p.port("imap"))
    try:
        c.line()
        c.send(b"a1 STARTTLS\r\n")
        assert c.line().startswith(b"a1 OK"), c.buf
        me = c.sock.getsockname()[1]
        c.send(hello[:len(hello) // 2])
        # UPGRADING only peeks at the first bytes; the handshake reads
        # them: once none wait in portier's socket, it is in the handshake.
        harness.wait_for(lambda: rx_queue(p.port("imap"), me) == 0, 5,
                         "portier to read the partial ClientHello")
        mark = p.mark()
        os.kill(worker, signal.SIGTERM)
        assert c.read_to_eof() == b""
    finally:
        c.close()
    why = p.wait_log(r"\[imap\] handshake failed client=127\.0\.0\.1:%d: (.*)$" % me,
                     since=mark).group(1)
    assert why == "portier shutting down", why
    p.wait_log(r"worker 1 \(pid %d\) exited with status 0 .*; starting another" % worker,
               since=mark)
    failures_counted(p, "imap", "shutdown", "shutdown")
