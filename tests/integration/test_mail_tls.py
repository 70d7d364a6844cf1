"""Implicit TLS for mail: dovecot behind imaps and pop3s, opensmtpd behind smtps.
Every client does a real login and fetch, or delivers a real message."""

import imaplib
import os
import poplib
import smtplib
import socket

import pytest

import harness
from harness import MAIL_PASS, MAIL_USER, curl, listener, tls_items

NAME = "mail.example.org"


@pytest.fixture(scope="module")
def mail_portier(tmp_path_factory, certs, dovecot):
    """One portier for dovecot's IMAP and POP3, module-scoped like dovecot."""
    p = harness.Portier(tmp_path_factory.mktemp("mailportier"), [
        ("tls", tls_items(certs.ec, certs.rsa)),
        listener("imaps", dovecot.imap_port, protocol="imap"),
        listener("pop3s", dovecot.pop3_port, protocol="pop3"),
    ])
    yield p
    p.stop()


class IMAPS(imaplib.IMAP4_SSL):
    """IMAP4_SSL to 127.0.0.1 that sends and verifies the name in self.host."""

    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


class POP3S(poplib.POP3_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self.host)


class SMTPS(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection(("127.0.0.1", port), timeout)
        return self.context.wrap_socket(sock, server_hostname=host)


def test_curl_imaps_fetch(mail_portier, certs, dovecot):
    cp = curl(certs, mail_portier.port("imaps"), "/INBOX;UID=1", host=NAME, scheme="imaps",
              args=["-u", "%s:%s" % (MAIL_USER, MAIL_PASS)])
    assert cp.returncode == 0, cp.err
    assert "Subject: portier test " + dovecot.token in cp.out
    assert "body line with " + dovecot.token in cp.out


def test_curl_pop3s_fetch(mail_portier, certs, dovecot):
    cp = curl(certs, mail_portier.port("pop3s"), "/1", host=NAME, scheme="pop3s",
              args=["-u", "%s:%s" % (MAIL_USER, MAIL_PASS)])
    assert cp.returncode == 0, cp.err
    assert "body line with " + dovecot.token in cp.out


def test_imaplib_login_and_fetch(mail_portier, certs, dovecot):
    with IMAPS(NAME, mail_portier.port("imaps"), ssl_context=certs.client_context(),
               timeout=20 * harness.SLOW) as m:
        assert m.sock.version() in ("TLSv1.2", "TLSv1.3")
        m.login(MAIL_USER, MAIL_PASS)
        typ, data = m.select("INBOX")
        assert typ == "OK" and int(data[0]) >= 1
        typ, data = m.fetch("1", "(RFC822)")
        assert typ == "OK", data
        assert dovecot.token.encode() in data[0][1]
    mail_portier.wait_log(r"sni=%s" % NAME.replace(".", r"\."))


def test_imaplib_wrong_password_is_refused_by_backend(mail_portier, certs):
    with IMAPS(NAME, mail_portier.port("imaps"), ssl_context=certs.client_context(),
               timeout=20 * harness.SLOW) as m:
        with pytest.raises(imaplib.IMAP4.error):
            m.login(MAIL_USER, "wrong")


def test_poplib_login_and_fetch(mail_portier, certs, dovecot):
    p = POP3S(NAME, mail_portier.port("pop3s"), context=certs.client_context(),
              timeout=20 * harness.SLOW)
    try:
        assert p.sock.version() in ("TLSv1.2", "TLSv1.3")
        p.user(MAIL_USER)
        p.pass_(MAIL_PASS)
        count, _ = p.stat()
        assert count >= 1
        _, lines, _ = p.retr(1)
        assert dovecot.token.encode() in b"\n".join(lines)
    finally:
        p.quit()


def test_imaps_served_with_rsa_to_rsa_only_client(mail_portier, certs, dovecot):
    """The same listener serves the RSA certificate to a TLS 1.2 client that only does RSA."""
    ctx = certs.client_context()
    ctx.maximum_version = harness.ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    with IMAPS(NAME, mail_portier.port("imaps"), ssl_context=ctx,
               timeout=20 * harness.SLOW) as m:
        assert m.sock.getpeercert(binary_form=True) == certs.rsa.der
        m.login(MAIL_USER, MAIL_PASS)


@pytest.fixture(scope="module")
def smtps_portier(tmp_path_factory, certs, smtpd):
    p = harness.Portier(tmp_path_factory.mktemp("smtpportier"), [
        ("tls", tls_items(certs.ec)),
        listener("smtps", smtpd.port, protocol="smtp"),
    ])
    yield p
    p.stop()


def _token(tag):
    return "tok%s%s" % (tag, os.urandom(6).hex())


def test_swaks_smtps_delivers(smtps_portier, smtpd, certs):
    token = _token("swaks")
    cp = harness.run(["swaks", "--server", "127.0.0.1", "--port", str(smtps_portier.port("smtps")),
                      "--tlsc", "--tls-verify", "--tls-ca-path", certs.ca, "--tls-sni", NAME,
                      "--ehlo", "client.example.net", "--from", "sender@example.net",
                      "--to", "%s@example.org" % MAIL_USER, "--header", "Subject: " + token,
                      "--body", "swaks body " + token, "--timeout", "20"], timeout=60)
    assert cp.returncode == 0, cp.out + cp.err
    assert "TLS started" in cp.out + cp.err
    data = smtpd.delivered(token)
    assert ("swaks body " + token).encode() in data


def test_smtplib_smtp_ssl_delivers(smtps_portier, smtpd, certs):
    token = _token("smtplib")
    with SMTPS(NAME, smtps_portier.port("smtps"), context=certs.client_context(),
               timeout=20 * harness.SLOW) as s:
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        code, banner = s.ehlo("client.example.net")
        assert code == 250, banner
        s.sendmail("sender@example.net", ["%s@example.org" % MAIL_USER],
                   "From: sender@example.net\r\nSubject: %s\r\n\r\nsmtplib body %s\r\n"
                   % (token, token))
    data = smtpd.delivered(token)
    assert ("smtplib body " + token).encode() in data
