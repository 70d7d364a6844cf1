"""IMAP STARTTLS on behalf of a plaintext dovecot: openssl s_client, curl and
imaplib log in and fetch a real message through portier. Inside TLS the IMAP
filter hides the backend's STARTTLS and answers a second STARTTLS itself,
also in front of a dovecot with TLS of its own that offers and would start
it, and passes literals (a big FETCH, APPEND) byte for byte."""

import imaplib
import os
import socket

import pytest

import harness
from harness import MAIL_PASS, MAIL_USER, curl, tls_items
from starttls_support import HOSTNAME, Client, SClient, both_models_portier, starttls_listener


@pytest.fixture(scope="module")
def imap_portier(tmp_path_factory, certs, dovecot):
    p = harness.Portier(tmp_path_factory.mktemp("starttls-imap"), [
        ("tls", tls_items(certs.ec, certs.rsa)),
        starttls_listener("imap", "imap", dovecot.imap_port),
    ])
    yield p
    p.stop()


class IMAP(imaplib.IMAP4):
    """imaplib to 127.0.0.1 that sends and verifies the name in self.host."""

    def _create_socket(self, timeout):
        return socket.create_connection(("127.0.0.1", self.port), timeout)


def test_openssl_s_client_starttls_login_and_fetch(imap_portier, dovecot, certs):
    c = SClient(imap_portier.port("imap"), "imap", certs.ca)
    try:
        c.expect(rb"Verify return code: 0 \(ok\)")
        # No greeting after the upgrade: the client speaks first.
        c.send(b"a CAPABILITY\r\n")
        m = c.expect(rb"\* CAPABILITY ([^\r\n]*)\r?\n")
        caps = m.group(1).split()
        # Inside TLS: no second STARTTLS, and LOGIN is allowed.
        assert b"IMAP4rev1" in caps and b"STARTTLS" not in caps, caps
        assert b"LOGINDISABLED" not in caps, caps
        c.expect(rb"a OK ")
        c.send(("b LOGIN %s %s\r\n" % (MAIL_USER, MAIL_PASS)).encode())
        c.expect(rb"b OK ")
        c.send(b"c SELECT INBOX\r\n")
        c.expect(rb"c OK ")
        c.send(b"d FETCH 1 (BODY[])\r\n")
        c.expect(("body line with %s" % dovecot.token).encode())
        c.expect(rb"d OK ")
        c.send(b"e LOGOUT\r\n")
        c.expect(rb"\* BYE")
        assert c.wait_exit() == 0, c.text()
    finally:
        c.close()


def test_curl_imap_ssl_reqd_fetch(imap_portier, dovecot, certs):
    cp = curl(certs, imap_portier.port("imap"), "/INBOX;UID=1", host=HOSTNAME, scheme="imap",
              args=["--ssl-reqd", "-u", "%s:%s" % (MAIL_USER, MAIL_PASS), "-v"])
    assert cp.returncode == 0, cp.err
    assert "STARTTLS" in cp.err and "SSL connection using TLSv1." in cp.err, cp.err
    assert "Subject: portier test " + dovecot.token in cp.out
    assert "body line with " + dovecot.token in cp.out


def test_imaplib_starttls_login_and_fetch(imap_portier, dovecot, certs):
    m = IMAP(HOSTNAME, imap_portier.port("imap"), timeout=20 * harness.SLOW)
    try:
        # Before TLS: portier's fixed capabilities.
        assert "STARTTLS" in m.capabilities and "LOGINDISABLED" in m.capabilities
        typ, _ = m.starttls(ssl_context=certs.client_context())
        assert typ == "OK"
        assert m.sock.version() in ("TLSv1.2", "TLSv1.3")
        # After TLS: dovecot's own capabilities, fetched through portier.
        assert "LOGINDISABLED" not in m.capabilities, m.capabilities
        assert "IDLE" in m.capabilities, m.capabilities
        m.login(MAIL_USER, MAIL_PASS)
        typ, data = m.select("INBOX")
        assert typ == "OK" and int(data[0]) >= 1
        typ, data = m.fetch("1", "(RFC822)")
        assert typ == "OK", data
        assert dovecot.token.encode() in data[0][1]
        m.logout()
    finally:
        if m.state != "LOGOUT":
            m.shutdown()
    imap_portier.wait_log(r"\[imap\] close .*sni=%s tls=TLSv1\.[23]"
                          % HOSTNAME.replace(".", r"\."))


def test_wrong_password_is_refused_by_dovecot(imap_portier, certs):
    m = IMAP(HOSTNAME, imap_portier.port("imap"), timeout=20 * harness.SLOW)
    try:
        m.starttls(ssl_context=certs.client_context())
        with pytest.raises(imaplib.IMAP4.error) as e:
            m.login(MAIL_USER, "wrong")
        assert "[AUTHENTICATIONFAILED]" in str(e.value), e.value   # dovecot's own NO
    finally:
        m.shutdown()


def test_login_before_starttls_is_refused_not_relayed(imap_portier):
    c = Client(imap_portier.port("imap"))
    try:
        g = c.line()
        assert g == b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n", g
        c.send(("a LOGIN %s %s\r\n" % (MAIL_USER, MAIL_PASS)).encode())
        assert c.line().startswith(b"a NO [PRIVACYREQUIRED]")
    finally:
        c.close()


def test_second_starttls_inside_tls_is_answered_by_portier(imap_portier, certs):
    m = IMAP(HOSTNAME, imap_portier.port("imap"), timeout=20 * harness.SLOW)
    try:
        m.starttls(ssl_context=certs.client_context())
        # imaplib raises on BAD and NO; OK would mean someone began TLS again.
        with pytest.raises(imaplib.IMAP4.error) as e:
            m._simple_command("STARTTLS")
        assert "TLS is already active" in str(e.value), e.value
        m.login(MAIL_USER, MAIL_PASS)     # the session goes on with dovecot
        typ, data = m.list()
        assert typ == "OK" and any(b"INBOX" in d for d in data), data
        m.logout()
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


@pytest.fixture(scope="module")
def imap_ssl_portier(tmp_path_factory, certs, dovecot_ssl):
    p = both_models_portier(tmp_path_factory, certs, "imap", dovecot_ssl.imap_port)
    yield p
    p.stop()


class IMAPS(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def test_backend_with_tls_offers_starttls_directly(dovecot_ssl):
    # What the tests below hide and refuse is really there: STARTTLS, and
    # COMPRESS=DEFLATE after login.
    m = imaplib.IMAP4("127.0.0.1", dovecot_ssl.imap_port, timeout=20 * harness.SLOW)
    try:
        assert "STARTTLS" in m.capabilities, m.capabilities
        typ, data = m.login(MAIL_USER, MAIL_PASS)
        assert typ == "OK", data
        typ, data = m.capability()
        assert typ == "OK" and b"COMPRESS=DEFLATE" in data[0].split(), data
        m.logout()
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


def check_starttls_hidden_and_refused(m):
    typ, data = m.capability()
    assert typ == "OK" and b"STARTTLS" not in data[0].upper().split(), data
    assert b"IMAP4REV1" in data[0].upper().split(), data
    with pytest.raises(imaplib.IMAP4.error) as e:
        m._simple_command("STARTTLS")
    assert "TLS is already active" in str(e.value), e.value
    typ, data = m.login(MAIL_USER, MAIL_PASS)
    assert typ == "OK", data
    # dovecot's tagged OK carries [CAPABILITY ...]: imaplib keeps it
    assert "STARTTLS" not in str(m.untagged_responses), m.untagged_responses
    # COMPRESS=DEFLATE (after login) is hidden too, and the command is
    # answered by portier: compressed, the filter could read no command.
    assert "COMPRESS" not in str(m.untagged_responses), m.untagged_responses
    typ, data = m.capability()
    assert typ == "OK" and b"IDLE" in data[0].split(), data
    assert b"COMPRESS" not in data[0].upper(), data
    typ, data = m.xatom("COMPRESS", "DEFLATE")
    assert (typ, data) == ("NO", [b"[CANNOT] COMPRESS is not available"]), (typ, data)
    typ, data = m.list()
    assert typ == "OK" and any(b"INBOX" in d for d in data), data
    m.logout()


def test_backend_starttls_hidden_and_refused_after_starttls(imap_ssl_portier, certs):
    m = IMAP(HOSTNAME, imap_ssl_portier.port("imap"), timeout=20 * harness.SLOW)
    try:
        m.starttls(ssl_context=certs.client_context())
        assert "STARTTLS" not in m.capabilities, m.capabilities
        check_starttls_hidden_and_refused(m)
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


def test_backend_starttls_hidden_and_refused_on_imaps(imap_ssl_portier, certs):
    m = IMAPS(HOSTNAME, imap_ssl_portier.port("imaps"), ssl_context=certs.client_context(),
              timeout=20 * harness.SLOW)
    try:
        # the greeting's [CAPABILITY ...] came through the filter
        assert m.welcome.startswith(b"* OK [CAPABILITY "), m.welcome
        assert b"STARTTLS" not in m.welcome and "STARTTLS" not in m.capabilities
        check_starttls_hidden_and_refused(m)
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


def read_until_tag(m, tag, limit=10000):
    lines = []
    while len(lines) < limit:
        line = m.readline()
        assert line, lines
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines
    raise AssertionError("no %r response" % tag)


def test_pipelined_starttls_answered_in_order(imap_ssl_portier, certs):
    """CAPABILITY, STARTTLS, NOOP in one write: portier's BAD comes after
    CAPABILITY's OK and before NOOP's."""
    m = IMAP(HOSTNAME, imap_ssl_portier.port("imap"), timeout=20 * harness.SLOW)
    try:
        m.starttls(ssl_context=certs.client_context())
        m.send(b"p1 CAPABILITY\r\np2 STARTTLS\r\np3 NOOP\r\n")
        lines = read_until_tag(m, b"p3")
        assert lines[0].startswith(b"* CAPABILITY ") and b"STARTTLS" not in lines[0], lines
        assert [l.split(b" ")[0] for l in lines[1:]] == [b"p1", b"p2", b"p3"], lines
        assert lines[2] == b"p2 BAD TLS is already active\r\n", lines
        m.logout()
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


def big_message(token):
    """About 310 KB whose lines read like responses and commands."""
    tricky = [b"* CAPABILITY IMAP4rev1 STARTTLS", b"a STARTTLS", b"b OK done",
              b"* OK [CAPABILITY IMAP4rev1 STARTTLS] x", b"+ go on", b"x LOGIN {5}",
              b"c STARTTLS", b"* 1 FETCH (BODY[] {3}"]
    lines = [b"From: sender@example.net", b"To: %s@example.org" % MAIL_USER.encode(),
             b"Subject: big " + token.encode(), b""]
    for i in range(6000):
        lines.append(b"line %05d of the body, with some words to fill it" % i)
        if i % 700 == 0:
            lines += tricky
    return b"\r\n".join(lines) + b"\r\n"


def test_big_fetch_and_append_literals_byte_exact(imap_ssl_portier, certs):
    """A message of lines that look like STARTTLS, capability responses and
    literals goes in by APPEND (a synchronizing literal through imaplib, a
    non-synchronizing one by hand: dovecot offers LITERAL+) and comes back by
    FETCH byte for byte; a STARTTLS pipelined behind the FETCH is answered
    after it."""
    m = IMAP(HOSTNAME, imap_ssl_portier.port("imap"), timeout=60 * harness.SLOW)
    try:
        m.starttls(ssl_context=certs.client_context())
        m.login(MAIL_USER, MAIL_PASS)
        token = "big" + os.urandom(6).hex()
        msg = big_message(token)
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK", data
        m.send(b"ap APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert read_until_tag(m, b"ap")[-1].startswith(b"ap OK"), "LITERAL+ APPEND"
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        typ, data = m.search(None, "SUBJECT", token)
        nums = data[0].split()
        assert typ == "OK" and len(nums) == 2, data
        for n in nums:
            m.send(b"f1 FETCH %s BODY.PEEK[]\r\nf2 STARTTLS\r\nf3 NOOP\r\n" % n)
            head = m.readline()
            assert head.startswith(b"* %s FETCH (" % n) and head.endswith(b"}\r\n"), head
            size = int(head[head.rindex(b"{") + 1:-3])
            body = m.read(size)
            assert body == msg, (len(body), len(msg))
            rest = read_until_tag(m, b"f3")
            tags = [l.split(b" ")[0] for l in rest if not l.startswith(b"* ")]
            assert tags[-3:] == [b"f1", b"f2", b"f3"], rest
            assert b"f2 BAD TLS is already active\r\n" in rest, rest
        m.logout()
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


def test_invalid_tag_literal_is_none_for_dovecot_and_portier(imap_ssl_portier, certs):
    """dovecot answers a line with an invalid tag `* BAD` and reads no
    literal of it: the filter frames it the same way, so the STARTTLS
    after it is a command to both, and portier answers it."""
    m = IMAP(HOSTNAME, imap_ssl_portier.port("imap"), timeout=20 * harness.SLOW)
    try:
        m.starttls(ssl_context=certs.client_context())
        m.login(MAIL_USER, MAIL_PASS)
        m.send(b"x+ NOOP {12+}\r\nc STARTTLS\r\nd NOOP\r\n")
        lines = read_until_tag(m, b"d")
        # The invalid line owes no tagged response: portier's answer need
        # not wait for dovecot's untagged BAD.
        assert len(lines) == 3 and lines[-1].startswith(b"d OK"), lines
        assert b"c BAD TLS is already active\r\n" in lines, lines
        assert any(l.startswith(b"* BAD ") for l in lines), lines
        m.logout()
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


def test_braces_in_a_subject_are_text_not_a_literal(imap_portier, certs):
    """A subject is the sender's to write: one holding "{12345678901234567890}"
    comes back inside a quoted string of FETCH ENVELOPE, which is no literal
    announcement. Through portier the reader's session goes on and gets the
    subject as dovecot sent it (the IMAP filter took any 19 digits in braces
    for an oversized literal and ended the session)."""
    token = "brace" + os.urandom(6).hex()
    subject = "see {12345678901234567890} %s" % token
    msg = ("From: sender@example.net\r\nTo: %s@example.org\r\nSubject: %s\r\n\r\nbody\r\n"
           % (MAIL_USER, subject)).encode()
    m = IMAP(HOSTNAME, imap_portier.port("imap"), timeout=20 * harness.SLOW)
    try:
        m.starttls(ssl_context=certs.client_context())
        m.login(MAIL_USER, MAIL_PASS)
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK", data
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        typ, data = m.search(None, "SUBJECT", token)
        nums = data[0].split()
        assert typ == "OK" and len(nums) == 1, data
        typ, data = m.fetch(nums[0], "(ENVELOPE)")
        assert typ == "OK", data
        assert ('"%s"' % subject).encode() in data[0], data
        assert m.noop()[0] == "OK"
        m.logout()
    finally:
        if m.state != "LOGOUT":
            m.shutdown()
