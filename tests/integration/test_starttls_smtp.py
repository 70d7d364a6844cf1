"""SMTP STARTTLS on behalf of a plaintext opensmtpd: real clients deliver real
messages through portier (openssl s_client, curl, swaks, smtplib), the port-25
`starttls = optional` path, and what the backend says after the upgrade."""

import os
import smtplib
import socket
import time
from email.message import EmailMessage

import pytest

import harness
from harness import MAIL_USER, curl, tls_items
from starttls_support import HOSTNAME, Client, FakeBackend, SClient, _smtp_answer, starttls_listener

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
        assert s.has_extn("8bitmime") and s.has_extn("enhancedstatuscodes"), text
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


# --- Port 25: the backend's extensions before TLS (finding 2 of the STARTTLS
# review). A sender that stays in plaintext must see what the backend offers
# (8BITMIME, SIZE, SMTPUTF8...), or it downgrades or bounces its mail.

# What portier passes before TLS (starttls_smtp.c's plain_ext), lower case as
# smtplib keeps them.
PLAIN_EXT = {"size", "8bitmime", "smtputf8", "dsn", "enhancedstatuscodes", "pipelining",
             "deliverby", "mt-priority", "futurerelease", "limits", "no-soliciting", "mtrk"}


def _backend_features(smtpd):
    with smtplib.SMTP("127.0.0.1", smtpd.port, timeout=20 * harness.SLOW) as s:
        code, text = s.ehlo("client.example.net")
        assert code == 250, text
        return dict(s.esmtp_features)


def test_optional_plaintext_ehlo_lists_the_backends_extensions(smtp_portier, smtpd):
    backend = _backend_features(smtpd)
    # The test means something only if opensmtpd offers these.
    assert {"8bitmime", "size"} <= set(backend), backend
    with SMTP(HOSTNAME, smtp_portier.port("mx"), timeout=20 * harness.SLOW) as s:
        code, text = s.ehlo("client.example.net")
        assert code == 250, text
        lines = text.split(b"\n")
        # portier's name first, STARTTLS last (RFC 3207: portier's own).
        assert lines[0] == HOSTNAME.encode(), text
        assert lines[-1] == b"STARTTLS", text
        got = set(s.esmtp_features)
        assert got == (set(backend) & PLAIN_EXT) | {"starttls"}, (got, backend)
        for name in ("size", "8bitmime"):
            assert s.esmtp_features[name] == backend[name], (name, text)
        assert not s.has_extn("auth") and not s.has_extn("xclient"), text
        print("backend offers", sorted(backend), "; portier before TLS:", sorted(got))


def test_optional_plaintext_smtputf8_and_8bitmime_delivered(smtp_portier, smtpd):
    """The review's optional_ext.py: through portier in plaintext, the same
    answers as from the backend directly."""
    backend = _backend_features(smtpd)
    token = _token("eightbit")
    with SMTP(HOSTNAME, smtp_portier.port("mx"), timeout=20 * harness.SLOW) as s:
        s.ehlo("client.example.net")
        assert s.has_extn("8bitmime"), s.ehlo_resp
        refused = s.sendmail("sender@example.net", [RCPT],
                             ("Subject: %s\r\n\r\nb\u00f6dy %s\r\n" % (token, token)).encode(),
                             mail_options=["BODY=8BITMIME"])
        assert refused == {}, refused
        if "smtputf8" in backend:
            assert s.has_extn("smtputf8"), s.ehlo_resp
            utoken = _token("utf8")
            m = EmailMessage()
            m["From"] = "j\u00f6rg@ex\u00e4mple.net"
            m["To"] = RCPT
            m["Subject"] = utoken
            m.set_content("utf8 body " + utoken)
            assert s.send_message(m) == {}
    assert ("b\u00f6dy " + token).encode() in smtpd.delivered(token)
    if "smtputf8" in backend:
        assert ("utf8 body " + utoken).encode() in smtpd.delivered(utoken)


def test_optional_starttls_after_the_merged_ehlo(smtp_portier, smtpd, certs):
    """EHLO answered from the backend, then STARTTLS: a working TLS session
    whose EHLO is the backend's own (no STARTTLS inside TLS), and mail."""
    token = _token("mergedtls")
    mark = smtp_portier.mark()
    with SMTP(HOSTNAME, smtp_portier.port("mx"), timeout=20 * harness.SLOW) as s:
        code, text = s.ehlo("client.example.net")
        assert s.has_extn("8bitmime") and s.has_extn("starttls"), text
        s.starttls(context=certs.client_context())
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        code, text = s.ehlo("client.example.net")
        assert code == 250, text
        assert not s.has_extn("starttls"), text
        assert s.has_extn("8bitmime"), text
        s.sendmail("sender@example.net", [RCPT],
                   "Subject: %s\r\n\r\nmerged tls body %s\r\n" % (token, token))
    assert ("merged tls body " + token).encode() in smtpd.delivered(token)
    smtp_portier.wait_log(r"\[mx\] close .*tls=TLSv1\.[23]", since=mark)


def test_optional_backend_down_gets_421_at_ehlo(portier, certs, closed_port):
    p = portier([("tls", tls_items(certs.ec)),
                 starttls_listener("mx", "smtp", closed_port, extra=[("starttls", "optional")])])
    mark = p.mark()
    c = Client(p.port("mx"))
    try:
        assert c.smtp_reply() == ("220 %s ESMTP ready\r\n" % HOSTNAME).encode()
        c.send(b"EHLO client.example.net\r\n")
        assert c.smtp_reply() == ("421 4.3.0 %s service not available\r\n"
                                  % HOSTNAME).encode()
        assert c.read_to_eof() == b""
    finally:
        c.close()
    p.wait_log(r"\[mx\] client=127\.0\.0\.1:\d+: backend 127\.0\.0\.1:%d: .*refusing in smtp"
               % closed_port, since=mark)


def test_optional_backend_down_gets_421_at_helo(portier, certs, closed_port):
    """HELO asks the backend as EHLO does: refused at once while it is down,
    not greeted with a 250 that the mail after it would find untrue."""
    p = _optional_portier(portier, certs, closed_port)
    mark = p.mark()
    c = Client(p.port("mx"))
    try:
        c.smtp_reply()
        c.send(b"HELO client.example.net\r\n")
        assert c.smtp_reply() == ("421 4.3.0 %s service not available\r\n"
                                  % HOSTNAME).encode()
        assert c.read_to_eof() == b""
    finally:
        c.close()
    p.wait_log(r"\[mx\] client=127\.0\.0\.1:\d+: backend 127\.0\.0\.1:%d: .*refusing in smtp"
               % closed_port, since=mark)


def test_optional_helo_client_delivers_through_opensmtpd(smtp_portier, smtpd):
    """A HELO sender (smtplib's helo) is answered from OpenSMTPD's 250 with
    portier's name alone, and its mail is delivered in plaintext."""
    token = _token("helo")
    with SMTP(HOSTNAME, smtp_portier.port("mx"), timeout=20 * harness.SLOW) as s:
        code, text = s.helo("helo.example.net")
        assert (code, text) == (250, HOSTNAME.encode()), (code, text)
        s.sendmail("sender@example.net", [RCPT],
                   "From: sender@example.net\r\nSubject: %s\r\n\r\nhelo body %s\r\n"
                   % (token, token))
    assert ("helo body " + token).encode() in smtpd.delivered(token)


def _refusing(verbs, refusal):
    """A fake backend's answers: refusal to the verbs (EHLO, HELO),
    _smtp_answer's to the rest."""
    def answer(line):
        if line.split(b" ")[0].upper().strip() in verbs:
            return refusal
        return _smtp_answer(line)
    return answer


def _optional_session(portier, certs, answer, talk, quit=True):
    """An optional portier in front of a fake backend that answers as
    answer(line) does: talk(client) speaks after the greeting, then QUIT
    (unless talk said it); the backend's one session is returned."""
    b = FakeBackend("smtp", answer=answer)
    try:
        p = _optional_portier(portier, certs, b.port)
        c = Client(p.port("mx"))
        try:
            c.smtp_reply()
            talk(c)
            if quit:
                c.send(b"QUIT\r\n")
            assert c.smtp_reply().startswith(b"221 ")
        finally:
            c.close()
        return b.wait_sessions(1)[0]
    finally:
        b.stop()


def test_optional_helo_refused_by_backend_reaches_client(portier, certs):
    """A backend that refuses the name in HELO too: its 550 is the client's
    answer (a permanent one), not portier's 250 and then a 421 at MAIL; the
    backend heard the HELO once and then portier's QUIT."""
    def talk(c):
        c.send(b"HELO bad.example\r\n")
        assert c.smtp_reply() == b"550 5.7.1 backend-marker not you\r\n"
        c.send(b"MAIL FROM:<a@example.net>\r\n")
        assert c.smtp_reply() == b"503 5.5.1 Send EHLO or HELO first\r\n"

    got = _optional_session(portier, certs, _refusing(
        (b"EHLO", b"HELO"), b"550 5.7.1 backend-marker not you\r\n"), talk)
    assert got == b"HELO bad.example\r\nQUIT\r\n", got


# A backend that offers what must never reach a client before TLS next to
# what must: SMTPUTF8 (which opensmtpd here does not offer) among them.
RICH_EHLO = (b"250-fake.backend Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
             b"250-AUTH PLAIN LOGIN\r\n250-AUTH=LOGIN\r\n250-STARTTLS\r\n"
             b"250-XCLIENT NAME ADDR PORT\r\n250-XFORWARD NAME ADDR\r\n250-CHUNKING\r\n"
             b"250-ETRN\r\n250-SMTPUTF8\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")


def _optional_portier(portier, certs, port):
    """portier with one `starttls = optional` SMTP listener, "mx", in front
    of port."""
    return portier([("tls", tls_items(certs.ec)),
                    starttls_listener("mx", "smtp", port, extra=[("starttls", "optional")])])


def _rich_answer(line):
    if line.split(b" ")[0].upper().strip() == b"EHLO":
        return RICH_EHLO
    return _smtp_answer(line)


def test_optional_plaintext_utf8_mail_relayed_byte_exact(portier, certs):
    """The client's EHLO reaches the backend once and as it was sent; the
    merged reply filters AUTH, STARTTLS, XCLIENT, XFORWARD, CHUNKING, ETRN;
    an SMTPUTF8 message then goes to the backend byte for byte, nothing
    replayed, nothing of portier's in between."""
    b = FakeBackend("smtp", answer=_rich_answer)
    try:
        p = _optional_portier(portier, certs, b.port)
        with SMTP(HOSTNAME, p.port("mx"), timeout=20 * harness.SLOW) as s:
            code, text = s.ehlo("client.example.net")
            assert code == 250, text
            assert text == (HOSTNAME.encode() + b"\nPIPELINING\nSIZE 10240000\nSMTPUTF8\n"
                            b"8BITMIME\nENHANCEDSTATUSCODES\nSTARTTLS"), text
            m = EmailMessage()
            m["From"] = "j\u00f6rg@ex\u00e4mple.net"
            m["To"] = RCPT
            m["Subject"] = "utf8"
            m.set_content("h\u00e9llo")
            assert s.send_message(m) == {}
        got = b.wait_sessions(1)[0]
    finally:
        b.stop()
    # (smtplib writes its verbs in lower case.)
    assert got.startswith(b"ehlo client.example.net\r\nmail FROM:<j\xc3\xb6rg@ex\xc3\xa4mple.net>"), got
    assert got.lower().count(b"ehlo") == 1 and b"helo" not in got.lower(), got
    first = got.split(b"\r\n")[1]
    assert b" SMTPUTF8" in first and b"BODY=8BITMIME" in first and b"size=" in first, first
    assert got.endswith(b"\r\n.\r\nQUIT\r\n"), got


def test_optional_pipelined_plaintext_after_the_merged_ehlo(portier, certs):
    """PIPELINING is offered now: MAIL, RCPT and DATA in one write after the
    EHLO reach the backend in that one order, answered in order."""
    def talk(c):
        c.send(b"EHLO pipe.example\r\n")
        assert b"250-PIPELINING\r\n" in c.smtp_reply()
        c.send(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        for want in (b"250 ", b"250 ", b"354 "):
            assert c.smtp_reply().startswith(want)
        c.send(b"x\r\n.\r\nQUIT\r\n")
        assert c.smtp_reply().startswith(b"250 2.0.0 backend-marker queued")

    got = _optional_session(portier, certs, _rich_answer, talk, quit=False)
    assert got == (b"EHLO pipe.example\r\nMAIL FROM:<a@example.net>\r\n"
                   b"RCPT TO:<b@example.org>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n"), got


def test_optional_starttls_after_query_starts_a_new_backend_session(portier, certs):
    """After STARTTLS the backend session that answered the plaintext EHLO is
    ended (QUIT) and a new one carries the TLS session: the backend never
    keeps what it learnt before TLS (RFC 3207 4.2), and a server that refuses
    a second EHLO (OpenSMTPD) still works."""
    b = FakeBackend("smtp", answer=_rich_answer)
    try:
        p = _optional_portier(portier, certs, b.port)
        with SMTP(HOSTNAME, p.port("mx"), timeout=20 * harness.SLOW) as s:
            s.ehlo("plain.example")
            assert s.has_extn("smtputf8") and s.has_extn("starttls")
            s.starttls(context=certs.client_context())
            code, text = s.ehlo("tls.example")
            assert code == 250 and not s.has_extn("starttls"), text
            assert not s.has_extn("xclient") and s.has_extn("smtputf8"), text
            s.sendmail("a@example.net", ["b@example.org"], "Subject: x\r\n\r\nbody\r\n")
        sessions = sorted(b.wait_sessions(2))
    finally:
        b.stop()
    # (smtplib writes its verbs in lower case.)
    assert sessions == sorted([b"ehlo plain.example\r\nQUIT\r\n",
                               b"ehlo tls.example\r\nmail FROM:<a@example.net> size=20\r\n"
                               b"rcpt TO:<b@example.org>\r\ndata\r\nSubject: x\r\n\r\n"
                               b"body\r\n.\r\nQUIT\r\n"]), sessions


@pytest.mark.parametrize("second", ["EHLO", "HELO"])
def test_optional_second_hello_refused_by_opensmtpd_is_its_answer(smtp_portier, smtpd,
                                                                  second):
    """OpenSMTPD refuses a second hello, EHLO or HELO ("503 ... Already
    identified"): the client hears that refusal as it would from OpenSMTPD
    alone, and its mail still goes through on the first one. Before, portier
    cut the session with a 421: at the second EHLO, or at MAIL after it had
    answered the HELO itself and replayed it."""
    token = _token("second" + second)
    c = Client(smtp_portier.port("mx"))
    try:
        assert c.smtp_reply().startswith(b"220 ")
        c.send(b"EHLO a.example\r\n")
        assert c.smtp_reply().endswith(b"250 STARTTLS\r\n")
        c.send(b"%s b.example\r\n" % second.encode())
        reply = c.smtp_reply()
        assert reply.startswith(b"503 ") and b"Already identified" in reply, reply
        for line, want in ((b"MAIL FROM:<sender@example.net>", b"250 "),
                           (b"RCPT TO:<%s>" % RCPT.encode(), b"250 "), (b"DATA", b"354 "),
                           (b"Subject: %s\r\n\r\nsecond hello body %s\r\n." %
                            (token.encode(), token.encode()), b"250 "),
                           (b"QUIT", b"221 ")):
            c.send(line + b"\r\n")
            assert c.smtp_reply().startswith(want), line
    finally:
        c.close()
    assert ("second hello body " + token).encode() in smtpd.delivered(token)


def test_optional_ehlo_refused_by_backend_reaches_client(portier, certs):
    """A backend that refuses the client's EHLO (550, its policy) is heard
    as such: the 550 reaches the client as the backend sent it (a 421 of
    portier's would make the sender queue and retry a permanent refusal),
    the client is not greeted, and it may try HELO."""
    def talk(c):
        c.send(b"EHLO bad.example\r\n")
        assert c.smtp_reply() == b"550-5.7.1 backend-marker no\r\n550 5.7.1 not you\r\n"
        c.send(b"MAIL FROM:<a@example.net>\r\n")
        assert c.smtp_reply() == b"503 5.5.1 Send EHLO or HELO first\r\n"
        c.send(b"HELO bad.example\r\n")
        assert c.smtp_reply() == ("250 %s\r\n" % HOSTNAME).encode()
        c.send(b"MAIL FROM:<a@example.net>\r\n")
        assert c.smtp_reply() == b"250 2.0.0 backend-marker ok\r\n"

    got = _optional_session(portier, certs, _refusing(
        (b"EHLO",), b"550-5.7.1 backend-marker no\r\n550 5.7.1 not you\r\n"), talk)
    # One session: the refused EHLO, the HELO it took, the mail; no replay.
    assert got == (b"EHLO bad.example\r\nHELO bad.example\r\n"
                   b"MAIL FROM:<a@example.net>\r\nQUIT\r\n"), got


def test_optional_backend_silent_at_ehlo_refused_at_connect_timeout(portier, certs):
    """A backend that greets but never answers the EHLO holds the client no
    longer than connect_timeout: 421, and a log line that says what was
    missing."""
    b = FakeBackend("smtp", answer=lambda line: b"")
    try:
        p = portier([("tls", tls_items(certs.ec)),
                     starttls_listener("mx", "smtp", b.port,
                                       extra=[("starttls", "optional"),
                                              ("connect_timeout", "1s")])])
        mark = p.mark()
        c = Client(p.port("mx"))
        try:
            c.smtp_reply()
            t0 = time.monotonic()
            c.send(b"EHLO client.example.net\r\n")
            assert c.smtp_reply() == ("421 4.3.0 %s service not available\r\n"
                                      % HOSTNAME).encode()
            assert 0.9 <= time.monotonic() - t0 <= 1.5 + 4 * harness.SLOW
        finally:
            c.close()
        p.wait_log(r"\[mx\] client=.*no reply to the client's EHLO or HELO within 1s; "
                   r"refusing in smtp", since=mark)
    finally:
        b.stop()
