"""[portier] max_connections: the connections one worker holds over all
its listeners together. At the limit every listener stops accepting (its
watcher off, the worker idle) until one closes, with one log line per
episode; a value out of range is refused with file:line."""

import socket
import ssl

import pytest

import harness
from harness import portier_check
from hostile_support import cpu_finding
from test_config_check import base, check_error
from test_limits import accept_queue, get, tls_connect
from test_metrics import scrape, value

FULL = r"max_connections \(2\) of \[portier\] reached by this worker; " \
       r"not accepting on any listener until one closes"


def two_listeners(certs, backend_port):
    def web():
        return [("listen", "127.0.0.1:0"), ("protocol", "http"),
                ("backend", "127.0.0.1:%d" % backend_port)]
    return [("tls", harness.tls_items(certs.ec)), ("a", web()), ("b", web())]


def waiting(port, certs):
    """A client the kernel has queued for port: its ClientHello is out, no
    answer yet."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5 * harness.SLOW)
    c = certs.client_context().wrap_socket(raw, server_hostname="localhost",
                                           do_handshake_on_connect=False)
    c.setblocking(False)
    with pytest.raises(ssl.SSLWantReadError):
        c.do_handshake()
    return c


def test_global_max_connections_pauses_every_listener(portier, certs, http_backend):
    p = portier(two_listeners(certs, http_backend.port),
                glob=[("workers", "1"), ("max_connections", "2"), ("stats", "127.0.0.1:0")])
    pa, pb = p.port("a"), p.port("b")
    # One connection on each listener: each is far below its own limit
    # (10000), the worker is at its total.
    x, y = tls_connect(pa, certs), tls_connect(pb, certs)
    get(x)
    get(y)
    p.wait_log(FULL)
    # The metrics endpoint still answers: its scrapes are not connections,
    # and a full worker is when an admin looks.
    text = scrape(p.port("[stats]"))
    assert value(text, "portier_connections_active", listener="a") == 1, text
    assert "[a] max_connections" not in p.log() and "[b] max_connections" not in p.log()
    third, fourth = waiting(pa, certs), waiting(pb, certs)
    harness.wait_for(lambda: accept_queue(pa) == 1 and accept_queue(pb) == 1, 5,
                     "a client queued on each listener")
    # y's request is served after both clients became acceptable: an
    # accepting listener would have taken them in that loop.
    assert b"200" in get(y).split(b"\r\n")[0]
    assert (accept_queue(pa), accept_queue(pb)) == (1, 1), "accepted beyond the total"
    # Paused means the watchers are off, not a loop declining the waiting
    # clients again and again: the worker idles.
    spin = cpu_finding(p.worker_pid(), "clients waited beyond [portier] max_connections")
    assert spin is None, spin
    # x closes: one waiting client is taken and served, which fills the
    # worker again (a second episode, a second line); the other waits on.
    x.close()
    harness.wait_for(lambda: (accept_queue(pa) or 0) + (accept_queue(pb) or 0) == 1,
                     5 * harness.SLOW, "one waiting client to be accepted")
    taken, left = (third, fourth) if accept_queue(pa) == 0 else (fourth, third)
    taken.setblocking(True)
    taken.settimeout(5 * harness.SLOW)
    taken.do_handshake()
    assert b"200" in get(taken).split(b"\r\n")[0]
    harness.wait_for(lambda: episodes(p) == 2, 5,
                     "the second episode's line")
    # taken closes: the last waiting client is taken, beside y, which is
    # the total again (a third episode, a third line), and served.
    taken.close()
    left.setblocking(True)
    left.settimeout(5 * harness.SLOW)
    left.do_handshake()
    assert b"200" in get(left).split(b"\r\n")[0]
    harness.wait_for(lambda: episodes(p) == 3, 5, "the third episode's line")
    mark = p.mark()
    y.close()
    left.close()
    harness.wait_for(lambda: len(harness.close_lines(p.log()[mark:])) == 2, 5 * harness.SLOW,
                     "both to close")
    # Below the total again, accepting again: a new client is served at once.
    z = tls_connect(pa, certs)
    assert b"200" in get(z).split(b"\r\n")[0]
    z.close()
    assert episodes(p) == 3, p.log()


def episodes(p):
    return len(p.log().split("of [portier] reached")) - 1


@pytest.mark.parametrize("value", ["0", "1000001", "many"])
def test_global_max_connections_out_of_range_is_refused(workdir, certs, value):
    text = base(certs).replace("log = stderr", "log = stderr\nmax_connections = " + value)
    check_error(workdir, text, "max_connections = ", "portier", "max_connections",
                [r"from 1 to 1000000"])


def test_global_max_connections_in_range_passes(workdir, certs):
    text = base(certs).replace("log = stderr", "log = stderr\nmax_connections = 50000")
    rc, out, _ = portier_check(workdir, text)
    assert rc == 0, out
