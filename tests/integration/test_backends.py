"""The test backends themselves, spoken to directly in plaintext (no portier).
When one of these fails, the other files' failures are about the backend, not portier."""

import hashlib
import imaplib
import poplib
import smtplib
import socket
import ssl

import harness
from harness import MAIL_PASS, MAIL_USER, run


def test_certs_verify_and_have_the_right_names(certs):
    for leaf in (certs.ec, certs.rsa, certs.other, certs.expiring):
        run(["openssl", "verify", "-CAfile", certs.ca, leaf.leaf], check=True)
    cp = run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", certs.other.leaf],
             check=True)
    assert "other.example.org" in cp.out and "localhost" not in cp.out
    cp = run(["openssl", "x509", "-noout", "-text", "-in", certs.rsa.leaf], check=True)
    assert "rsaEncryption" in cp.out and "2048 bit" in cp.out
    cp = run(["openssl", "x509", "-noout", "-text", "-in", certs.ec.leaf], check=True)
    assert "id-ecPublicKey" in cp.out and "prime256v1" in cp.out
    assert run(["openssl", "x509", "-noout", "-checkend", "0", "-in", certs.expired.leaf]).returncode == 1
    cp = run(["openssl", "x509", "-noout", "-checkend", str(9 * 86400), "-in", certs.expiring.leaf])
    assert cp.returncode == 0
    cp = run(["openssl", "x509", "-noout", "-checkend", str(11 * 86400), "-in", certs.expiring.leaf])
    assert cp.returncode == 1
    pub = run(["openssl", "pkey", "-pubout", "-in", certs.wrongkey], check=True).out
    for leaf in (certs.ec, certs.rsa, certs.other):
        assert run(["openssl", "x509", "-noout", "-pubkey", "-in", leaf.leaf], check=True).out != pub


def test_http_backend(http_backend):
    with socket.create_connection(("127.0.0.1", http_backend.port), timeout=10) as s:
        s.sendall(b"GET /big HTTP/1.0\r\nHost: x\r\n\r\n")
        data = harness.read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.")
    assert hashlib.sha256(body).hexdigest() == http_backend.big_sha256
    payload = b"abc" * 1000
    with socket.create_connection(("127.0.0.1", http_backend.port), timeout=10) as s:
        s.sendall(b"POST /sha256 HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        data = harness.read_to_eof(s)
    assert data.endswith(hashlib.sha256(payload).hexdigest().encode())


def test_raw_backend_half_close(raw_backend):
    def handler(c):
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        return harness.read_to_eof(c)
    b = raw_backend(handler)
    with socket.create_connection(("127.0.0.1", b.port), timeout=10) as s:
        assert harness.read_to_eof(s) == b"hello"
        s.sendall(b"after eof")
        s.shutdown(socket.SHUT_WR)
        assert b.wait_result() == b"after eof"


def _server_ctx(certs):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(certs.ec.cert, certs.ec.key)
    return sctx


def test_tls_client_sends_close_notify_then_reads(certs, raw_backend):
    """The MemoryBIO TLS client sends close_notify and can still read, and reads
    until the peer's close_notify: checked against Python's ssl server, so that
    test_http_relay's half-close tests measure portier, not the client."""
    sctx = _server_ctx(certs)

    def handler(c):
        t = harness.TLSConn(c, sctx, server_side=True)
        got = t.recv_all()
        assert t.got_close_notify
        t.send(hashlib.sha256(got).hexdigest().encode())
        t.close_notify()
        return got
    b = raw_backend(handler)
    cli = harness.TLSClient(b.port, certs.client_context(), "localhost")
    payload = bytes(range(256)) * 4096
    cli.send(payload)
    cli.close_notify()
    assert cli.recv_all() == hashlib.sha256(payload).hexdigest().encode()
    assert cli.got_close_notify
    cli.close()
    assert b.wait_result() == payload


def test_tls_client_reads_close_notify_then_sends(certs, raw_backend):
    sctx = _server_ctx(certs)
    blob = b"x" * 100000

    def handler(c):
        t = harness.TLSConn(c, sctx, server_side=True)
        t.do_handshake()
        t.send(blob)
        t.close_notify()
        return t.recv_all()
    b = raw_backend(handler)
    cli = harness.TLSClient(b.port, certs.client_context(), "localhost")
    assert cli.recv_all() == blob and cli.got_close_notify
    cli.send(b"late data")
    cli.close_notify()
    assert b.wait_result() == b"late data"
    cli.close()


def test_tls_client_tells_a_bare_fin_from_close_notify(certs, raw_backend):
    """A peer that ends with a FIN and no close_notify is not counted as having
    sent one, with Python's default context (OP_IGNORE_UNEXPECTED_EOF set):
    every got_close_notify assertion in the suite rests on this."""
    sctx = _server_ctx(certs)

    def handler(c):
        t = harness.TLSConn(c, sctx, server_side=True)
        t.do_handshake()
        t.send(b"truncated")
        c.shutdown(socket.SHUT_WR)       # a FIN, no alert
        return harness.read_to_eof(c)
    b = raw_backend(handler)
    ctx = certs.client_context()
    assert ctx.options & ssl.OP_IGNORE_UNEXPECTED_EOF
    cli = harness.TLSClient(b.port, ctx, "localhost")
    try:
        assert cli.recv_all() == b"truncated"
        assert cli.eof_tcp and not cli.got_close_notify
    finally:
        cli.close()
    b.wait_result()


def test_dovecot_imap_and_pop3(dovecot):
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=10) as m:
        m.login(MAIL_USER, MAIL_PASS)
        typ, _ = m.select("INBOX")
        assert typ == "OK"
        typ, data = m.fetch("1", "(RFC822)")
        assert typ == "OK" and dovecot.token.encode() in data[0][1]
    p = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=10)
    try:
        p.user(MAIL_USER)
        p.pass_(MAIL_PASS)
        _, lines, _ = p.retr(1)
        assert dovecot.token.encode() in b"\n".join(lines)
    finally:
        p.quit()


def test_opensmtpd_delivers(smtpd):
    token = "tok" + harness.sha256(str(id(smtpd)).encode() + b"direct")[:16]
    with smtplib.SMTP("127.0.0.1", smtpd.port, timeout=10) as s:
        s.ehlo("client.example.net")
        s.sendmail("sender@example.net", ["%s@example.org" % MAIL_USER],
                   "Subject: %s\r\n\r\nhello %s\r\n" % (token, token))
    assert token.encode() in smtpd.delivered(token)


def test_slapd_search(slapd):
    cp = run(["ldapsearch", "-x", "-LLL", "-o", "nettimeout=10", "-H",
              "ldap://127.0.0.1:%d/" % slapd.port, "-b", "dc=example,dc=org", "(uid=alice)",
              "description"], check=True)
    assert "description: " + slapd.token in cp.out
    cp = run(["ldapwhoami", "-x", "-o", "nettimeout=10", "-H", "ldap://127.0.0.1:%d/" % slapd.port,
              "-D", slapd.ROOTDN, "-w", slapd.rootpw], check=True)
    assert "dn:" + slapd.ROOTDN in cp.out
