"""A backend that closes a connection its client has not used yet.

In a protocol where the client speaks first (HTTP, LDAP), a backend ends an
unused connection at its own idle limit: nginx at client_header_timeout
(what a browser's preconnected socket meets), slapd at idletimeout. That is
no backend that is down, and the client must not be told so: portier keeps
the client's connection, connects again when the client's first bytes come
and relays them there (docs/ARCHITECTURE.md, REDIAL). Only when that new
connection fails is the client refused, answering what it asked. The
backends here are the real ones, with their idle limits at a second."""

import os
import re
import signal
import threading

import pytest

import harness
from harness import listener, tls_items
from starttls_support import ANSWER, LDAPResult, ldap_search, ldap_split
from test_send_proxy import V2_SIG, read_v2

PARKED = (r"\[%s\] client=127\.0\.0\.1:%d: backend closed the connection before sending a "
          r"byte, and the client has sent none yet: a new connection when it does$")

@pytest.fixture
def nginx(workdir):
    """nginx that closes a connection without a request after 1 s."""
    proc = harness.start_nginx(workdir, http=["client_header_timeout 1s"])
    yield proc
    proc.stop()


def web(portier, certs, backend_port, extra=()):
    return portier([("tls", tls_items(certs.ec)),
                    listener("web", backend_port, protocol="http", extra=list(extra))])


def parked_client(p, certs, name="web"):
    """A TLS client that said nothing until the backend closed its unused
    connection and portier said it keeps the client. Returns (client,
    its port)."""
    mark = p.mark()
    cli = harness.TLSClient(p.port(name), certs.client_context(), "localhost")
    me = cli.sock.getsockname()[1]
    p.wait_log(PARKED % (name, me), timeout=10, flags=re.M, since=mark)
    return cli, me


def get(cli, path):
    cli.send(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    return cli.recv_all()


def test_the_first_request_goes_to_a_new_backend_connection(portier, certs, nginx):
    """The browser's preconnect: the client speaks after nginx closed the
    connection portier had opened for it. It gets nginx's answer, not a
    502, and nothing is said to be down."""
    p = web(portier, certs, nginx.port)
    mark = p.mark()
    cli, me = parked_client(p, certs)
    try:
        got = get(cli, b"/after-the-idle-close")
    finally:
        cli.close()
    assert got.startswith(b"HTTP/1.1 200 "), got
    assert got.endswith(b"\r\n\r\nserved /after-the-idle-close\n"), got
    line = p.wait_log(r"\[web\] close client=127\.0\.0\.1:%d .*: (.*)$" % me, since=mark)
    assert line.group(1) == "backend closed", line.group(0)
    assert "warning" not in p.log()[mark:], p.log()[mark:]
    assert "refusing" not in p.log()[mark:], p.log()[mark:]
    served = harness.wait_for(
        lambda: [l for l in open(nginx.access_log).read().splitlines()
                 if '"GET /after-the-idle-close HTTP/1.1" 200 ' in l], 10,
        "nginx's access log line")
    assert len(served) == 1, served


def test_a_client_that_leaves_without_a_word_closes_quietly(portier, certs, nginx):
    p = web(portier, certs, nginx.port)
    mark = p.mark()
    cli, me = parked_client(p, certs)
    cli.close_notify()
    cli.close()
    line = p.wait_log(r"\[web\] close client=127\.0\.0\.1:%d .*: (.*)$" % me, since=mark)
    assert line.group(1) == "client closed; the backend had closed its unused connection", \
        line.group(0)
    assert "warning" not in p.log()[mark:], p.log()[mark:]


def test_a_client_that_leaves_without_close_notify_is_logged_so(portier, certs, raw_backend):
    """As in the relay, the close line says when the client's TLS ended
    without close_notify (a bare FIN)."""
    p = web(portier, certs, raw_backend(closes_at_once).port)
    mark = p.mark()
    cli, me = parked_client(p, certs)
    cli.close()
    line = p.wait_log(r"\[web\] close client=127\.0\.0\.1:%d .*: (.*)$" % me, since=mark)
    assert line.group(1) == ("client closed without close_notify; the backend had closed its "
                             "unused connection"), line.group(0)


def test_a_silent_client_meets_idle_timeout_from_its_last_activity(portier, certs, nginx):
    """idle_timeout counts from the client's last activity, not afresh from
    the backend's close, and the end is an idle close, not a refusal."""
    p = web(portier, certs, nginx.port, extra=[("idle_timeout", "3s")])
    mark = p.mark()
    cli, me = parked_client(p, certs)
    try:
        got = cli.recv_all()
    finally:
        cli.close()
    assert got == b"", got
    line = p.wait_log(r"\[web\] close client=127\.0\.0\.1:%d .* time=([\d.]+)s: (.*)$" % me,
                      since=mark)
    assert line.group(2) == "idle for 3s", line.group(0)
    # nginx closed at 1 s, so a deadline counted from there ends at 4 s.
    assert float(line.group(1)) < 3.9, line.group(0)
    assert "warning" not in p.log()[mark:], p.log()[mark:]


def test_a_backend_that_is_down_by_then_is_refused_at_the_request(portier, certs, nginx):
    """The new connection fails: now the backend is down for the client,
    and the request gets the 502 and the refusal's warning."""
    p = web(portier, certs, nginx.port)
    mark = p.mark()
    cli, me = parked_client(p, certs)
    nginx.stop()
    try:
        got = get(cli, b"/while-down")
    finally:
        cli.close()
    assert got.startswith(b"HTTP/1.1 502 "), got
    p.wait_log(r"warning: \[web\] client=127\.0\.0\.1:%d: backend 127\.0\.0\.1:%d: "
               r"Connection refused; refusing in http$" % (me, nginx.port), since=mark)


def test_the_h2_client_is_not_parked(portier, certs, nginx):
    """A client that agreed on h2 gets the backend's close passed on (its
    session ends with close_notify) as before: no HTTP/1 refusal fits it,
    and an h2 client sends its preface at once, so it has no unused
    connection to lose."""
    p = portier([("tls", tls_items(certs.ec)),
                 listener("h2", nginx.port, protocol="http", extra=[("alpn", "h2")])])
    mark = p.mark()
    ctx = certs.client_context()
    ctx.set_alpn_protocols(["h2"])
    cli = harness.TLSClient(p.port("h2"), ctx, "localhost")
    try:
        me = cli.sock.getsockname()[1]
        assert cli.recv_all() == b""
        assert cli.got_close_notify
    finally:
        cli.close()
    p.wait_log(r"\[h2\] close client=127\.0\.0\.1:%d .*: backend closed$" % me, since=mark)
    assert "a new connection when it does" not in p.log()[mark:], p.log()[mark:]


@pytest.fixture
def slapd_idle(tmp_path):
    s = harness.Slapd(tmp_path, idletimeout=1)
    yield s
    s.stop()


def test_ldaps_search_after_slapd_closed_the_idle_connection(portier, certs, slapd_idle):
    """slapd ends a connection idle for idletimeout without a word; the
    client's first search after that is answered, not met with a Notice of
    Disconnection."""
    p = portier([("tls", tls_items(certs.ec)),
                 listener("ldaps", slapd_idle.port, protocol="ldap")])
    mark = p.mark()
    cli, me = parked_client(p, certs, "ldaps")
    try:
        cli.send(ldap_search(2, "uid=alice,ou=people,dc=example,dc=org",
                             attrs=("description",)))
        data = b""
        for _ in range(100):    # until the SearchResultDone, or the end
            msgs, _rest = ldap_split(data)
            if any(LDAPResult(m).op == 0x65 for m in msgs):
                break
            more = cli.recv_some()
            if not more:
                break
            data += more
    finally:
        cli.close()
    msgs, rest = ldap_split(data)
    assert rest == b"", data
    results = [LDAPResult(m) for m in msgs]
    assert [(r.msgid, r.op) for r in results] == [(2, 0x64), (2, 0x65)], results
    assert results[-1].code == 0, results[-1]
    assert slapd_idle.token.encode() in msgs[0], msgs[0]
    assert "warning" not in p.log()[mark:], p.log()[mark:]


# ---- the worker drains (SIGQUIT, or a reload's new workers took over) ----

def closes_at_once(c):
    """A backend that ends every connection before a byte, as nginx does at
    client_header_timeout, without the second's wait."""
    return "closed"


def test_a_parked_client_ends_when_a_reload_drains_its_worker(portier, certs, raw_backend):
    """A parked connection holds nothing in flight: when its worker drains,
    it ends at once, quietly. Kept, it would hold the old worker for
    idle_timeout (60 s for http, 15 min for ldap) and send the client's
    request to the backend of the configuration being replaced."""
    old, new = raw_backend(closes_at_once), raw_backend(closes_at_once)
    p = web(portier, certs, old.port)
    cli, me = parked_client(p, certs)
    try:
        p.rewrite([("tls", tls_items(certs.ec)), listener("web", new.port, protocol="http")])
        mark = p.reload()
        line = p.wait_log(r"\[web\] close client=127\.0\.0\.1:%d .*: (.*)$" % me, since=mark)
        assert line.group(1) == "draining; the backend had closed its unused connection", \
            line.group(0)
        assert cli.recv_all() == b""
    finally:
        cli.close()
    assert old.wait_result() == "closed"
    assert old.results == [] and new.results == [], (old.results, new.results)
    p.wait_log(r"worker \(pid \d+\) of the previous configuration has finished", since=mark)
    assert "warning" not in p.log()[mark:], p.log()[mark:]


def test_an_unused_connection_the_backend_ends_during_a_drain_ends_quietly(portier, certs,
                                                                           raw_backend):
    """A draining worker opens no new backend connection: the backend's
    close of an unused connection is passed on (no 502 for a request
    nobody made, and nothing left to wait for idle_timeout)."""
    accepted, release = threading.Event(), threading.Event()

    def close_when_told(c):
        accepted.set()
        assert release.wait(10 * harness.SLOW)
        return "closed"
    b = raw_backend(close_when_told)
    p = web(portier, certs, b.port)
    cli = harness.TLSClient(p.port("web"), certs.client_context(), "localhost")
    try:
        me = cli.sock.getsockname()[1]
        assert accepted.wait(10 * harness.SLOW)
        mark = p.mark()
        os.kill(p.proc.pid, signal.SIGQUIT)
        p.wait_log(r"SIGQUIT: no longer accepting; draining 1 connection$", flags=re.M,
                   since=mark)
        release.set()
        line = p.wait_log(r"\[web\] close client=127\.0\.0\.1:%d .*: (.*)$" % me, since=mark)
        assert line.group(1) == ("backend closed the connection before sending a byte; "
                                 "not kept while draining"), line.group(0)
        assert cli.recv_all() == b""
    finally:
        release.set()
        cli.close()
    assert b.wait_result() == "closed"
    p.wait_log(r"drained: the last worker has finished; exiting with status 0", since=mark)
    assert "a new connection when it does" not in p.log()[mark:], p.log()[mark:]
    assert "warning" not in p.log()[mark:], p.log()[mark:]


# ---- the backend's end and the client's first bytes in one wakeup ----

def ss(*filters):
    """ss -tnH lines for loopback TCP sockets matching the filter words."""
    return harness.run(["ss", "-tnH"] + list(filters)).out.splitlines()


def test_a_request_that_meets_the_backends_end_in_one_wakeup_goes_to_a_new_connection(
        portier, certs, raw_backend):
    """The backend's FIN is already in portier's socket when the client's
    first request comes, and the worker sees both in one wakeup (a busy
    loop): the request never reached the backend, so it is the unused
    connection's case, not a refusal. The worker is stopped while both
    arrive; ss shows each waiting before it goes on."""
    ended, first_held, answered = threading.Event(), threading.Event(), []
    handled, lock = [], threading.Lock()

    def first_ends_then_serve(c):
        # By order of the connections, not by `ended`: the backend's thread
        # for the first may start only after `ended` is set (it accepts
        # every 0.1 s), and would then serve it and never end it.
        with lock:
            first = not handled
            handled.append(c)
        if first:
            first_held.set()
            ended.wait(10 * harness.SLOW)
            return "closed"
        data = b""
        while b"\r\n\r\n" not in data:
            more = c.recv(4096)
            assert more, data
            data += more
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nserved\n")
        answered.append(data)
        return "served"
    b = raw_backend(first_ends_then_serve)
    p = web(portier, certs, b.port)
    worker = p.worker_pid()
    cli = harness.TLSClient(p.port("web"), certs.client_context(), "localhost")
    try:
        me = cli.sock.getsockname()[1]
        harness.wait_for(lambda: ss("state", "established", "dport", "= :%d" % b.port), 10,
                         "portier's connection to the backend")
        assert first_held.wait(10 * harness.SLOW), "the backend's thread for it"
        mark = p.mark()
        os.kill(worker, signal.SIGSTOP)
        try:
            ended.set()
            harness.wait_for(lambda: ss("state", "close-wait", "dport", "= :%d" % b.port), 10,
                             "the backend's FIN at portier's socket")
            cli.send(b"GET /raced HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            harness.wait_for(lambda: [l for l in ss("sport", "= :%d" % p.port("web"),
                                                    "dport", "= :%d" % me)
                                      if int(l.split()[1]) > 0], 10,
                             "the request in portier's socket")
        finally:
            os.kill(worker, signal.SIGCONT)
        got = cli.recv_all()
    finally:
        ended.set()
        cli.close()
    assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"\r\n\r\nserved\n"), got
    assert b.wait_result() == "closed"
    assert b.wait_result() == "served"
    assert answered[0].startswith(b"GET /raced "), answered
    p.wait_log(r"\[web\] client=127\.0\.0\.1:%d: backend (closed|reset) the connection before "
               r"sending a byte" % me, since=mark)
    assert "warning" not in p.log()[mark:], p.log()[mark:]


def tcp_counts(sport, dport):
    """(receive queue, bytes_sent, bytes_received) of the loopback TCP socket
    from port sport to dport, as ss shows them."""
    text = " ".join(ss("-i", "sport", "= :%d" % sport, "dport", "= :%d" % dport))
    m = re.search(r"^\S+\s+(\d+)\s+\d+\s", text)
    assert m, text
    sent = re.search(r"\bbytes_sent:(\d+)", text)
    got = re.search(r"\bbytes_received:(\d+)", text)
    return int(m.group(1)), int(sent.group(1)) if sent else 0, int(got.group(1)) if got else 0


def read_by_portier(portier_port, client_port, sent_before):
    """The client has sent more than sent_before bytes (a paced socket may
    hold them a moment), and portier has read all of them: its socket
    received as many, and its receive queue is empty."""
    queued, _, received = tcp_counts(portier_port, client_port)
    _, sent, _ = tcp_counts(client_port, portier_port)
    return sent > sent_before and queued == 0 and received == sent


def test_half_an_ldap_request_held_by_the_filter_goes_to_a_new_connection(portier, certs,
                                                                          raw_backend):
    """The LDAP filter holds the start of a request until it is whole; if
    the backend ends meanwhile (slapd's idletimeout: a connection that has
    not sent a whole request is idle to it), no byte of the client's reached
    it, and the request goes to a new connection when it is whole, instead
    of a Notice of Disconnection."""
    release, seen = threading.Event(), []

    def first_ends_then_answer(c):
        if not seen:
            seen.append("first")
            assert release.wait(10 * harness.SLOW)
            return "closed"
        data = b""
        while not ldap_split(data)[0]:
            more = c.recv(4096)
            assert more, data
            data += more
        msg = ldap_split(data)[0][0]
        c.sendall(ANSWER["ldap"](msg))
        return msg
    b = raw_backend(first_ends_then_answer)
    p = portier([("tls", tls_items(certs.ec)), listener("ldaps", b.port, protocol="ldap")])
    search = ldap_search(2, "dc=example,dc=org")
    cli = harness.TLSClient(p.port("ldaps"), certs.client_context(), "localhost")
    try:
        me = cli.sock.getsockname()[1]
        harness.wait_for(lambda: seen, 10, "portier's connection to the backend")
        mark = p.mark()
        sent_before = tcp_counts(me, p.port("ldaps"))[1]
        cli.send(search[:5])       # not yet its operation: the filter holds it
        harness.wait_for(lambda: read_by_portier(p.port("ldaps"), me, sent_before), 10,
                         "portier to read the start of the request")
        release.set()
        # Portier has seen the end (parked, or refused) before the rest.
        p.wait_log(r"\[ldaps\] client=127\.0\.0\.1:%d: backend closed the connection before "
                   r"sending a byte" % me, since=mark)
        cli.send(search[5:])
        data = b""
        for _ in range(20):     # until the answer, or the end
            if ldap_split(data)[0]:
                break
            more = cli.recv_some()
            if not more:
                break
            data += more
        msgs = ldap_split(data)[0]
    finally:
        release.set()
        cli.close()
    assert [(LDAPResult(m).msgid, LDAPResult(m).op) for m in msgs] == [(2, 0x65)], \
        [LDAPResult(m) for m in msgs]
    assert b.wait_result() == "closed"
    assert b.wait_result() == search
    p.wait_log(r"\[ldaps\] client=127\.0\.0\.1:%d: backend closed the connection before "
               r"sending a byte, and the client's first bytes had not reached it: a new "
               r"connection for them$" % me, flags=re.M, since=mark)
    assert "warning" not in p.log()[mark:], p.log()[mark:]


def test_the_new_connection_gets_the_proxy_header_once(portier, certs, raw_backend):
    """send_proxy: the header opens the new connection too, once, before
    the request, and names the client as the first one did."""
    firsts = []

    def header_then_end_then_serve(c):
        h = read_v2(c)
        if not firsts:
            firsts.append(h)
            return "closed"
        data = b""
        while b"\r\n\r\n" not in data:
            more = c.recv(4096)
            assert more, data
            data += more
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nserved\n")
        return h, data
    b = raw_backend(header_then_end_then_serve)
    p = web(portier, certs, b.port, extra=[("send_proxy", "v2")])
    cli, me = parked_client(p, certs)
    try:
        got = get(cli, b"/proxied")
    finally:
        cli.close()
    assert got.endswith(b"\r\n\r\nserved\n"), got
    assert b.wait_result() == "closed"
    h, data = b.wait_result()
    assert h["src"] == ("127.0.0.1", me) == firsts[0]["src"], (h, firsts)
    assert data.startswith(b"GET /proxied HTTP/1.1\r\n") and V2_SIG not in data, data
