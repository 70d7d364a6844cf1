"""accept_proxy = yes: a load balancer's PROXY header (v1 or v2) opens every
connection, and the client it names is the client from then on: the close
line, XCLIENT and the header send_proxy writes to the backend say so.

The clients here are the balancer: they send the header and the client's
first bytes (a ClientHello, an SMTP command, plain bytes) in one send, so a
portier that read past the header would lose them. Connections come from
127.0.0.1 (allowed) or 127.0.0.2 (not)."""

import re
import socket
import ssl
import struct

import pytest

import harness
from harness import listener
from starttls_support import Client, starttls_listener
from test_redirect import closed_count
from test_send_proxy import (ALPN, SNI, V2_SIG, echo_handler, smtp_backend_wanting_proxy_first,
                             tls_ctx)

ALLOWED = "127.0.0.1"
NOT_ALLOWED = "127.0.0.2"


def v1(src, dst):
    fam = "TCP6" if ":" in src[0] else "TCP4"
    return b"PROXY %s %s %s %d %d\r\n" % (fam.encode(), src[0].encode(), dst[0].encode(),
                                          src[1], dst[1])


def v2(src, dst, tlvs=b""):
    fam = socket.AF_INET6 if ":" in src[0] else socket.AF_INET
    block = (socket.inet_pton(fam, src[0]) + socket.inet_pton(fam, dst[0]) +
             struct.pack("!HH", src[1], dst[1]) + tlvs)
    return V2_SIG + bytes([0x21, 0x21 if fam == socket.AF_INET6 else 0x11]) + \
        struct.pack("!H", len(block)) + block


V2_LOCAL = V2_SIG + b"\x20\x00\x00\x00"
# A TLV of each kind HAProxy may send: portier skips them.
TLVS = b"\x01\x00\x02h2" + b"\x05\x00\x04abcd" + b"\x04\x00\x00"


def balancer(port, src=ALLOWED, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout * harness.SLOW)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def tls_through(port, header, ctx, payload):
    """Header and ClientHello in one send, then TLS: payload, close_notify,
    everything back. Returns (balancer's own address, bytes back)."""
    s = balancer(port)
    t = harness.TLSConn(s, ctx, server_hostname=SNI)
    try:
        try:
            t.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        s.sendall(header + t.outgoing.read())
        t.do_handshake()
        t.send(payload)
        t.close_notify()
        back = t.recv_all()
        return s.getsockname()[:2], back
    finally:
        t.close()


def section(name, bport, mode="tls", protocol="tcp", extra=(), timeout="700ms"):
    items = [("accept_proxy", "yes"), ("accept_proxy_from", "192.0.2.0/24 ::1 " + ALLOWED),
             ("accept_proxy_timeout", timeout)] + list(extra)
    if mode == "starttls":
        return starttls_listener(name, protocol, bport, extra=items)
    return listener(name, bport, mode=mode, protocol=protocol, extra=items)


def tls_section(name, bport):
    return section(name, bport, extra=[("alpn", ALPN), ("send_proxy", "v2")])


@pytest.mark.parametrize("make", [v1, v2, lambda s, d: v2(s, d, TLVS)],
                         ids=["v1", "v2", "v2-tlvs"])
def test_tls_listener_takes_the_client_from_the_header(portier, certs, raw_backend, make):
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)), tls_section("imps", b.port)])
    client, vip = ("203.0.113.7", 40001), ("198.51.100.1", 993)
    me, back = tls_through(p.port("imps"), make(client, vip), tls_ctx(certs), b"hello\n")
    h = b.wait_result()
    assert back == b"hello\n" and h["data"] == b"hello\n", h
    assert h["fam"] == 0x11 and h["src"] == client and h["dst"] == vip, h
    assert h["authority"] == SNI and h["alpn"] == ALPN
    line = p.wait_log(r"close client=203\.0\.113\.7:40001 sni=%s .*" % SNI).group(0)
    assert "resumed=no" in line, line
    assert "%s:%d" % me not in p.log()


def test_ipv6_client_in_a_v1_header(portier, certs, raw_backend):
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)), tls_section("imps", b.port)])
    client, vip = ("2001:db8::5", 51000), ("2001:db8::1", 443)
    _, back = tls_through(p.port("imps"), v1(client, vip), tls_ctx(certs), b"six")
    h = b.wait_result()
    assert back == b"six"
    assert h["fam"] == 0x21 and h["src"] == client and h["dst"] == vip, h
    p.wait_log(r"close client=\[2001:db8::5\]:51000 ")


def test_ipv6_client_in_a_v2_header(portier, certs, raw_backend):
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)), tls_section("imps", b.port)])
    client, vip = ("2001:db8::9", 2), ("2001:db8::1", 993)
    _, back = tls_through(p.port("imps"), v2(client, vip), tls_ctx(certs), b"v6")
    h = b.wait_result()
    assert back == b"v6" and h["fam"] == 0x21 and h["src"] == client and h["dst"] == vip, h


@pytest.mark.parametrize("header", [V2_LOCAL, V2_SIG + b"\x21\x00\x00\x00",
                                    b"PROXY UNKNOWN\r\n"], ids=["local", "unspec", "unknown"])
def test_header_naming_nobody_keeps_the_balancers_address(portier, certs, raw_backend, header):
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)), tls_section("imps", b.port)])
    lhost, lport = p.ports["imps"][0]
    me, back = tls_through(lport, header, tls_ctx(certs), b"check")
    h = b.wait_result()
    assert back == b"check"
    assert h["src"] == tuple(me) and h["dst"] == (lhost, lport), h
    p.wait_log(r"close client=127\.0\.0\.1:%d " % me[1])


def test_plain_listener_relays_exactly_the_bytes_after_the_header(portier, raw_backend):
    b = raw_backend(echo_handler)
    p = portier([section("tcp", b.port, mode="plain", extra=[("send_proxy", "v1")])])
    client, vip = ("192.0.2.44", 1234), ("192.0.2.1", 80)
    payload = b"PROXY TCP4 6.6.6.6 6.6.6.6 1 1\r\n" + b"x" * 5000
    s = balancer(p.port("tcp"))
    with s:
        s.sendall(v2(client, vip) + payload)
        s.shutdown(socket.SHUT_WR)
        back = harness.read_to_eof(s)
    h = b.wait_result()
    # A second header is the client's data, relayed, not read.
    assert back == payload and h["data"] == payload
    assert h["line"] == b"PROXY TCP4 192.0.2.44 192.0.2.1 1234 80\r\n", h


def test_header_sent_a_byte_at_a_time(portier, raw_backend):
    b = raw_backend(echo_handler)
    p = portier([section("tcp", b.port, mode="plain", extra=[("send_proxy", "v2")],
                         timeout="5s")])
    client, vip = ("192.0.2.45", 999), ("192.0.2.1", 80)
    s = balancer(p.port("tcp"))
    with s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in v2(client, vip, TLVS):
            s.sendall(bytes([byte]))
        s.sendall(b"after")
        s.shutdown(socket.SHUT_WR)
        back = harness.read_to_eof(s)
    h = b.wait_result()
    assert back == b"after" and h["src"] == client and h["dst"] == vip, h


def test_starttls_smtp_proxy_header_names_the_client_to_the_backend(portier, certs,
                                                                   raw_backend):
    b = raw_backend(smtp_backend_wanting_proxy_first)
    p = portier([("tls", harness.tls_items(certs.ec)),
                 section("sub", b.port, mode="starttls", protocol="smtp",
                         extra=[("send_proxy", "v2")])])
    client, vip = ("192.0.2.77", 55555), ("192.0.2.1", 587)
    c = Client.__new__(Client)
    c.sock, c.buf, c.eof = balancer(p.port("sub")), b"", False
    try:
        # The header and the first command in one packet: EHLO is read by
        # the STARTTLS dialogue, after the header.
        c.send(v2(client, vip) + b"EHLO client.example.net\r\n")
        assert c.smtp_reply().startswith(b"220 ")
        assert c.smtp_reply().startswith(b"250")
        c.send(b"STARTTLS\r\n")
        assert c.smtp_reply().startswith(b"220 ")
        c.tls(certs, server_hostname=SNI, ctx=tls_ctx(certs, alpn="smtp"))
        c.send(b"EHLO client.example.net\r\n")
        assert c.smtp_reply().startswith(b"250")
        c.send(b"QUIT\r\n")
        assert c.smtp_reply().startswith(b"221")
    finally:
        c.close()
    h = b.wait_result()
    assert h["src"] == client and h["dst"] == vip, h
    assert h["authority"] == SNI
    p.wait_log(r"close client=192\.0\.2\.77:55555 sni=%s tls=TLSv1\.3" % SNI)


def smtp_backend_with_xclient(c):
    """Greets at once, offers XCLIENT; returns every command line."""
    c.settimeout(10 * harness.SLOW)
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
            c.sendall(b"250-backend\r\n250 XCLIENT NAME ADDR PORT PROTO HELO\r\n")
        elif cmd.startswith(b"XCLIENT"):
            c.sendall(b"220 backend ESMTP\r\n")
        elif cmd.startswith(b"QUIT"):
            c.sendall(b"221 bye\r\n")
            break
        else:
            c.sendall(b"250 ok\r\n")
    return {"seen": seen}


def test_xclient_names_the_client_from_the_header(portier, certs, raw_backend):
    b = raw_backend(smtp_backend_with_xclient)
    p = portier([("tls", harness.tls_items(certs.ec)),
                 section("sub", b.port, mode="starttls", protocol="smtp",
                         extra=[("xclient", "yes")])])
    c = Client.__new__(Client)
    c.sock, c.buf, c.eof = balancer(p.port("sub")), b"", False
    try:
        c.send(v1(("2001:db8::77", 4242), ("2001:db8::1", 587)))
        assert c.smtp_reply().startswith(b"220 ")
        c.send(b"EHLO client.example.net\r\n")
        assert c.smtp_reply().startswith(b"250")
        c.send(b"STARTTLS\r\n")
        assert c.smtp_reply().startswith(b"220 ")
        c.tls(certs, server_hostname=SNI, ctx=tls_ctx(certs, alpn="smtp"))
        c.send(b"EHLO client.example.net\r\n")
        assert c.smtp_reply().startswith(b"250")
        c.send(b"QUIT\r\n")
        assert c.smtp_reply().startswith(b"221")
    finally:
        c.close()
    seen = b.wait_result()["seen"]
    xc = [l for l in seen if l.upper().startswith(b"XCLIENT")]
    assert xc == [b"XCLIENT ADDR=IPV6:2001:db8::77 PORT=4242\r\n"], seen


def closed_without_backend(p, b, s, pattern):
    """s gets EOF (or a reset) with nothing; the log says pattern; the
    backend never saw a connection."""
    with s:
        try:
            got = harness.read_to_eof(s)
        except ConnectionResetError:
            got = b""
    assert got == b""
    line = p.wait_log(pattern).group(0)
    assert not b.results and not b.errors, (b.results, b.errors)
    return line


@pytest.mark.parametrize("bad, why", [
    (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "v1 header with a malformed address"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1 header ends in LF without CR"),
    (b"PROXY " + b"x" * 120, "v1 header longer than 107 bytes"),
    (V2_SIG + b"\x21\x11\x00\x07" + b"\x01" * 7, "v2 header too short for its IPv4 addresses"),
    (V2_SIG + b"\x21\x11\xff\xff", "v2 header longer than its cap"),
    (V2_SIG + b"\x21\x12\x00\x0c" + b"\x01" * 12, "v2 header of a family other than TCP"),
    (b"\x16\x03\x01\x00\x05hello", "not a PROXY header"),
    (b"EHLO x\r\n", "not a PROXY header"),
], ids=["v1-addr", "v1-lf", "v1-long", "v2-short", "v2-cap", "v2-udp", "tls-first",
        "smtp-first"])
def test_malformed_header_closes_before_the_backend(portier, certs, raw_backend, bad, why):
    b = raw_backend(echo_handler)
    p = portier([("tls", harness.tls_items(certs.ec)), tls_section("imps", b.port)])
    s = balancer(p.port("imps"))
    s.sendall(bad)
    line = closed_without_backend(p, b, s, r"close client=127\.0\.0\.1:\d+ .*: "
                                  r"bad PROXY header: (.*)")
    assert line.endswith("bad PROXY header: " + why), line
    assert "[imps] handshake" not in p.log()


@pytest.mark.parametrize("mode", ["tls", "starttls", "plain"])
def test_slow_header_times_out(portier, certs, raw_backend, mode):
    b = raw_backend(echo_handler)
    proto = "imap" if mode == "starttls" else "tcp"
    p = portier([("tls", harness.tls_items(certs.ec)),
                 section("l", b.port, mode=mode, protocol=proto)])
    s = balancer(p.port("l"))
    s.sendall(b"PROXY TCP4 192.0.2.1 ")
    # No greeting: an IMAP listener says nothing before the header.
    closed_without_backend(p, b, s, r"close client=127\.0\.0\.1:\d+ .*: "
                           r"no complete PROXY header within 700ms")


@pytest.mark.parametrize("mode", ["tls", "starttls", "plain"])
def test_connection_from_elsewhere_is_refused_once(portier, certs, raw_backend, mode):
    b = raw_backend(echo_handler)
    proto = "smtp" if mode == "starttls" else "tcp"
    p = portier([("tls", harness.tls_items(certs.ec)),
                 section("l", b.port, mode=mode, protocol=proto)])
    s = balancer(p.port("l"), src=NOT_ALLOWED)
    # Even a well-formed header is not read from there.
    s.sendall(v1(("192.0.2.9", 1), ("192.0.2.1", 2)))
    closed_without_backend(p, b, s, r"close client=127\.0\.0\.2:(\d+) .*: "
                           r"127\.0\.0\.2:\1 is not in accept_proxy_from")
    assert len([l for l in p.log().splitlines() if "127.0.0.2" in l]) == 1, p.log()
    assert "192.0.2.9" not in p.log()


@pytest.mark.parametrize("items, where, what", [
    ([("accept_proxy", "yes")], "accept_proxy_from", "missing; accept_proxy = yes needs"),
    ([("accept_proxy_from", "10.0.0.0/8")], "accept_proxy_from",
     "only used with accept_proxy = yes"),
    ([("accept_proxy", "yes"), ("accept_proxy_from", "10.0.0.1/8")], "accept_proxy_from",
     "'10.0.0.1/8' is not an address or ADDR/BITS"),
    ([("accept_proxy", "yes"), ("accept_proxy_from", "lb.example.org")], "accept_proxy_from",
     "'lb.example.org' is not an address or ADDR/BITS"),
    ([("accept_proxy", "yes"), ("accept_proxy_from", "::1"),
      ("accept_proxy_timeout", "2m")], "accept_proxy_timeout", "'2m' is out of range"),
    ([("accept_proxy", "maybe")], "accept_proxy", "'maybe' is not one of no, yes"),
])
def test_bad_accept_proxy_config_is_refused(workdir, items, where, what):
    text = harness.ini_text([listener("l", 8080, mode="plain", extra=items)])
    rc, out, path = harness.portier_check(workdir, text)
    assert rc == 1, out
    assert "[l] %s: %s" % (where, what) in out, out


def closed_before_the_header(portier, raw_backend, end, sent):
    """A balancer's connection that sends `sent` (none, or part of a PROXY
    header) and ends it with end ("fin": shutdown and read to the end, or
    "rst": close with SO_LINGER 0). Returns (close line, the portier, and
    after a FIN what the balancer read to its end: (bytes, error or None)).
    The backend never saw a connection."""
    b = raw_backend(echo_handler)
    p = portier([section("tcp", b.port, mode="plain", timeout="5s")],
                glob=[("stats", "127.0.0.1:0")])
    s = balancer(p.port("tcp"))
    me = s.getsockname()[1]
    got = None
    with s:
        if sent:
            s.sendall(sent)
        if end == "fin":
            s.shutdown(socket.SHUT_WR)
            got = harness.read_to_end(s)
        else:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    line = p.wait_log(r"\[tcp\] close client=127\.0\.0\.1:%d .*" % me).group(0)
    assert not b.results and not b.errors, (b.results, b.errors)
    return line, p, got


def test_health_check_without_a_byte_is_logged_as_closed_before_the_header(
        portier, raw_backend):
    """A load balancer's TCP health check connects and ends its side
    without a byte: it gets portier's FIN and nothing else, the close line
    says so (not a timeout, not a bad header), long before
    accept_proxy_timeout (5s here), counted as client_closed, and no backend
    is dialled."""
    line, p, got = closed_before_the_header(portier, raw_backend, "fin", b"")
    assert got == (b"", None), got
    assert re.search(r" up=0 down=0 time=[0-4]\.\d{3}s: client closed before a PROXY header$",
                     line), line
    closed_count(p, "client_closed", "tcp")


@pytest.mark.parametrize("end,reason,counted", [
    ("fin", "client closed within its PROXY header", "client_closed"),
    ("rst", "client reset before its PROXY header ended", "client_reset")],
    ids=["fin", "rst"])
@pytest.mark.parametrize("sent", [b"PROXY TCP4 192.0.2.1 ", V2_SIG + b"\x21\x11"],
                         ids=["v1", "v2"])
def test_partial_header_then_an_end_is_logged_as_such(portier, raw_backend, sent, end,
                                                      reason, counted):
    """Part of a PROXY header (v1 or v2), then the balancer's FIN or a reset
    (SO_LINGER 0): the close line says which, counted so; after a FIN
    nothing comes back but portier's FIN; no backend."""
    line, p, got = closed_before_the_header(portier, raw_backend, end, sent)
    if end == "fin":
        assert got == (b"", None), got
    assert re.search(r" up=0 down=0 time=[0-4]\.\d{3}s: %s$" % re.escape(reason), line), line
    closed_count(p, counted, "tcp")
