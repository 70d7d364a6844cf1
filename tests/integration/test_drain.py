"""SIGQUIT to the master: a graceful stop (nginx's). The listening sockets
close, the open connections run to their end, the master exits 0 after the
last worker; SIGTERM meanwhile is the fast stop."""

import os
import re
import signal
import socket
import ssl
import threading

import pytest

import harness

BODY = b"the whole answer, after the drain began\n" * 100


class GateBackend:
    """An HTTP backend that answers each request only once .release is set
    (bounded: 30s): a request in flight for as long as the test wants.
    .got is set when a request has arrived; .answered counts the answers."""

    def __init__(self, backlog=8):
        self.got = threading.Event()
        self.answered = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            c.settimeout(30)
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = c.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.got.set()
                self.release.wait(30)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                          b"Connection: close\r\n\r\n" % len(BODY) + BODY)
                with self.lock:
                    self.answered += 1
            except OSError:
                pass

    def stop(self):
        self.release.set()
        self.done = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def gate():
    g = GateBackend()
    yield g
    g.stop()


def start(portier, certs, gate, glob=()):
    return portier([("tls", harness.tls_items(certs.ec)),
                    ("web", [("listen", "127.0.0.1:0"), ("protocol", "http"),
                             ("backend", "127.0.0.1:%d" % gate.port)])],
                   glob=[("workers", "2")] + list(glob))


def in_flight(p, certs, gate):
    """A TLS client whose request the backend holds."""
    c = certs.client_context().wrap_socket(
        socket.create_connection(("127.0.0.1", p.port("web")), timeout=10 * harness.SLOW),
        server_hostname="localhost")
    c.sendall(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert gate.got.wait(10 * harness.SLOW), "the request did not reach the backend"
    return c


def read_all(c):
    data = b""
    for _ in range(10000):
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def quit_and_wait_draining(p):
    mark = p.mark()
    os.kill(p.proc.pid, signal.SIGQUIT)
    p.wait_log(r"got SIGQUIT, draining 2 workers: no longer accepting", since=mark)
    harness.wait_for(lambda: p.log()[mark:].count("SIGQUIT: no longer accepting; draining") == 2,
                     5 * harness.SLOW, "both workers to close their listening sockets")
    return mark


def test_sigquit_drains_a_request_in_flight_then_exits(portier, certs, gate):
    p = start(portier, certs, gate)
    port = p.port("web")
    workers = [p.worker_pid(1), p.worker_pid(2)]
    c = in_flight(p, certs, gate)
    try:
        mark = quit_and_wait_draining(p)
        # A reload now is none, and says so (it was silent).
        os.kill(p.proc.pid, signal.SIGHUP)
        p.wait_log(r"got SIGHUP while draining \(the drain goes on\): no reload$",
                   since=mark, flags=re.M)
        assert "reloading" not in p.log()[mark:], p.log()[mark:]
        # No socket listens any more, in the master or a worker: refused.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert p.proc.alive(), p.log()
        assert any(harness.alive(w) for w in workers), "the worker serving c ended"
        gate.release.set()
        data = read_all(c)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:200]
        assert data.endswith(b"\r\n\r\n" + BODY), len(data)
    finally:
        c.close()
    p.proc.p.wait(timeout=10 * harness.SLOW)
    p.wait_log(r"drained: the last worker has finished; exiting with status 0", since=mark)
    assert "killing" not in p.log()[mark:], p.log()[mark:]
    p.stop()                      # exit 0, no sanitizer report
    for w in workers:
        assert not harness.alive(w)


def test_connections_queued_when_the_drain_begins_are_served(portier):
    """Connections the kernel has completed but the worker has not yet
    accepted when SIGQUIT comes (here: 70, while the worker is stopped)
    are accepted and served as part of the drain, not reset with the
    listening socket (a load balancer cannot redispatch a connection it
    has already sent a request on)."""
    # Answers at once, with a deep listen queue (a Python HTTP server's
    # is 5, and 70 connects at once would wait for SYN retransmissions).
    b = GateBackend(backlog=256)
    b.release.set()
    p = portier([harness.listener("web", b.port, mode="plain", protocol="http")],
                glob=[("workers", "1"), ("stats", "127.0.0.1:0")])
    w = p.worker_pid(1)
    socks = []
    os.kill(w, signal.SIGSTOP)
    try:
        for i in range(70):             # more than one accept batch (64)
            s = socket.create_connection(("127.0.0.1", p.port("web")), timeout=20)
            s.sendall(b"GET /echo/q%d HTTP/1.0\r\nHost: localhost\r\n\r\n" % i)
            socks.append(s)
        # A scrape waits in the stats socket's queue too.
        scrape = socket.create_connection(("127.0.0.1", p.port("[stats]")), timeout=20)
        scrape.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        mark = p.mark()
        os.kill(p.proc.pid, signal.SIGQUIT)
        # The master has closed its copies of the listening sockets.
        p.wait_log(r"got SIGQUIT, draining 1 worker: no longer accepting", since=mark)
    finally:
        os.kill(w, signal.SIGCONT)
    answers = []
    for s in socks + [scrape]:
        got, err = harness.read_to_end(s)
        answers.append((got[:12], err))
        s.close()
    b.stop()
    assert answers == [(b"HTTP/1.1 200", None)] * 71, answers
    p.proc.p.wait(timeout=10 * harness.SLOW)
    p.wait_log(r"drained: the last worker has finished; exiting with status 0", since=mark)
    p.stop()


def listen_queue(port):
    """Connections waiting in the accept queue of 127.0.0.1:port (ss's
    Recv-Q of a listening socket)."""
    out = harness.run(["ss", "-ltnH", "sport = :%d" % port]).out.split()
    return int(out[1]) if out else -1


def test_connections_queued_when_a_reload_retires_a_worker_go_to_the_new_one(portier):
    """On a reload the listening sockets stay, held by the new workers: a
    connection waiting in the queue when an old worker gets its SIGQUIT is
    the new configuration's to serve, not the old worker's (it took the
    whole queue, as on a stop, and served it with the configuration the
    reload replaced). Both workers are stopped while ten connections queue;
    the old one then handles its SIGQUIT first."""
    a, b = GateBackend(backlog=64), GateBackend(backlog=64)
    a.release.set()
    b.release.set()
    p = portier([harness.listener("web", a.port, mode="plain", protocol="http")],
                glob=[("workers", "1")])
    port = p.port("web")
    old = p.worker_pid(1)
    socks, stopped = [], []
    try:
        os.kill(old, signal.SIGSTOP)
        stopped.append(old)
        p.rewrite([harness.listener("web", b.port, mode="plain", protocol="http")])
        mark = p.mark()
        os.kill(p.proc.pid, signal.SIGHUP)
        p.wait_log(r"reloaded: ", since=mark)
        harness.wait_for(lambda: p.workers(since=mark).get(1) not in (None, old), 5,
                         "the new worker's line")
        new = p.workers(since=mark)[1]
        os.kill(new, signal.SIGSTOP)
        stopped.append(new)
        for i in range(10):
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            s.sendall(b"GET /echo/r%d HTTP/1.0\r\nHost: localhost\r\n\r\n" % i)
            socks.append(s)
        harness.wait_for(lambda: listen_queue(port) == 10, 5, "ten queued connections")
        os.kill(old, signal.SIGCONT)
        stopped.remove(old)
        p.wait_log(r"SIGQUIT: no longer accepting; draining (\d+) connections?", since=mark)
        os.kill(new, signal.SIGCONT)
        stopped.remove(new)
        for s in socks:
            got, err = harness.read_to_end(s)
            assert (got[:12], err) == (b"HTTP/1.1 200", None)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        for s in socks:
            s.close()
        a.stop()
        b.stop()
    assert (a.answered, b.answered) == (0, 10)
    assert re.search(r"SIGQUIT: no longer accepting; draining 0 connections", p.log()[mark:])


def test_sigterm_during_a_drain_stops_at_once(portier, certs, gate):
    p = start(portier, certs, gate)
    workers = [p.worker_pid(1), p.worker_pid(2)]
    c = in_flight(p, certs, gate)
    try:
        mark = quit_and_wait_draining(p)
        assert p.proc.alive()
        os.kill(p.proc.pid, signal.SIGTERM)
        # drain_timeout is 30 minutes: an exit now is the fast stop.
        p.proc.p.wait(timeout=5 * harness.SLOW)
        p.wait_log(r"got signal 15 while draining: stopping [12] workers? at once", since=mark)
        # The request in flight is cut: no answer.
        c.settimeout(5 * harness.SLOW)
        try:
            data = read_all(c)
        except (ssl.SSLError, ConnectionResetError):
            data = b""
        assert data == b"", data[:200]
    finally:
        c.close()
    assert "drained:" not in p.log()[mark:]
    p.stop()
    for w in workers:
        assert not harness.alive(w)


def test_drain_timeout_ends_a_drain_that_a_connection_holds_up(portier, certs, gate):
    p = start(portier, certs, gate, glob=[("drain_timeout", "1s")])
    c = in_flight(p, certs, gate)
    try:
        mark = quit_and_wait_draining(p)
        p.wait_log(r"drain_timeout over with 1 connection still open; closing it", since=mark,
                   timeout=5 * harness.SLOW)
        p.wait_log(r"\[web\] close .*: drain_timeout over after SIGQUIT", since=mark)
        c.settimeout(5 * harness.SLOW)
        try:
            data = read_all(c)
        except (ssl.SSLError, ConnectionResetError):
            data = b""
        assert data == b"", data[:200]
    finally:
        c.close()
    p.proc.p.wait(timeout=10 * harness.SLOW)
    p.wait_log(r"drained: the last worker has finished; exiting with status 0", since=mark)
    p.stop()
