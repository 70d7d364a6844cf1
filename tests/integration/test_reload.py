"""SIGHUP: the master reloads the config; new workers take over, the old
ones finish their connections; a config with errors changes nothing; not a
connection is lost on the way."""

import os
import re
import signal
import socket
import ssl
import threading
import time

import pytest

import harness
from harness import listener, tls_items


def web(certs, backend_port, name="web", **keys):
    return [("tls", tls_items(certs.ec)),
            listener(name, backend_port, protocol="http", extra=list(keys.items()))]


def get(port, ctx, path="/who", session=None):
    return harness.https_get(port, ctx, path, session)


@pytest.fixture
def backend_b():
    b = harness.HTTPBackend("b")
    yield b
    b.stop()


def test_reload_switches_to_the_new_configuration(portier, certs, http_backend, backend_b):
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port))
    port = p.port("web")
    ctx = certs.client_context()
    assert b"backend a GET /who" in get(port, ctx)[0]
    before = {1: p.worker_pid()}
    p.rewrite(web(certs, backend_b.port))
    mark = p.reload()
    assert p.port("web") == port, "a listen address that stays keeps its socket"
    harness.wait_for(lambda: 1 in p.workers(since=mark), 5 * harness.SLOW, "a new worker")
    for _ in range(5):
        assert b"backend b GET /who" in get(port, ctx)[0]
    # The old worker had nothing open: it finishes at once.
    p.wait_log(r"worker \(pid %d\) of the previous configuration has finished" % before[1],
               since=mark)
    assert not harness.alive(before[1])


def test_reload_with_errors_keeps_the_running_configuration(portier, certs, http_backend):
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port))
    port = p.port("web")
    before = {1: p.worker_pid()}
    p.rewrite([("tls", tls_items(certs.ec)),
               ("web", [("listen", "127.0.0.1:0"), ("mode", "tlss"),
                        ("backend", "127.0.0.1:%d" % http_backend.port)])])
    mark = p.reload(expect="reload refused")
    log = p.log()[mark:]
    # The error names file, line and key, as at start.
    assert re.search(r"portier\.ini:\d+: \[web\] mode: 'tlss' is not one of", log), log
    assert "still serving the configuration loaded before" in log
    assert p.workers() == before, "workers were replaced by a refused reload"
    assert b"backend a GET /who" in get(port, certs.client_context())[0]


def test_reload_loses_no_connection(portier, certs, http_backend):
    """Clients keep connecting through five reloads: every request gets its
    answer; and a connection opened before the reloads is still served by its
    old worker after them, which ends once that connection does."""
    p = portier(web(certs, http_backend.port))
    port = p.port("web")
    ctx = certs.client_context()
    old = p.worker_pid()
    # A keep-alive connection made before any reload.
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                           server_hostname="localhost")
    results = {"ok": 0, "bad": []}
    stop = threading.Event()

    def client():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                out = get(port, ctx, "/echo/x")[0]
                if b"200 OK" in out and b"method=GET path=/echo/x" in out:
                    results["ok"] += 1
                else:
                    results["bad"].append(out[:80])
            except OSError as e:
                results["bad"].append(repr(e))
    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            time.sleep(0.2)
            p.rewrite(web(certs, http_backend.port, idle_timeout="%ds" % (60 + i)))
            p.reload()
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert results["bad"] == [], results["bad"][:5]
    assert results["ok"] >= 20, results
    # The connection from before the reloads still works, on the first worker.
    held.sendall(b"GET /echo/held HTTP/1.1\r\nHost: localhost\r\n\r\n")
    reply = held.recv(65536)
    assert b"200 OK" in reply, reply
    assert harness.alive(old), "the draining worker ended too early"
    held.close()
    p.wait_log(r"worker \(pid %d\) of the previous configuration has finished" % old)


def test_reload_adds_and_removes_listeners(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port))
    ctx = certs.client_context()
    p.rewrite(web(certs, http_backend.port) +
              [listener("extra", http_backend.port, protocol="http")])
    p.reload()
    extra = p.port("extra")
    assert b"200 OK" in get(extra, ctx, "/echo/e")[0]
    p.rewrite(web(certs, http_backend.port))
    mark = p.reload()
    assert "extra" not in p.ports
    # Once the old workers let go (they have no connection), the port closes.
    harness.wait_for(lambda: not harness.port_open(extra), 5 * harness.SLOW,
                     "the removed listener's port to close")
    assert b"200 OK" in get(p.port("web"), ctx, "/echo/w")[0]
    assert "reloaded: 1 listeners on 1 sockets" in p.log()[mark:]


def test_a_session_resumes_across_a_reload(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port))
    ctx = certs.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    _, session, reused = get(p.port("web"), ctx)
    assert not reused and session.has_ticket
    p.rewrite(web(certs, http_backend.port, idle_timeout="61s"))
    mark = p.reload()
    harness.wait_for(lambda: 1 in p.workers(since=mark), 5 * harness.SLOW, "a new worker")
    out, _, reused = get(p.port("web"), ctx, session=session)
    assert b"200 OK" in out
    assert reused, "the ticket keys did not survive the reload"


def test_drain_timeout_closes_what_is_left(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port), glob=[("drain_timeout", "1s")])
    ctx = certs.client_context()
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", p.port("web")), timeout=10),
                           server_hostname="localhost")
    old = p.worker_pid()
    try:
        held.sendall(b"GET /echo/1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b"200 OK" in held.recv(65536)
        mark = p.reload()
        p.wait_log(r"worker 1: drain_timeout over with 1 connection still open; closing it", since=mark,
                   timeout=5 * harness.SLOW)
        p.wait_log(r"worker 1: \[web\] close .*: drain_timeout over after a reload", since=mark)
        p.wait_log(r"worker \(pid %d\) of the previous configuration has finished" % old,
                   since=mark)
    finally:
        held.close()


def test_sigterm_during_a_drain_stops_old_and_new_workers(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port))
    ctx = certs.client_context()
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", p.port("web")), timeout=10),
                           server_hostname="localhost")
    try:
        held.sendall(b"GET /echo/1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b"200 OK" in held.recv(65536)
        old = p.worker_pid()
        mark = p.reload()
        harness.wait_for(lambda: 1 in p.workers(since=mark), 5 * harness.SLOW, "a new worker")
        new = p.workers(since=mark)[1]
        p.stop()          # exit 0, no sanitizer report
        assert re.search(r"got signal 15, stopping 2 workers", p.log()), p.log()
        for pid in (old, new):
            assert not harness.alive(pid)
    finally:
        held.close()


def test_sigquit_to_the_master_is_ignored(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port))
    before = {1: p.worker_pid()}
    mark = p.mark()
    os.kill(p.proc.pid, signal.SIGQUIT)
    p.wait_log(r"SIGQUIT is what the master sends old workers; ignored", since=mark)
    assert p.proc.alive() and p.workers() == before
    assert b"200 OK" in get(p.port("web"), certs.client_context(), "/echo/q")[0]


def test_reload_replaces_the_certificate_without_dropping_a_connection(
        portier, certs, http_backend):
    """The ECDSA certificate is swapped for the RSA one by a reload: new
    connections get the new one, a connection made before keeps working."""
    p = portier(web(certs, http_backend.port))
    port = p.port("web")
    ctx = certs.client_context()
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                           server_hostname="localhost")
    try:
        first = held.getpeercert(binary_form=True)
        assert harness.first_pem_der(open(certs.ec.cert).read()) == first
        p.rewrite([("tls", tls_items(certs.rsa)),
                   listener("web", http_backend.port, protocol="http")])
        mark = p.reload()
        harness.wait_for(lambda: 1 in p.workers(since=mark), 5 * harness.SLOW, "a new worker")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                second = t.getpeercert(binary_form=True)
        assert first != second, "the reload did not change the certificate"
        assert harness.first_pem_der(open(certs.rsa.cert).read()) == second
        # The old connection is still relayed, by the old worker.
        held.sendall(b"GET /echo/old HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b"200 OK" in held.recv(65536)
    finally:
        held.close()


def test_reload_that_cannot_bind_is_refused(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        busy = taken.getsockname()[1]
        before = {1: p.worker_pid()}
        p.rewrite(web(certs, http_backend.port) +
                  [listener("extra", http_backend.port, protocol="http",
                            listen="127.0.0.1:%d" % busy)])
        mark = p.reload(expect="reload refused")
        assert re.search(r"\[extra\] listen: cannot listen on '127\.0\.0\.1:%d': Address "
                         r"already in use" % busy, p.log()[mark:]), p.log()[mark:]
        assert p.workers() == before
        assert "extra" not in p.ports
        assert b"200 OK" in get(p.port("web"), certs.client_context(), "/echo/b")[0]
    finally:
        taken.close()
