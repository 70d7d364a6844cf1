"""SMTP STARTTLS on behalf of a plaintext opensmtpd: real clients deliver real
messages through portier (openssl s_client, curl, swaks, smtplib), the port-25
`starttls = optional` path, and what the backend says after the upgrade."""

import os
import smtplib
import socket

import pytest

import harness
from harness import MAIL_USER, curl, tls_items
from starttls_support import HOSTNAME, Client, SClient, starttls_listener

RCPT = "%s@example.org" % MAIL_USER


@pytest.fixture(scope="module")
def smtp_portier(tmp_path_factory, certs, smtpd):
    """One portier with a required (587-style) and an optional (25-style)
    STARTTLS listener in front of one opensmtpd."""
    p = harness.Portier(tmp_path_factory.mktemp("starttls-smtp"), [
        ("tls", tls_items(certs.ec, certs.rsa)),
        starttls_listener("submission", "smtp", smtpd.port),
        starttls_listener("mx", "smtp", smtpd.port, extra=[("starttls", "optional")]),
    ])
    yield p
    p.stop()


def _token(tag):
    return "tok%s%s" % (tag, os.urandom(6).hex())


class SMTP(smtplib.SMTP):
    """smtplib to 127.0.0.1 that verifies the certificate for self._host."""

    def _get_socket(self, host, port, timeout):
        return socket.create_connection(("127.0.0.1", port), timeout)


def test_openssl_s_client_starttls_delivers(smtp_portier, smtpd, certs):
    token = _token("sclient")
    c = SClient(smtp_portier.port("submission"), "smtp", certs.ca,
                args=["-name", "client.example.net"])
    try:
        c.expect(rb"Verify return code: 0 \(ok\)")
        # After the upgrade portier has eaten opensmtpd's 220; the client
        # speaks first, with a fresh EHLO that reaches the backend.
        c.send(b"EHLO client.example.net\r\n")
        m = c.expect(rb"250-[^\r\n]*\r?\n(?:250-[^\r\n]*\r?\n)*250 [^\r\n]*\r?\n")
        assert b"STARTTLS" not in m.group(0), m.group(0)
        c.send(b"MAIL FROM:<sender@example.net>\r\n")
        c.expect(rb"250 ")
        c.send(("RCPT TO:<%s>\r\n" % RCPT).encode())
        c.expect(rb"250 ")
        c.send(b"DATA\r\n")
        c.expect(rb"354 ")
        c.send(("Subject: %s\r\n\r\ns_client body %s\r\n.\r\n" % (token, token)).encode())
        c.expect(rb"250 ")
        c.send(b"QUIT\r\n")
        c.expect(rb"221 ")
        assert c.wait_exit() == 0, c.text()
    finally:
        c.close()
    assert ("s_client body " + token).encode() in smtpd.delivered(token)


def test_curl_smtp_ssl_reqd_delivers(smtp_portier, smtpd, certs, workdir):
    token = _token("curl")
    msg = workdir / "msg.eml"
    msg.write_text("From: sender@example.net\r\nTo: %s\r\nSubject: %s\r\n\r\ncurl body %s\r\n"
                   % (RCPT, token, token))
    cp = curl(certs, smtp_portier.port("submission"), "/client.example.net", host=HOSTNAME,
              scheme="smtp", args=["--ssl-reqd", "--mail-from", "sender@example.net",
                                   "--mail-rcpt", RCPT, "-T", str(msg), "-v"])
    assert cp.returncode == 0, cp.err
    assert "STARTTLS" in cp.err and "SSL connection using TLSv1." in cp.err, cp.err
    assert ("curl body " + token).encode() in smtpd.delivered(token)


def test_swaks_tls_delivers(smtp_portier, smtpd, certs):
    token = _token("swaks")
    cp = harness.run(["swaks", "--server", "127.0.0.1",
                      "--port", str(smtp_portier.port("submission")), "--tls", "--tls-verify",
                      "--tls-ca-path", certs.ca, "--tls-sni", HOSTNAME,
                      "--ehlo", "client.example.net", "--from", "sender@example.net",
                      "--to", RCPT, "--header", "Subject: " + token,
                      "--body", "swaks body " + token, "--timeout", "20"], timeout=60)
    assert cp.returncode == 0, cp.out + cp.err
    assert "TLS started" in cp.out + cp.err
    assert ("swaks body " + token).encode() in smtpd.delivered(token)


def test_smtplib_starttls_delivers(smtp_portier, smtpd, certs):
    token = _token("smtplib")
    with SMTP(HOSTNAME, smtp_portier.port("submission"), timeout=20 * harness.SLOW) as s:
        code, text = s.ehlo("client.example.net")
        assert code == 250 and s.has_extn("starttls"), text
        assert not s.has_extn("auth") and not s.has_extn("pipelining"), text
        s.starttls(context=certs.client_context())
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        code, text = s.ehlo("client.example.net")
        assert code == 250, text
        # Now it is opensmtpd speaking (it announces its own extensions) and
        # STARTTLS is not offered inside TLS.
        assert not s.has_extn("starttls"), text
        assert s.has_extn("8bitmime") or s.has_extn("enhancedstatuscodes"), text
        s.sendmail("sender@example.net", [RCPT],
                   "From: sender@example.net\r\nSubject: %s\r\n\r\nsmtplib body %s\r\n"
                   % (token, token))
    assert ("smtplib body " + token).encode() in smtpd.delivered(token)
    smtp_portier.wait_log(r"\[submission\] close .*sni=%s tls=TLSv1\.[23]"
                          % HOSTNAME.replace(".", r"\."))


def test_required_mail_before_starttls_gets_530(smtp_portier):
    c = Client(smtp_portier.port("submission"))
    try:
        assert c.smtp_reply() == ("220 %s ESMTP ready\r\n" % HOSTNAME).encode()
        c.send(b"EHLO client.example.net\r\n")
        assert c.smtp_reply() == ("250-%s\r\n250 STARTTLS\r\n" % HOSTNAME).encode()
        c.send(b"MAIL FROM:<sender@example.net>\r\n")
        assert c.smtp_reply().startswith(b"530 5.7.0 ")
        c.send(b"QUIT\r\n")
        assert c.smtp_reply().startswith(b"221 ")
        assert c.read_to_eof() == b""
    finally:
        c.close()


def test_optional_plaintext_client_is_relayed_and_delivers(smtp_portier, smtpd):
    """Port 25 (RFC 3207): a client that never upgrades goes on in plaintext;
    portier replays its EHLO to opensmtpd and logs that TLS was not used."""
    token = _token("plain")
    mark = smtp_portier.mark()
    with SMTP(HOSTNAME, smtp_portier.port("mx"), timeout=20 * harness.SLOW) as s:
        code, text = s.ehlo("client.example.net")
        assert code == 250 and s.has_extn("starttls"), text
        s.sendmail("sender@example.net", [RCPT],
                   "From: sender@example.net\r\nSubject: %s\r\n\r\nplain body %s\r\n"
                   % (token, token))
    assert ("plain body " + token).encode() in smtpd.delivered(token)
    smtp_portier.wait_log(r"\[mx\] client=127\.0\.0\.1:\d+ goes on without TLS", since=mark)
    line = smtp_portier.wait_log(r"\[mx\] close ", since=mark).string
    assert "tls=-" in line, line


def test_optional_listener_still_upgrades(smtp_portier, smtpd, certs):
    token = _token("optup")
    with SMTP(HOSTNAME, smtp_portier.port("mx"), timeout=20 * harness.SLOW) as s:
        s.starttls(context=certs.client_context())
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.sendmail("sender@example.net", [RCPT],
                   "From: sender@example.net\r\nSubject: %s\r\n\r\nopt tls body %s\r\n"
                   % (token, token))
    assert ("opt tls body " + token).encode() in smtpd.delivered(token)


def test_optional_still_refuses_auth_in_plaintext(smtp_portier):
    c = Client(smtp_portier.port("mx"))
    try:
        c.smtp_reply()
        c.send(b"EHLO client.example.net\r\n")
        c.smtp_reply()
        c.send(b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n")
        assert c.smtp_reply().startswith(b"530 5.7.0 ")
    finally:
        c.close()


def test_second_starttls_inside_tls_is_answered_by_opensmtpd(smtp_portier, certs):
    with SMTP(HOSTNAME, smtp_portier.port("submission"), timeout=20 * harness.SLOW) as s:
        s.starttls(context=certs.client_context())
        s.ehlo("client.example.net")
        code, text = s.docmd("STARTTLS")
        # opensmtpd has no TLS here; whatever it says, it is an error, and
        # it is not portier's "220 2.0.0 Ready to start TLS".
        assert 400 <= code < 600, (code, text)
        assert b"Ready to start TLS" not in text, text
        print("opensmtpd answered a second STARTTLS with", code, text)
        code, text = s.noop()
        assert code == 250, (code, text)
