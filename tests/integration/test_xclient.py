"""xclient = yes: portier tells an XCLIENT-capable SMTP backend (Postfix)
who the client is, before the client's first command reaches it. The
backend here is a small fake speaking the XCLIENT exchange as Postfix
documents it; opensmtpd has no XCLIENT."""

import re
import smtplib

import pytest

import harness
from starttls_support import HOSTNAME, starttls_listener


def xclient_backend(offer=True):
    def handler(c):
        f = c.makefile("rb")
        seen = []
        c.sendall(b"220 backend ESMTP\r\n")
        for line in f:
            seen.append(line)
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO"):
                c.sendall(b"250-backend\r\n" +
                          (b"250-XCLIENT NAME ADDR PORT PROTO HELO\r\n" if offer else b"") +
                          b"250 8BITMIME\r\n")
            elif cmd.startswith(b"XCLIENT"):
                c.sendall(b"220 backend ESMTP (as the real client)\r\n")
            elif cmd.startswith(b"QUIT"):
                c.sendall(b"221 bye\r\n")
                break
            else:
                c.sendall(b"250 ok\r\n")
        return seen
    return handler


def run_client(port, certs):
    s = smtplib.SMTP("localhost", port, local_hostname="client.test", timeout=10)
    s.ehlo()
    s.starttls(context=certs.client_context())
    code, _ = s.ehlo()
    s.noop()
    s.quit()
    return code


def test_xclient_sends_the_client_address_first(portier, certs, raw_backend):
    b = raw_backend(xclient_backend())
    p = portier([("tls", harness.tls_items(certs.ec)),
                 starttls_listener("sub", "smtp", b.port, extra=[("xclient", "yes")])])
    assert run_client(p.port("sub"), certs) == 250
    seen = b.wait_result()
    assert seen[0].startswith(b"EHLO "), seen
    assert seen[1].startswith(b"XCLIENT ADDR=127.0.0.1 PORT="), seen
    port = int(seen[1].split(b"PORT=")[1])
    assert 0 < port < 65536
    # Then the client's own EHLO, after TLS: nothing it said before.
    assert seen[2].upper() == b"EHLO CLIENT.TEST\r\n", seen


def refused_by_backend_without_xclient(portier, certs, raw_backend):
    """STARTTLS against a backend that does not offer XCLIENT: returns the
    smtplib client just after the upgrade, and portier."""
    b = raw_backend(xclient_backend(offer=False))
    p = portier([("tls", harness.tls_items(certs.ec)),
                 starttls_listener("sub", "smtp", b.port, extra=[("xclient", "yes")])])
    s = smtplib.SMTP("localhost", p.port("sub"), local_hostname="client.test",
                     timeout=10 * harness.SLOW)
    s.ehlo()
    s.starttls(context=certs.client_context())
    return s, p


def test_backend_without_xclient_is_refused_in_smtp(portier, certs, raw_backend):
    s, p = refused_by_backend_without_xclient(portier, certs, raw_backend)
    # portier meets the backend as soon as TLS is up, before the client's
    # next command: the refusal is a 421 the client reads unasked. A mere
    # disconnect raises SMTPServerDisconnected here and fails the test.
    code, msg = s.getreply()
    assert code == 421, (code, msg)
    assert re.fullmatch(rb"4\.3\.0 \S+ service not available", msg), msg
    s.close()
    p.wait_log(r"backend does not offer XCLIENT to portier")


def test_backend_without_xclient_one_421_then_close(portier, certs, raw_backend):
    s, p = refused_by_backend_without_xclient(portier, certs, raw_backend)
    code, msg = s.getreply()
    assert code == 421, (code, msg)
    rest = s.file.read()          # to the end: portier closes after its 421
    s.close()
    assert rest == b"", rest


def test_optional_plaintext_helo_client_is_introduced_before_its_helo(portier, certs, raw_backend):
    """starttls = optional: the client's HELO is the backend's to answer, so
    XCLIENT goes first, then the HELO as the client sent it, once, and the
    plaintext mail after it on the same session; the client hears portier's
    name for its HELO, and its MAIL answered by the backend."""
    b = raw_backend(xclient_backend())
    p = portier([("tls", harness.tls_items(certs.ec)),
                 starttls_listener("mx", "smtp", b.port,
                                   extra=[("xclient", "yes"), ("starttls", "optional")])])
    s = smtplib.SMTP("localhost", p.port("mx"), local_hostname="client.test",
                     timeout=10 * harness.SLOW)
    try:
        code, msg = s.helo()
        assert (code, msg) == (250, HOSTNAME.encode()), (code, msg)
        assert s.mail("a@example.net") == (250, b"ok")
        s.quit()
    finally:
        s.close()
    seen = b.wait_result()
    assert seen[0].startswith(b"EHLO "), seen
    assert seen[1].startswith(b"XCLIENT ADDR=127.0.0.1 PORT="), seen
    assert seen[2:] == [b"helo client.test\r\n", b"mail FROM:<a@example.net>\r\n",
                        b"quit\r\n"], seen


def backend_answering_ehlo_with(answer):
    """Greets, reads portier's EHLO and answers it with answer (None: closes
    without a word); then reads to the end. Returns every line it got."""
    def handler(c):
        f = c.makefile("rb")
        c.sendall(b"220 backend ESMTP\r\n")
        seen = [f.readline(1000)]
        if answer is None:
            return seen
        c.sendall(answer)
        for line in f:
            seen.append(line)
        return seen
    return handler


def refused_before_xclient(portier, certs, raw_backend, answer):
    """A client's STARTTLS session before a backend that answers portier's
    EHLO with answer: the client reads portier's 421 unasked right after TLS,
    then the end; the backend got portier's EHLO and nothing after it (no
    XCLIENT, no byte of the client's); one refusal is counted, as a backend
    down and as a backend that failed its greeting. Returns the reason the
    log gives for the refusal."""
    b = raw_backend(backend_answering_ehlo_with(answer))
    p = portier([("tls", harness.tls_items(certs.ec)),
                 starttls_listener("sub", "smtp", b.port, extra=[("xclient", "yes")])],
                glob=[("stats", "127.0.0.1:0")])
    s = smtplib.SMTP("localhost", p.port("sub"), local_hostname="client.test",
                     timeout=10 * harness.SLOW)
    try:
        s.ehlo()
        s.starttls(context=certs.client_context())
        me = s.sock.getsockname()[1]
        code, msg = s.getreply()
        rest = s.file.read()
    finally:
        s.close()
    assert (code, msg) == (421, b"4.3.0 %s service not available" % HOSTNAME.encode()), \
        (code, msg)
    assert rest == b"", rest
    assert b.wait_result() == [b"EHLO %s\r\n" % HOSTNAME.encode()]
    why = p.wait_log(r"^.*\[sub\] client=127\.0\.0\.1:%d: (.*); refusing in smtp$" % me)
    line = p.wait_log(r"\[sub\] close client=127\.0\.0\.1:%d .*" % me).group(0)
    assert line.endswith(": backend unavailable, refused in protocol"), line
    from test_metrics import scrape, value

    def counted():
        text = scrape(p.port("[stats]"))
        return value(text, "portier_connections_closed_total", listener="sub",
                     reason="backend_down") == 1 and text
    text = harness.wait_for(counted, 5, "the refused connection to be counted")
    assert value(text, "portier_refusals_total", listener="sub") == 1
    assert value(text, "portier_backend_connect_failures_total", listener="sub",
                 kind="greeting") == 1
    return why.group(1)


@pytest.mark.parametrize("answer,logged", [
    (b"554 5.7.1 no\r\n", "backend refused portier's EHLO before XCLIENT"),
    (b"2x0 hi\r\n", "malformed or oversized backend reply to portier's EHLO before XCLIENT")],
    ids=["refused", "malformed"])
def test_backend_refusing_portiers_ehlo_is_refused_in_smtp(portier, certs, raw_backend,
                                                          answer, logged):
    """The backend refuses the EHLO portier sends before XCLIENT (a 554), or
    answers it with no SMTP reply at all: XCLIENT cannot be sent, so the
    client gets the 421 of an unavailable backend, and the log says which
    (not a missing XCLIENT offer)."""
    why = refused_before_xclient(portier, certs, raw_backend, answer)
    assert why == logged, why


def test_backend_closing_after_portiers_ehlo_is_refused_in_smtp(portier, certs, raw_backend):
    """The backend closes after portier's EHLO without a word: the log names
    the reply portier was waiting for."""
    why = refused_before_xclient(portier, certs, raw_backend, None)
    assert why == "backend closed before its reply to portier's EHLO (for XCLIENT)", why
