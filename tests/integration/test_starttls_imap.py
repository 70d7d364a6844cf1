"""IMAP STARTTLS on behalf of a plaintext dovecot: openssl s_client, curl and
imaplib log in and fetch a real message through portier."""

import imaplib
import socket

import pytest

import harness
from harness import MAIL_PASS, MAIL_USER, curl, tls_items
from starttls_support import HOSTNAME, Client, SClient, starttls_listener


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
        assert b"STARTTLS" not in caps or b"LOGINDISABLED" not in caps, caps
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
        assert "AUTHENTICATIONFAILED" in str(e.value) or "failed" in str(e.value).lower()
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


def test_second_starttls_inside_tls_is_answered_by_dovecot(imap_portier, certs):
    m = IMAP(HOSTNAME, imap_portier.port("imap"), timeout=20 * harness.SLOW)
    try:
        m.starttls(ssl_context=certs.client_context())
        # imaplib raises on BAD and NO; OK would mean someone began TLS again.
        with pytest.raises(imaplib.IMAP4.error) as e:
            m._simple_command("STARTTLS")
        assert "Begin TLS negotiation now" not in str(e.value), e.value
        print("dovecot answered a second STARTTLS with", e.value)
        assert m.noop()[0] == "OK"
    finally:
        m.shutdown()
