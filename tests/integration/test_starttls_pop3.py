"""POP3 STLS on behalf of a plaintext dovecot: openssl s_client, curl and
poplib log in and retrieve a real message through portier. Inside TLS the
POP3 filter hides the backend's STLS and answers a second STLS itself, also
in front of a dovecot with TLS of its own that offers and would start it."""

import poplib
import socket

import pytest

import harness
from harness import MAIL_PASS, MAIL_USER, curl, tls_items
from starttls_support import HOSTNAME, Client, SClient, both_models_portier, starttls_listener


@pytest.fixture(scope="module")
def pop3_portier(tmp_path_factory, certs, dovecot):
    p = harness.Portier(tmp_path_factory.mktemp("starttls-pop3"), [
        ("tls", tls_items(certs.ec, certs.rsa)),
        starttls_listener("pop3", "pop3", dovecot.pop3_port),
    ])
    yield p
    p.stop()


class POP3(poplib.POP3):
    """poplib to 127.0.0.1; stls() verifies the name in self.host."""

    def _create_socket(self, timeout):
        return socket.create_connection(("127.0.0.1", self.port), timeout)


def test_openssl_s_client_starttls_login_and_retr(pop3_portier, dovecot, certs):
    c = SClient(pop3_portier.port("pop3"), "pop3", certs.ca)
    try:
        c.expect(rb"Verify return code: 0 \(ok\)")
        c.send(b"CAPA\r\n")
        m = c.expect(rb"\+OK[^\r\n]*\r?\n((?:[^\r\n]*\r?\n)*?)\.\r?\n")
        assert b"STLS" not in m.group(1), m.group(1)   # dovecot's list, no TLS there
        assert b"USER" in m.group(1), m.group(1)
        c.send(("USER %s\r\n" % MAIL_USER).encode())
        c.expect(rb"\+OK")
        c.send(("PASS %s\r\n" % MAIL_PASS).encode())
        c.expect(rb"\+OK Logged in")
        c.send(b"RETR 1\r\n")
        c.expect(("body line with %s" % dovecot.token).encode())
        c.send(b"QUIT\r\n")
        c.expect(rb"\+OK Logging out")
        assert c.wait_exit() == 0, c.text()
    finally:
        c.close()


def test_curl_pop3_ssl_reqd_retr(pop3_portier, dovecot, certs):
    cp = curl(certs, pop3_portier.port("pop3"), "/1", host=HOSTNAME, scheme="pop3",
              args=["--ssl-reqd", "-u", "%s:%s" % (MAIL_USER, MAIL_PASS), "-v"])
    assert cp.returncode == 0, cp.err
    assert "STLS" in cp.err and "SSL connection using TLSv1." in cp.err, cp.err
    assert "body line with " + dovecot.token in cp.out


def test_poplib_stls_login_and_retr(pop3_portier, dovecot, certs):
    p = POP3(HOSTNAME, pop3_portier.port("pop3"), timeout=20 * harness.SLOW)
    try:
        assert p.getwelcome() == b"+OK POP3 ready"
        assert "STLS" in p.capa()
        p.stls(context=certs.client_context())
        assert p.sock.version() in ("TLSv1.2", "TLSv1.3")
        caps = p.capa()     # dovecot's, through portier
        assert "STLS" not in caps and "USER" in caps, caps
        p.user(MAIL_USER)
        p.pass_(MAIL_PASS)
        count, _ = p.stat()
        assert count >= 1
        _, lines, _ = p.retr(1)
        assert dovecot.token.encode() in b"\n".join(lines)
        p.quit()
    except BaseException:
        p.close()
        raise
    pop3_portier.wait_log(r"\[pop3\] close .*sni=%s tls=TLSv1\.[23]"
                          % HOSTNAME.replace(".", r"\."))


def test_user_before_stls_is_refused(pop3_portier):
    c = Client(pop3_portier.port("pop3"))
    try:
        assert c.line() == b"+OK POP3 ready\r\n"
        c.send(("USER %s\r\n" % MAIL_USER).encode())
        assert c.line().startswith(b"-ERR")
        c.send(("PASS %s\r\n" % MAIL_PASS).encode())
        assert c.line().startswith(b"-ERR")
    finally:
        c.close()


def test_second_stls_inside_tls_is_answered_by_portier(pop3_portier, certs):
    p = POP3(HOSTNAME, pop3_portier.port("pop3"), timeout=20 * harness.SLOW)
    try:
        p.stls(context=certs.client_context())
        with pytest.raises(poplib.error_proto) as e:
            p._shortcmd("STLS")
        assert e.value.args[0] == b"-ERR TLS already active", e.value
        assert "USER" in p.capa()   # the session goes on with dovecot
        p.user(MAIL_USER)
        p.pass_(MAIL_PASS)
        assert p.stat()[0] >= 1
        p.quit()
    except BaseException:
        p.close()
        raise


@pytest.fixture(scope="module")
def pop3_ssl_portier(tmp_path_factory, certs, dovecot_ssl):
    p = both_models_portier(tmp_path_factory, certs, "pop3", dovecot_ssl.pop3_port)
    yield p
    p.stop()


class POP3S(poplib.POP3_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self.host)


def test_backend_with_tls_offers_stls_directly(dovecot_ssl):
    # What the tests below hide and refuse is really there.
    p = POP3("127.0.0.1", dovecot_ssl.pop3_port, timeout=20 * harness.SLOW)
    try:
        assert "STLS" in p.capa()
        p.quit()
    except BaseException:
        p.close()
        raise


def check_stls_hidden_and_refused(p):
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps, caps
    with pytest.raises(poplib.error_proto) as e:
        p._shortcmd("STLS")
    assert e.value.args[0] == b"-ERR TLS already active", e.value
    p.user(MAIL_USER)
    p.pass_(MAIL_PASS)
    assert p.stat()[0] >= 1
    p.quit()


def test_backend_stls_hidden_and_refused_after_stls(pop3_ssl_portier, certs):
    p = POP3(HOSTNAME, pop3_ssl_portier.port("pop3"), timeout=20 * harness.SLOW)
    try:
        p.stls(context=certs.client_context())
        check_stls_hidden_and_refused(p)
    except BaseException:
        p.close()
        raise


def test_backend_stls_hidden_and_refused_on_pop3s(pop3_ssl_portier, certs):
    p = POP3S(HOSTNAME, pop3_ssl_portier.port("pop3s"), context=certs.client_context(),
              timeout=20 * harness.SLOW)
    try:
        assert p.getwelcome().startswith(b"+OK")
        check_stls_hidden_and_refused(p)
    except BaseException:
        p.close()
        raise


def test_pipelined_stls_answered_in_order(pop3_ssl_portier, certs):
    """CAPA, STLS, USER in one write: the answer to STLS comes after the
    whole CAPA list and before USER's +OK."""
    p = POP3(HOSTNAME, pop3_ssl_portier.port("pop3"), timeout=20 * harness.SLOW)
    try:
        p.stls(context=certs.client_context())
        p.sock.sendall(b"CAPA\r\nSTLS\r\nUSER %s\r\n" % MAIL_USER.encode())
        lines = []
        while b"." not in lines and len(lines) < 64:
            lines.append(p._getline()[0])
        lines += [p._getline()[0], p._getline()[0]]
        assert lines[0].startswith(b"+OK"), lines
        end = lines.index(b".")
        assert b"STLS" not in lines[:end] and b"USER" in lines[:end], lines
        assert lines[end + 1:] == [b"-ERR TLS already active", lines[-1]], lines
        assert lines[-1].startswith(b"+OK"), lines
        p.pass_(MAIL_PASS)
        p.quit()
    except BaseException:
        p.close()
        raise
