"""The attack suite of issue 10, for every STARTTLS protocol where it applies.

The backend is a recording fake (starttls_support.FakeBackend): it counts
the connections portier makes and keeps every byte portier sends it, so
"nothing pre-TLS reaches the backend" is checked on the backend's side, and
every reply it gives carries "backend-marker", so an answer can be traced to
the backend rather than to portier."""

import re
import socket
import ssl
import time

import pytest

import harness
from harness import listener, s_client, tls_items
from starttls_support import (HOSTNAME, OID_NOTICE, OID_STARTTLS, PROTOCOLS, Client,
                              FakeBackend, UPGRADE, ber_int, ldap_bind, ldap_msg,
                              ldap_search, ldap_simple, ldap_starttls, ldap_unbind,
                              starttls_listener, tlv)

INJECTED = b"evil-marker"


@pytest.fixture
def fake():
    made = []

    def make(protocol, greeting=None):
        b = FakeBackend(protocol, greeting)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


def start(portier, certs, protocol, backend_port, extra=(), mode="starttls"):
    if mode == "starttls":
        sec = starttls_listener(protocol, protocol, backend_port, extra=extra)
    else:
        sec = listener(protocol, backend_port, mode=mode, protocol=protocol,
                       extra=[("hostname", HOSTNAME)] + list(extra))
    return portier([("tls", tls_items(certs.ec)), sec])


# --- per-protocol words ---------------------------------------------------

def greet(c, proto):
    """Read portier's pre-TLS greeting (LDAP has none)."""
    if proto == "smtp":
        g = c.smtp_reply()
        c.send(b"EHLO client.example.net\r\n")
        c.smtp_reply()
        return g
    if proto in ("imap", "pop3"):
        return c.line()
    return b""


STARTTLS = {"smtp": b"STARTTLS\r\n", "imap": b"a1 STARTTLS\r\n", "pop3": b"STLS\r\n",
            "ldap": ldap_starttls(1)}
# A command a man in the middle would like to run inside the client's TLS session.
EVIL = {"smtp": b"MAIL FROM:<" + INJECTED + b"@example.net>\r\n",
        "imap": b"a2 LOGIN " + INJECTED + b" x\r\n",
        "pop3": b"USER " + INJECTED + b"\r\n",
        "ldap": ldap_bind(2, "cn=" + INJECTED.decode(), "x")}


def read_starttls_ok(c, proto):
    if proto == "smtp":
        assert c.smtp_reply().startswith(b"220 2.0.0")
    elif proto == "imap":
        assert c.line().startswith(b"a1 OK")
    elif proto == "pop3":
        assert c.line().startswith(b"+OK")
    else:
        r = c.ldap()
        assert r.op == 0x78 and r.code == 0 and r.name == OID_STARTTLS, r


def post_tls_exchange(c, proto):
    """One command inside TLS that the backend answers, then goodbye; returns
    the bytes the client sent (what the backend must have seen, exactly)."""
    if proto == "smtp":
        sent = b"MAIL FROM:<post-marker@example.net>\r\nQUIT\r\n"
        c.send(b"MAIL FROM:<post-marker@example.net>\r\n")
        assert b"backend-marker" in c.smtp_reply()
        c.send(b"QUIT\r\n")
    elif proto == "imap":
        sent = b"p1 NOOP post-marker\r\np2 LOGOUT\r\n"
        c.send(b"p1 NOOP post-marker\r\n")
        assert b"backend-marker" in c.until(rb"p1 [^\r\n]*\r\n")
        c.send(b"p2 LOGOUT\r\n")
    elif proto == "pop3":
        sent = b"NOOP post-marker\r\nQUIT\r\n"
        c.send(b"NOOP post-marker\r\n")
        assert b"backend-marker" in c.line()
        c.send(b"QUIT\r\n")
    else:
        search, bye = ldap_search(7, "dc=post-marker"), ldap_unbind(8)
        sent = search + bye
        c.send(search)
        r = c.ldap()
        assert (r.msgid, r.op, r.diag) == (7, 0x65, b"backend-marker"), r
        c.send(bye)
    c.read_to_eof()
    return sent


def read_bye(c, proto):
    """The protocol's goodbye: the last reply before the connection closes."""
    if proto == "ldap":
        r = c.ldap()
        assert c.read_to_eof() == b""
        return r
    return c.read_to_eof()


def assert_unavailable(data, proto):
    if proto == "smtp":
        assert data.startswith(b"421 4.3.0 " + HOSTNAME.encode()), data
    elif proto == "imap":
        assert data.startswith(b"* BYE [UNAVAILABLE]"), data
    elif proto == "pop3":
        assert data.startswith(b"-ERR [SYS/TEMP]"), data
    else:
        # Notice of Disconnection: unsolicited ExtendedResponse, unavailable(52).
        assert (data.msgid, data.op, data.code, data.name) == (0, 0x78, 52, OID_NOTICE), data


# --- rule 2: command injection (nginx CVE-2014-3556) ----------------------

@pytest.mark.parametrize("proto", PROTOCOLS)
def test_injection_in_the_same_write_closes(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    mark = p.mark()
    c = Client(p.port(proto))
    try:
        greet(c, proto)
        c.send(STARTTLS[proto] + EVIL[proto])
        rest = c.read_to_eof()
    finally:
        c.close()
    assert INJECTED not in rest
    line = p.wait_log(r"\[%s\] close .*command injection attempt" % proto, since=mark).string
    assert "tls=-" in line, line
    assert b.accepted == 0, "portier connected the backend after an injection"


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("wait_reply", [False, True], ids=["50ms-gap", "after-reply"])
def test_injection_in_split_writes_closes(portier, certs, fake, proto, wait_reply):
    """STARTTLS, then (50 ms later, or once the go-ahead is read) a plaintext
    command in place of the ClientHello."""
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    mark = p.mark()
    c = Client(p.port(proto))
    try:
        greet(c, proto)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(STARTTLS[proto])
        if wait_reply:
            read_starttls_ok(c, proto)
        else:
            time.sleep(0.05)    # the test is about timing: two TCP segments
        c.send(EVIL[proto])
        c.read_to_eof()
    finally:
        c.close()
    line = p.wait_log(r"\[%s\] close .*command injection attempt" % proto, since=mark).string
    assert "tls=-" in line, line
    if wait_reply:
        assert "plaintext after STARTTLS" in line, line
    assert b.accepted == 0, "portier connected the backend after an injection"


# --- rules 1 and 4: nothing pre-TLS reaches the backend; auth refused -----

def refused_auth(c, proto):
    """Try every way to authenticate (and a few other commands) before TLS;
    each must be refused in the protocol's own words."""
    if proto == "smtp":
        for cmd in (b"AUTH PLAIN AGV2aWwtbWFya2VyAHg=", b"AUTH LOGIN",
                    b"MAIL FROM:<evil-marker@example.net>", b"RCPT TO:<evil-marker@example.org>",
                    b"DATA", b"VRFY evil-marker"):
            c.send(cmd + b"\r\n")
            assert c.smtp_reply() == b"530 5.7.0 Must issue a STARTTLS command first\r\n", cmd
    elif proto == "imap":
        for tag, cmd in ((b"l1", b"LOGIN evil-marker x"), (b"l2", b"AUTHENTICATE PLAIN"),
                         (b"l3", b'LOGIN "evil-marker" "x"')):
            c.send(tag + b" " + cmd + b"\r\n")
            assert c.line().startswith(tag + b" NO [PRIVACYREQUIRED]"), cmd
        for tag, cmd in ((b"l4", b"SELECT INBOX"), (b"l5", b"ID (\"name\" \"evil-marker\")")):
            c.send(tag + b" " + cmd + b"\r\n")
            assert c.line().startswith(tag + b" BAD"), cmd
    elif proto == "pop3":
        for cmd in (b"USER evil-marker", b"PASS x", b"APOP evil-marker 0123456789abcdef",
                    b"AUTH PLAIN", b"STAT", b"RETR 1"):
            c.send(cmd + b"\r\n")
            assert c.line().startswith(b"-ERR"), cmd
    else:
        reqs = [(2, 0x60, 0x61, ldap_bind(2, "cn=evil-marker", "x")),
                (3, 0x63, 0x65, ldap_search(3, "dc=evil-marker")),
                (4, 0x66, 0x67, ldap_simple(4, 0x66, tlv(0x04, b"cn=evil-marker") + tlv(0x30, b""))),
                (5, 0x68, 0x69, ldap_simple(5, 0x68, tlv(0x04, b"cn=evil-marker") + tlv(0x30, b""))),
                (6, 0x4a, 0x6b, ldap_msg(6, tlv(0x4a, b"cn=evil-marker"))),
                (7, 0x6e, 0x6f, ldap_simple(7, 0x6e, tlv(0x04, b"cn=evil-marker") +
                                            tlv(0x30, tlv(0x04, b"cn") + tlv(0x04, b"x")))),
                (8, 0x77, 0x78, ldap_msg(8, tlv(0x77, tlv(0x80, b"1.3.6.1.4.1.4203.1.11.3"))))]
        for msgid, _, res, raw in reqs:
            c.send(raw)
            r = c.ldap()
            # confidentialityRequired (13) in the matching response type.
            assert (r.msgid, r.op, r.code) == (msgid, res, 13), r


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_auth_before_tls_refused_and_nothing_pre_tls_reaches_backend(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    c = Client(p.port(proto))
    try:
        g = greet(c, proto)
        if proto == "imap":
            assert b"LOGINDISABLED" in g, g
        refused_auth(c, proto)
        c.send(STARTTLS[proto])
        read_starttls_ok(c, proto)
        c.tls(certs)
        sent = post_tls_exchange(c, proto)
    finally:
        c.close()
    sessions = b.wait_sessions(1)
    assert b.accepted == 1
    # Exactly the post-TLS bytes: no pre-TLS command, no replayed EHLO, no
    # STARTTLS, nothing portier made up.
    assert sessions == [sent], sessions


# --- rule 4: fixed, minimal output ----------------------------------------

HOSTILE = {
    "smtp": [b"EHLO [ALERT] PREAUTH", b"HELO * PREAUTH", b"NOOP [ALERT]", b"RSET * PREAUTH",
             b"X-[ALERT] x", b"STARTTLS [ALERT]", b"* PREAUTH"],
    "imap": [b"[ALERT] NOOP", b"a [ALERT]", b"* PREAUTH", b"a PREAUTH", b"a NOOP [ALERT]",
             b"[x] CAPABILITY", b"a CAPABILITY [ALERT]", b"+ PREAUTH", b"a OK [ALERT] x"],
    "pop3": [b"[ALERT]", b"CAPA [ALERT]", b"* PREAUTH", b"USER [ALERT]", b"STLS [ALERT]",
             b"+OK [ALERT]", b"NOOP PREAUTH"],
}


@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_no_preauth_or_alert_ever_emitted(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    c = Client(p.port(proto))
    try:
        out = greet(c, proto)
        for line in HOSTILE[proto]:
            c.send(line + b"\r\n")
            out += c.smtp_reply() if proto == "smtp" else c.line()
    finally:
        c.close()
    assert b"PREAUTH" not in out and b"ALERT" not in out, out


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_capability_lists_do_not_depend_on_input(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    seen = set()
    for variant in range(3):
        c = Client(p.port(proto))
        try:
            if proto == "smtp":
                c.smtp_reply()
                for cmd in ([b"EHLO a.example"], [b"EHLO [127.0.0.1]", b"RSET"],
                            [b"NOOP", b"HELO h", b"EHLO x"])[variant]:
                    c.send(cmd + b"\r\n")
                    r = c.smtp_reply()
                    if cmd.startswith(b"EHLO"):
                        seen.add(r)
                c.send(b"EHLO other\r\n")
                seen.add(c.smtp_reply())
            elif proto == "imap":
                g = c.line()
                seen.add(re.search(rb"\[CAPABILITY ([^\]]*)\]", g).group(1))
                tag = (b"x", b"A0001", b"zz.9")[variant]
                if variant:
                    c.send(tag + b" LOGIN u p\r\n")
                    c.line()
                c.send(tag + b" CAPABILITY\r\n")
                seen.add(re.fullmatch(rb"\* CAPABILITY ([^\r\n]*)\r\n", c.line()).group(1))
                assert c.line().startswith(tag + b" OK")
            elif proto == "pop3":
                c.line()
                if variant:
                    c.send((b"USER x", b"AUTH PLAIN")[variant - 1] + b"\r\n")
                    c.line()
                c.send(b"CAPA\r\n")
                seen.add(c.until(rb"\r\n\.\r\n"))
            else:
                # No capability list before TLS: even the root DSE, which a
                # client reads to find StartTLS, is refused the same way.
                c.send(ldap_search(variant + 1, "", "objectClass") if variant else
                       ldap_search(1, "dc=example,dc=org", "uid", "alice", ["mail"]))
                r = c.ldap()
                seen.add((r.op, r.code, r.diag))
        finally:
            c.close()
    assert len(seen) == 1, seen
    if proto == "smtp":
        assert seen == {("250-%s\r\n250 STARTTLS\r\n" % HOSTNAME).encode()}
    elif proto == "imap":
        assert seen == {b"IMAP4rev1 STARTTLS LOGINDISABLED"}
    elif proto == "pop3":
        assert seen == {b"+OK Capability list follows\r\nSTLS\r\n.\r\n"}
    else:
        assert {(op, code) for op, code, _ in seen} == {(0x65, 13)}


def test_imap_backend_bytes_after_its_greeting_reach_the_client_through_the_filter(
        portier, certs, fake):
    """A backend that says more in the write that carries its greeting (an
    untagged CAPABILITY listing STARTTLS): the hand-over eats the greeting
    only, and the rest reaches the TLS client as the relay's own bytes do,
    through the IMAP filter, which takes STARTTLS out of it."""
    b = fake("imap", greeting=b"* OK backend ready\r\n"
             b"* CAPABILITY IMAP4rev1 STARTTLS backend-marker\r\n")
    p = start(portier, certs, "imap", b.port)
    c = Client(p.port("imap"))
    try:
        greet(c, "imap")
        c.send(STARTTLS["imap"])
        read_starttls_ok(c, "imap")
        c.tls(certs)
        assert c.line() == b"* CAPABILITY IMAP4rev1 backend-marker\r\n"
        c.send(b"a1 NOOP\r\n")
        assert c.line().startswith(b"a1 ")
    finally:
        c.close()


# --- rule 3: after the upgrade, no second STARTTLS is begun ----------------
# SMTP: the backend refuses it (a yes ends the connection); IMAP, POP3 and
# LDAP: portier answers it, and it never reaches the backend.

SECOND = {"smtp": b"STARTTLS\r\n", "imap": b"a9 STARTTLS\r\n", "pop3": b"STLS\r\n",
          "ldap": ldap_starttls(9)}


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_second_starttls_inside_tls(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    c = Client(p.port(proto))
    try:
        greet(c, proto)
        c.send(STARTTLS[proto])
        read_starttls_ok(c, proto)
        c.tls(certs)
        if proto == "smtp":
            c.send(b"EHLO inside.example\r\n")
            ehlo = c.smtp_reply()
            # The fake backend advertises STARTTLS; portier drops that line
            # from the first reply and fixes the last line's separator.
            assert ehlo == b"250-fake.backend\r\n250-8BITMIME\r\n250 SIZE 1000\r\n", ehlo
            c.send(SECOND[proto])
            assert c.smtp_reply() == b"454 4.7.0 backend-marker TLS not available\r\n"
        elif proto == "imap":
            c.send(SECOND[proto])
            assert c.line() == b"a9 BAD TLS is already active\r\n"
        elif proto == "pop3":
            c.send(SECOND[proto])
            assert c.line() == b"-ERR TLS already active\r\n"
        else:
            # LDAP: portier holds the TLS layer, so portier answers
            # operationsError (RFC 4511 4.14.1); the request never reaches
            # the backend.
            c.send(SECOND[proto])
            r = c.ldap()
            assert (r.msgid, r.op, r.code) == (9, 0x78, 1), r
            assert r.diag == b"TLS is already active", r
        # The session is still alive and still the backend's.
        post_tls_exchange(c, proto)
    finally:
        c.close()
    if proto != "smtp":
        assert SECOND[proto] not in b.wait_sessions(1)[0]
    else:
        assert SECOND[proto] in b.wait_sessions(1)[0]


# --- rule 6: ALPN (ALPACA) -------------------------------------------------

@pytest.mark.parametrize("proto", PROTOCOLS)
def test_alpn_mismatch_refused(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    mark = p.mark()
    cp = s_client(p.port(proto), ["-starttls", proto, "-alpn", "h2,http/1.1"], ca=certs.ca)
    assert cp.returncode != 0, cp.out
    assert not re.search(r"Cipher is (?!\(NONE\))\S+", cp.out), cp.out
    assert re.search(r"no.application.protocol", cp.out + cp.err, re.I), cp.out + cp.err
    line = p.wait_log(r"\[%s\] handshake failed .*ALPN" % proto, since=mark).string
    assert "cross-protocol" in line, line
    assert b.accepted == 0


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_alpn_of_the_protocol_accepted(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    cp = s_client(p.port(proto), ["-starttls", proto, "-alpn", "h2,%s" % proto], ca=certs.ca)
    assert re.search(r"Cipher is (?!\(NONE\))\S+", cp.out), cp.out + cp.err
    assert "Verify return code: 0 (ok)" in cp.out, cp.out + cp.err
    assert "ALPN protocol: %s" % proto in cp.out, cp.out


# --- rule 5: bounds --------------------------------------------------------

LIMIT_BYE = {"smtp": b"421 4.7.0 ", "imap": b"* BYE Too much input", "pop3": b"-ERR Too much input"}
LINE_MAX = {"smtp": 512, "imap": 1024, "pop3": 255}


@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3"])
def test_longest_line_is_accepted(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    c = Client(p.port(proto))
    try:
        greet(c, proto)
        head = {"smtp": b"NOOP ", "imap": b"a NOOP ", "pop3": b"NOOP "}[proto]
        c.send(head + b"x" * (LINE_MAX[proto] - len(head) - 2) + b"\r\n")
        r = c.smtp_reply() if proto == "smtp" else c.line()
        assert not r.startswith(LIMIT_BYE[proto]), r
    finally:
        c.close()


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("with_newline", [False, True], ids=["no-eol", "eol"])
def test_oversized_line_refused(portier, certs, fake, proto, with_newline):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    mark = p.mark()
    c = Client(p.port(proto))
    try:
        greet(c, proto)
        if proto == "ldap":
            # A bind of 9000 bytes: more than any pre-TLS request needs.
            c.send(ldap_bind(2, "cn=" + "x" * 9000, "y"))
            r = read_bye(c, proto)
            assert (r.msgid, r.op, r.code, r.name) == (0, 0x78, 2, OID_NOTICE), r
        else:
            c.send(b"NOOP " + b"x" * (LINE_MAX[proto] + 10) + (b"\r\n" if with_newline else b""))
            out = c.read_to_eof()
            assert out.startswith(LIMIT_BYE[proto]), out
    finally:
        c.close()
    p.wait_log(r"\[%s\] close .*(too long|oversized)" % proto, since=mark)
    assert b.accepted == 0


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_too_many_commands_before_tls(portier, certs, fake, proto):
    b = fake(proto)
    p = start(portier, certs, proto, b.port)
    mark = p.mark()
    c = Client(p.port(proto))
    try:
        g = greet(c, proto)
        n = 9 if proto == "smtp" else 10     # the SMTP greet() sent an EHLO
        cmd = {"smtp": b"NOOP\r\n", "imap": b"n NOOP\r\n", "pop3": b"CAPA\r\n",
               "ldap": ldap_msg(5, tlv(0x50, ber_int(1)[2:]))}[proto]   # abandon: no reply
        c.send(cmd * n)
        c.send(cmd)
        out = read_bye(c, proto)
    finally:
        c.close()
    if proto == "ldap":
        assert (out.msgid, out.op, out.code, out.name) == (0, 0x78, 2, OID_NOTICE), out
    else:
        assert LIMIT_BYE[proto] in out, out
    assert g is not None
    p.wait_log(r"\[%s\] close .*too many commands" % proto, since=mark)


def test_imap_literals_refused_without_continuation(portier, certs, fake):
    b = fake("imap")
    p = start(portier, certs, "imap", b.port)
    c = Client(p.port("imap"))
    try:
        greet(c, "imap")
        c.send(b"l1 LOGIN {11}\r\n")
        r = c.line()
        assert r == b"l1 BAD Literals not allowed before STARTTLS\r\n", r
        c.send(b"l2 NOOP\r\n")
        assert c.line() == b"l2 OK NOOP completed\r\n"   # no "+ " was ever sent
        # A non-synchronizing literal is already on its way: that ends it.
        c.send(b"l3 LOGIN {11+}\r\nevil-marker x\r\n")
        out = c.read_to_eof()
    finally:
        c.close()
    assert out.startswith(b"l3 BAD Literals not allowed before STARTTLS\r\n"), out
    assert not re.search(rb"(?m)^\+", out), out
    p.wait_log(r"\[imap\] close .*literal")
    assert b.accepted == 0


BYE_TIMEOUT = {"smtp": b"421 4.4.2 " + HOSTNAME.encode(), "imap": b"* BYE Autologout",
               "pop3": b"-ERR Timeout"}


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
def test_slow_client_hits_the_pre_tls_deadline(portier, certs, fake, proto, trickle):
    """prelude_timeout bounds the whole pre-TLS phase: a client that keeps
    sending a byte now and then (never a whole command) is not 'active'."""
    b = fake(proto)
    p = start(portier, certs, proto, b.port, extra=[("prelude_timeout", "2500ms")])
    mark = p.mark()
    c = Client(p.port(proto), timeout=15)
    t0 = time.monotonic()
    try:
        greet(c, proto) if proto != "smtp" else c.smtp_reply()
        if trickle:
            # The test is about timing: one byte every 0.3 s for up to 6 s.
            piece = b"NOOP xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" if proto != "ldap" else b"\x30\x84"
            for ch in piece:
                try:
                    c.send(bytes([ch]))
                except OSError:
                    break
                if c._more(time.monotonic() + 0.3):
                    break
        out = read_bye(c, proto)
    finally:
        c.close()
    took = time.monotonic() - t0
    assert 2.0 <= took <= 2.5 + 3 * harness.SLOW, took
    if proto == "ldap":
        assert (out.msgid, out.op, out.code, out.name) == (0, 0x78, 52, OID_NOTICE), out
    else:
        assert out.startswith(BYE_TIMEOUT[proto]), out
    p.wait_log(r"\[%s\] close .*pre-TLS deadline passed after 2500ms$" % proto, since=mark)
    assert b.accepted == 0


# --- the hand-over: backend down, refusing or odd --------------------------

@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_backend_down_refused_in_protocol_inside_tls(portier, certs, closed_port, proto, mode):
    p = start(portier, certs, proto, closed_port, mode=mode)
    mark = p.mark()
    if mode == "starttls":
        c = Client(p.port(proto))
        UPGRADE[proto](c, certs)
    else:
        c = Client(p.port(proto))
        c.tls(certs)
    try:
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        out = read_bye(c, proto)
    finally:
        c.close()
    assert_unavailable(out, proto)
    p.wait_log(r"warning: \[%s\] client=127\.0\.0\.1:\d+: backend 127\.0\.0\.1:%d: "
               r"Connection refused; refusing in %s" % (proto, closed_port, proto), since=mark)
    line = p.wait_log(r"\[%s\] close .*tls=TLSv1\.[23]" % proto, since=mark).string
    assert "backend unavailable, refused in protocol" in line, line


BAD_GREETINGS = [
    ("smtp", b"554 5.3.2 fake.backend no service\r\n", "not 220"),
    ("smtp", b"220-fake.backend\r\n554 mixed codes\r\n", "malformed"),
    ("smtp", b"HTTP/1.1 400 Bad Request\r\n\r\n", "malformed"),
    ("imap", b"* BYE fake backend going away\r\n", "BYE"),
    ("imap", b"* PREAUTH [CAPABILITY IMAP4rev1] logged in as root\r\n", "PREAUTH"),
    ("imap", b"a OK nonsense\r\n", "malformed"),
    ("pop3", b"-ERR fake backend no service\r\n", "-ERR"),
    ("pop3", b"* OK wrong protocol\r\n", "malformed"),
]


@pytest.mark.parametrize("proto,greeting,why", BAD_GREETINGS,
                         ids=["%s-%d" % (g[0], i) for i, g in enumerate(BAD_GREETINGS)])
def test_negative_backend_greeting_refused(portier, certs, fake, proto, greeting, why):
    b = fake(proto, greeting=greeting)
    p = start(portier, certs, proto, b.port)
    mark = p.mark()
    c = Client(p.port(proto))
    try:
        UPGRADE[proto](c, certs)
        # The client speaks first after the upgrade; none of it may reach a
        # backend that refused.
        c.send({"smtp": b"EHLO client.example.net\r\n", "imap": b"c1 CAPABILITY\r\n",
                "pop3": b"CAPA\r\n"}[proto])
        out = read_bye(c, proto)
    finally:
        c.close()
    assert_unavailable(out, proto)
    assert greeting.strip() not in out and b"PREAUTH" not in out, out
    line = p.wait_log(r"warning: \[%s\] client=.*refusing in %s" % (proto, proto),
                      since=mark).string
    assert why in line, line
    assert b.wait_sessions(1) == [b""]


def test_backend_greeting_timeout_refused(portier, certs, raw_backend):
    """A backend that accepts and says nothing: connect_timeout bounds the wait."""
    def silent(conn):
        return harness.read_to_eof(conn)
    b = raw_backend(silent)
    p = start(portier, certs, "imap", b.port, extra=[("connect_timeout", "1500ms")])
    mark = p.mark()
    c = Client(p.port("imap"))
    t0 = time.monotonic()
    try:
        UPGRADE["imap"](c, certs)
        c.send(b"c1 CAPABILITY\r\n")
        out = read_bye(c, "imap")
    finally:
        c.close()
    assert 1.3 <= time.monotonic() - t0 <= 1.5 + 4 * harness.SLOW
    assert_unavailable(out, "imap")
    p.wait_log(r"\[imap\] client=.*no greeting within 1500ms; refusing in imap", since=mark)
    assert b.wait_result() == b""


def test_smtp_optional_plaintext_replays_only_the_hello(portier, certs, fake):
    """Port 25: the one pre-TLS line that reaches the backend is the
    client's EHLO, replayed (and its reply eaten) before the client's own
    bytes, which follow in order."""
    b = fake("smtp")
    p = start(portier, certs, "smtp", b.port, extra=[("starttls", "optional")])
    mark = p.mark()
    c = Client(p.port("smtp"))
    try:
        c.smtp_reply()
        c.send(b"NOOP\r\n")
        c.smtp_reply()
        c.send(b"EHLO plain.example\r\n")
        assert b"STARTTLS" in c.smtp_reply()
        c.send(b"MAIL FROM:<a@example.net>\r\n")
        assert c.smtp_reply() == b"250 2.0.0 backend-marker ok\r\n"
        c.send(b"QUIT\r\n")
        c.read_to_eof()
    finally:
        c.close()
    assert b.wait_sessions(1) == [b"EHLO plain.example\r\nMAIL FROM:<a@example.net>\r\nQUIT\r\n"]
    p.wait_log(r"\[smtp\] client=.* goes on without TLS", since=mark)


def test_smtp_required_never_relays_plaintext(portier, certs, fake):
    b = fake("smtp")
    p = start(portier, certs, "smtp", b.port)
    c = Client(p.port("smtp"))
    try:
        c.smtp_reply()
        c.send(b"EHLO plain.example\r\n")
        c.smtp_reply()
        for _ in range(3):
            c.send(b"MAIL FROM:<a@example.net>\r\n")
            assert c.smtp_reply().startswith(b"530 5.7.0")
        c.send(b"QUIT\r\n")
        assert c.smtp_reply().startswith(b"221 ")
        assert c.read_to_eof() == b""
    finally:
        c.close()
    assert b.accepted == 0


def test_starttls_with_argument_is_not_an_upgrade(portier, certs, fake):
    b = fake("smtp")
    p = start(portier, certs, "smtp", b.port)
    c = Client(p.port("smtp"))
    try:
        greet(c, "smtp")
        c.send(b"STARTTLS now\r\n")
        assert c.smtp_reply().startswith(b"501 ")
        c.send(b"NOOP\r\n")
        assert c.smtp_reply().startswith(b"250 ")   # still plaintext, still talking
    finally:
        c.close()


def test_tls_session_is_verified_name(portier, certs, fake):
    """The upgrade presents the configured certificate for the SNI name."""
    b = fake("imap")
    p = start(portier, certs, "imap", b.port)
    c = Client(p.port("imap"))
    try:
        c.line()
        c.send(b"a1 STARTTLS\r\n")
        c.line()
        ctx = certs.client_context()
        c.tls(certs, server_hostname=HOSTNAME, ctx=ctx)
        assert c.sock.getpeercert(binary_form=True) == certs.ec.der
        with pytest.raises(ssl.SSLCertVerificationError):
            c2 = Client(p.port("imap"))
            try:
                c2.line()
                c2.send(b"a1 STARTTLS\r\n")
                c2.line()
                c2.tls(certs, server_hostname="not-this.example.net")
            finally:
                c2.close()
    finally:
        c.close()


# --- the hand-over in detail ----------------------------------------------

def test_client_bytes_wait_for_a_slow_split_greeting(portier, certs, raw_backend):
    """The backend greets late and in pieces; what the client sent meanwhile
    is buffered, not dropped, and reaches the backend after the greeting."""
    def slow(conn):
        time.sleep(0.3)             # the test is about timing: a slow backend
        conn.sendall(b"* O")
        time.sleep(0.1)
        conn.sendall(b"K slow backend\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            d = conn.recv(4096)
            if not d:
                break
            got += d
        conn.sendall(got.split(b" ")[0] + b" OK backend-marker\r\n")
        return got + harness.read_to_eof(conn)
    b = raw_backend(slow)
    p = start(portier, certs, "imap", b.port)
    c = Client(p.port("imap"))
    try:
        UPGRADE["imap"](c, certs)
        c.send(b"early1 NOOP\r\n")
        assert c.line() == b"early1 OK backend-marker\r\n"
    finally:
        c.close()
    assert b.wait_result() == b"early1 NOOP\r\n"


def test_multiline_smtp_greeting_and_extra_backend_bytes(portier, certs, raw_backend):
    """A multi-line 220 is consumed whole; after the EHLO reply (filtered)
    the backend's further replies pass untouched."""
    def srv(conn):
        conn.sendall(b"220-fake.backend first\r\n220-second\r\n220 last\r\n")
        f = conn.makefile("rb")
        got = f.readline()
        conn.sendall(b"250-fake.backend\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        got += f.readline()
        conn.sendall(b"250 2.1.0 backend-marker\r\n")
        got += f.readline()
        conn.sendall(b"221 bye\r\n")
        return got
    b = raw_backend(srv)
    p = start(portier, certs, "smtp", b.port)
    c = Client(p.port("smtp"))
    try:
        UPGRADE["smtp"](c, certs)
        c.send(b"EHLO inside\r\n")
        assert c.smtp_reply() == b"250-fake.backend\r\n250 PIPELINING\r\n"
        c.send(b"MAIL FROM:<a@example.net>\r\n")
        assert c.smtp_reply() == b"250 2.1.0 backend-marker\r\n"
        c.send(b"QUIT\r\n")
        assert c.smtp_reply() == b"221 bye\r\n"
    finally:
        c.close()
    assert b.wait_result() == b"EHLO inside\r\nMAIL FROM:<a@example.net>\r\nQUIT\r\n"


def test_a_220_after_the_hand_over_ate_the_greeting_ends_the_session(portier, certs,
                                                                    raw_backend):
    """The hand-over consumed the backend's greeting, so a 220 in answer to
    the client's first command is TLS or a new session beyond the filter's
    sight (a backend that reads some spelling of STARTTLS the filter does
    not): the connection ends; the client never sees it."""
    def srv(conn):
        conn.sendall(b"220 fake.backend ESMTP\r\n")
        got = conn.makefile("rb").readline()
        conn.sendall(b"220 fake.backend second session\r\n")
        try:
            return got + harness.read_to_eof(conn)
        except ConnectionResetError:    # portier aborts the backend side
            return got
    b = raw_backend(srv)
    p = start(portier, certs, "smtp", b.port)
    mark = p.mark()
    c = Client(p.port("smtp"))
    try:
        UPGRADE["smtp"](c, certs)
        c.send(b"NOOP\r\n")
        assert c.read_to_eof() == b""
    finally:
        c.close()
    assert b.wait_result() == b"NOOP\r\n"
    p.wait_log(r"\[smtp\] close .*smtp: backend accepted STARTTLS or began a new "
               r"session", since=mark)


def test_ldap_unbind_before_tls_closes_silently(portier, certs, fake):
    b = fake("ldap")
    p = start(portier, certs, "ldap", b.port)
    mark = p.mark()
    c = Client(p.port("ldap"))
    try:
        c.send(ldap_unbind(1))
        assert c.read_to_eof() == b""
    finally:
        c.close()
    p.wait_log(r"\[ldap\] close .*client unbind", since=mark)
    assert b.accepted == 0


def test_ldap_garbage_gets_notice_of_disconnection(portier, certs, fake):
    b = fake("ldap")
    p = start(portier, certs, "ldap", b.port)
    c = Client(p.port("ldap"))
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = read_bye(c, "ldap")
    finally:
        c.close()
    assert (r.msgid, r.op, r.code, r.name) == (0, 0x78, 2, OID_NOTICE), r
    assert b.accepted == 0


def test_smtp_optional_pipelined_plaintext_client(portier, certs, fake):
    """Port 25, a client that pipelines EHLO and MAIL in one write: portier
    answers the EHLO itself, then hands MAIL (and what follows) over in order."""
    b = fake("smtp")
    p = start(portier, certs, "smtp", b.port, extra=[("starttls", "optional")])
    c = Client(p.port("smtp"))
    try:
        c.smtp_reply()
        c.send(b"EHLO plain.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n")
        assert b"STARTTLS" in c.smtp_reply()
        assert c.smtp_reply() == b"250 2.0.0 backend-marker ok\r\n"
        assert c.smtp_reply() == b"250 2.0.0 backend-marker ok\r\n"
        c.send(b"QUIT\r\n")
        c.read_to_eof()
    finally:
        c.close()
    assert b.wait_sessions(1) == [b"EHLO plain.example\r\nMAIL FROM:<a@example.net>\r\n"
                                  b"RCPT TO:<b@example.org>\r\nQUIT\r\n"]
