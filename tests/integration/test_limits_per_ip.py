"""Per-client limits: max_connections_per_ip and rate_per_ip, counted across
workers in the shared region. A client over a limit on an implicit-TLS
listener is closed before any handshake; one on a STARTTLS listener hears
the protocol's "try later" (SMTP 421 4.7.0); the log says so once per
client per interval, and refused clients cost the worker no CPU."""

import re
import signal
import socket
import ssl
import time

import pytest

import harness
from hostile_support import cpu_finding
from test_metrics import scrape, value

LINE = r"\[%s\] client=%s:\d+: over %s; refusing it, logged once per 60s"


def tls_sections(certs, backend_port, **limits):
    items = [("listen", "127.0.0.1:0"), ("protocol", "http"),
             ("backend", "127.0.0.1:%d" % backend_port)] + list(limits.items())
    return [("tls", harness.tls_items(certs.ec)), ("web", items)]


def tls_client(port, certs, src="127.0.0.1"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5 * harness.SLOW,
                                   source_address=(src, 0))
    return certs.client_context().wrap_socket(raw, server_hostname="localhost")


def closed_unheard(port, src="127.0.0.1"):
    """Connect from src and send nothing: True if portier closed the
    connection without a byte (an implicit-TLS server that meant to serve
    would wait for the ClientHello)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=3 * harness.SLOW,
                                 source_address=(src, 0))
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


def refusals(p, since, name, src, what):
    return len(re.findall(LINE % (name, re.escape(src), re.escape(what)),
                          p.log()[since:]))


def test_tls_listener_closes_the_extra_client_before_the_handshake(portier, certs,
                                                                   http_backend):
    p = portier(tls_sections(certs, http_backend.port, max_connections_per_ip="3"))
    port = p.port("web")
    held = [tls_client(port, certs) for _ in range(3)]
    mark = p.mark()
    assert closed_unheard(port)
    # The TLS client of the same address gets no ServerHello either.
    try:
        tls_client(port, certs).close()
        raise AssertionError("a fourth TLS client of 127.0.0.1 got through")
    except (ssl.SSLError, ConnectionResetError, OSError):
        pass
    p.wait_log(LINE % ("web", r"127\.0\.0\.1", re.escape("max_connections_per_ip (3)")),
               since=mark)
    # Another address is another client.
    other = tls_client(port, certs, src="127.0.0.2")
    other.close()
    # One line for the two refusals: once per client per interval.
    assert refusals(p, mark, "web", "127.0.0.1", "max_connections_per_ip (3)") == 1
    # No close line per refused connection: the refusals leave no trace
    # beyond that one line.
    assert "reason_code" not in p.log()[mark:] and "over a per-client limit" not in p.log()[mark:]
    # A close gives the client its place back.
    held.pop().close()
    harness.wait_for(lambda: not closed_unheard_quick(port), 5 * harness.SLOW,
                     "127.0.0.1 to get in again")
    for c in held:
        c.close()


def closed_unheard_quick(port):
    """closed_unheard with a short wait: False when the connection stayed
    open for 0.3 s (it was let in)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(0.3)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


def smtp_sections(certs, backend_port, **limits):
    items = [("listen", "127.0.0.1:0"), ("mode", "starttls"), ("protocol", "smtp"),
             ("hostname", "mx.test"),
             ("backend", "127.0.0.1:%d" % backend_port)] + list(limits.items())
    return [("tls", harness.tls_items(certs.ec)), ("smtp", items)]


def smtp_greeting(port, src="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * harness.SLOW,
                                 source_address=(src, 0))
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(512)
        if not chunk:
            break
        data += chunk
    return s, data


def test_starttls_smtp_listener_says_421_4_7_0(portier, certs, closed_port):
    p = portier(smtp_sections(certs, closed_port, max_connections_per_ip="2"))
    port = p.port("smtp")
    held = []
    for _ in range(2):
        s, g = smtp_greeting(port)
        assert g.startswith(b"220 mx.test"), g
        held.append(s)
    mark = p.mark()
    s, g = smtp_greeting(port)
    assert g.startswith(b"421 4.7.0 mx.test "), g
    assert s.recv(64) == b""   # and then the end
    s.close()
    p.wait_log(LINE % ("smtp", r"127\.0\.0\.1", re.escape("max_connections_per_ip (2)")),
               since=mark)
    s, g = smtp_greeting(port, src="127.0.0.2")
    assert g.startswith(b"220 mx.test"), g
    s.close()
    for s in held:
        s.close()


def test_rate_with_burst(portier, certs, http_backend):
    # 1 a minute, 3 at once: three clients in a row, then a refusal.
    p = portier(tls_sections(certs, http_backend.port, rate_per_ip="1/m",
                             rate_burst="3"), glob=[("stats", "127.0.0.1:0")])
    port = p.port("web")
    for _ in range(3):
        tls_client(port, certs).close()
    mark = p.mark()
    assert closed_unheard(port)
    assert closed_unheard(port)
    p.wait_log(LINE % ("web", r"127\.0\.0\.1", re.escape("rate_per_ip (1/m, burst 3)")),
               since=mark)
    assert refusals(p, mark, "web", "127.0.0.1", "rate_per_ip (1/m, burst 3)") == 1
    tls_client(port, certs, src="127.0.0.2").close()
    # Counted once per refused connection, by the limit that refused it;
    # no handshake was started for them.
    text = scrape(p.port("[stats]"))
    assert value(text, "portier_limited_total", listener="web", limit="rate_per_ip") == 2
    assert value(text, "portier_limited_total", listener="web",
                 limit="max_connections_per_ip") == 0
    assert value(text, "portier_connections_closed_total", listener="web",
                 reason="limited") == 2
    # Under any reason (they were counted as "other" once).
    failures = re.findall(r'^portier_handshake_failures_total\{[^}]*listener="web"[^}]*\} (\d+)$',
                          text, re.M)
    assert failures and all(n == "0" for n in failures), text
    assert "handshake failed" not in p.log()[mark:], p.log()[mark:]


def client_sockets_by_pid(pids, port):
    """{pid: established sockets of 127.0.0.1:port it holds}."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
                inodes.add(fields[9])
    out = {}
    for pid in pids:
        n = 0
        for fd in harness.os.listdir("/proc/%d/fd" % pid):
            try:
                link = harness.os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            m = re.fullmatch(r"socket:\[(\d+)\]", link)
            n += bool(m and m.group(1) in inodes)
        out[pid] = n
    return out


def test_two_workers_count_together(portier, certs, http_backend):
    p = portier(tls_sections(certs, http_backend.port, max_connections_per_ip="6"),
                glob=[("workers", "2")])
    port = p.port("web")
    pids = [p.worker_pid(1), p.worker_pid(2)]
    # Six clients (the limit), held by both workers. The workers share one
    # listening socket and whichever wakes first accepts, so the worker that
    # took the first three is stopped while the other three connect: then
    # the other one has to accept them.
    held = [tls_client(port, certs) for _ in range(3)]
    by_pid = client_sockets_by_pid(pids, port)
    assert sum(by_pid.values()) == 3, by_pid
    busiest = max(pids, key=lambda pid: by_pid[pid])
    harness.os.kill(busiest, signal.SIGSTOP)
    try:
        held += [tls_client(port, certs) for _ in range(3)]
    finally:
        harness.os.kill(busiest, signal.SIGCONT)
    by_pid = client_sockets_by_pid(pids, port)
    assert sum(by_pid.values()) == 6, by_pid
    assert min(by_pid.values()) > 0, by_pid
    mark = p.mark()
    for _ in range(4):
        assert closed_unheard(port)
    p.wait_log(LINE % ("web", r"127\.0\.0\.1", re.escape("max_connections_per_ip (6)")),
               since=mark)
    # Whichever worker took them refused them, and the client is logged once.
    assert refusals(p, mark, "web", "127.0.0.1", "max_connections_per_ip (6)") == 1
    for c in held:
        c.close()


def test_a_killed_workers_clients_are_not_counted_for_good(portier, certs, http_backend):
    """A worker killed (kill -9, as a crash) while it holds a client's
    connections closes nothing itself: the master gives back its share of
    the per-client count and of the active gauge when it reaps it. They
    stayed counted until restart: a client at its max_connections_per_ip
    (a NAT'd site) was locked out for good."""
    p = portier(tls_sections(certs, http_backend.port, max_connections_per_ip="3"),
                glob=[("workers", "1"), ("stats", "127.0.0.1:0")])
    port, stats = p.port("web"), p.port("[stats]")
    first = p.worker_pid(1)
    held = [tls_client(port, certs) for _ in range(3)]
    assert closed_unheard(port)
    assert value(scrape(stats), "portier_connections_active", listener="web") == 3
    mark = p.mark()
    harness.os.kill(first, signal.SIGKILL)
    p.wait_log(r"worker 1 \(pid %d\) was killed by signal 9" % first, since=mark)
    harness.wait_for(lambda: p.workers(since=mark).get(1, first) != first,
                     10 * harness.SLOW, "the master to start another worker")
    for c in held:
        c.close()
    harness.wait_for(lambda: harness.port_open(stats), 10 * harness.SLOW,
                     "the new worker to serve")
    # The client has its three places back, and no more; the gauge counts
    # those three, not the dead worker's too.
    held = [tls_client(port, certs) for _ in range(3)]   # each handshake done
    assert closed_unheard(port)
    assert value(scrape(stats), "portier_connections_active", listener="web") == 3
    for c in held:
        c.close()


def test_listener_names_that_come_and_go_do_not_use_up_the_counter_slots(
        portier, certs, http_backend):
    """Three reloads of 100 new listener names each, 301 names in all for
    256 counter slots: the third batch takes the slots of the first, gone
    from the configuration with no connection open. The last listener is
    counted and its max_connections_per_ip holds. Slots were never given
    back: it got none ("no free counter slot") and its per-client limit
    was off."""
    def batch(tag, limited=False):
        out = [harness.listener("%s%d" % (tag, i), http_backend.port, mode="plain")
               for i in range(99)]
        out.append(tls_sections(certs, http_backend.port, max_connections_per_ip="1")[1]
                   if limited else harness.listener("%s99" % tag, http_backend.port, mode="plain"))
        return out

    tls = ("tls", harness.tls_items(certs.ec))
    p = portier([tls] + batch("a"), glob=[("workers", "1"), ("stats", "127.0.0.1:0")])
    for tag, limited in (("b", False), ("c", True)):
        p.rewrite([tls] + batch(tag, limited))
        p.reload()
    assert "no free counter slot" not in p.log(), p.log()[-2000:]
    port = p.port("web")
    held = tls_client(port, certs)
    try:
        assert closed_unheard(port)
        text = scrape(p.port("[stats]"))
        assert value(text, "portier_connections_active", listener="web") == 1
        assert value(text, "portier_connections_accepted_total", listener="c98") == 0
        assert 'listener="a0"' not in text and 'listener="b0"' in text
    finally:
        held.close()


def test_refused_clients_that_stay_cost_no_cpu(portier, certs, closed_port):
    p = portier(smtp_sections(certs, closed_port, max_connections_per_ip="1"))
    port = p.port("smtp")
    first, g = smtp_greeting(port)
    assert g.startswith(b"220 "), g
    # A flood of clients over the limit that read their 421 and then sit
    # on the connection, and more that never read at all.
    flood = []
    for i in range(100):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        flood.append(s)
    deadline = time.monotonic() + 10 * harness.SLOW
    for s in flood[:50]:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        assert s.recv(64).startswith(b"421 4.7.0 ")
    spin = cpu_finding(p.worker_pid(), "100 refused clients held their connections")
    assert spin is None, spin
    assert refusals(p, 0, "smtp", "127.0.0.1", "max_connections_per_ip (1)") == 1
    for s in flood:
        s.close()
    first.close()


def test_redirect_listener_says_503_with_retry_after(portier):
    p = portier([("redir", [("listen", "127.0.0.1:0"), ("mode", "redirect"),
                            ("protocol", "http"), ("max_connections_per_ip", "1")])])
    port = p.port("redir")
    held = socket.create_connection(("127.0.0.1", port), timeout=5 * harness.SLOW)
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * harness.SLOW)
    s.sendall(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n")
    data = b""
    for _ in range(64):   # bounded: the reply is one small packet or a few
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    head = data.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 503 Service Unavailable", data
    assert b"Retry-After: 60" in head[1:], data
    # The one held is still served: a redirect.
    held.sendall(b"GET /x HTTP/1.1\r\nHost: example.org\r\n\r\n")
    assert held.recv(4096).startswith(b"HTTP/1.1 301"), "no redirect for the first"
    held.close()


@pytest.mark.parametrize("protocol,first,refusal", [
    ("imap", b"* OK", b"* BYE [UNAVAILABLE] "),
    ("pop3", b"+OK", b"-ERR [SYS/TEMP] "),
    ("ldap", None, b"1.3.6.1.4.1.1466.20036"),   # Notice of Disconnection
])
def test_other_starttls_protocols_say_try_later(portier, certs, closed_port, protocol,
                                                first, refusal):
    p = portier([("tls", harness.tls_items(certs.ec)),
                 (protocol, [("listen", "127.0.0.1:0"), ("mode", "starttls"),
                             ("protocol", protocol), ("hostname", "mx.test"),
                             ("backend", "127.0.0.1:%d" % closed_port),
                             ("max_connections_per_ip", "1")])])
    port = p.port(protocol)
    held = socket.create_connection(("127.0.0.1", port), timeout=5 * harness.SLOW)
    if first is not None:
        assert held.recv(512).startswith(first)
    # (LDAP has no greeting; its held connection counts all the same: the
    # one worker accepts from the queue in order, the held one first.)
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * harness.SLOW)
    data = harness.read_to_eof(s, 8192)   # bounded: one reply, then the end
    s.close()
    held.close()
    assert refusal in data, data
