"""SIGHUP: the master reloads the config; new workers take over, the old
ones finish their connections; a config with errors changes nothing; not a
connection is lost on the way."""

import os
import re
import shutil
import signal
import socket
import ssl
import threading
import time

import pytest

import fileopens
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


def test_a_reload_naming_a_fifo_as_cert_is_refused_at_once(workdir, portier, certs,
                                                           http_backend):
    """A FIFO (or any file that is not a regular one) given as cert or key
    is refused by the reload at once, with the line that names it; the
    master opened it and waited for a writer, and all that time neither
    reaped workers nor heeded SIGTERM."""
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port))
    port = p.port("web")
    fifo = str(workdir / "renewed.pem")
    os.mkfifo(fifo)
    p.rewrite([("tls", [("cert", fifo), ("key", certs.ec.key)]),
               ("web", [("listen", "127.0.0.1:0"), ("mode", "tls"),
                        ("backend", "127.0.0.1:%d" % http_backend.port)])])
    mark = p.reload(expect="reload refused", timeout=5)
    log = p.log()[mark:]
    assert re.search(r"portier\.ini:\d+: \[tls\] cert: %s: not a regular file" %
                     re.escape(fifo), log), log
    assert b"backend a GET /who" in get(port, certs.client_context())[0]
    p.stop()


def test_a_sighup_as_soon_as_portier_says_it_started_is_a_reload(workdir, portier, certs,
                                                                  http_backend):
    """The master blocks the signals its loop reads before it writes the
    pid_file and the ports_file: a reload sent the moment they appear (a
    deploy hook at boot) waits for the loop. It came before the block, and
    SIGHUP's default action ended the master (seen in a CI run: the test
    reloading at once after the start found portier killed by SIGHUP).
    Here the master is held writing its pid_file while the SIGHUP comes."""
    pid_file = str(workdir / "portier.pid")
    open(pid_file, "w").close()
    p = fileopens.start_held(
        pid_file, lambda: portier(web(certs, http_backend.port), glob=[("pid_file", pid_file)]),
        lambda pid: os.kill(pid, signal.SIGHUP))
    p.wait_log(r"SIGHUP: reloading", timeout=10)
    p.wait_log(r"reloaded: ", timeout=10)
    assert p.proc.alive()
    p.stop()


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
    # Three clients request without pause; each reload waits until every
    # configuration so far has answered requests (no sleeps), and every
    # request made must get its answer: attempts == ok, exactly.
    lock = threading.Lock()
    results = {"ok": 0, "attempts": 0, "bad": []}
    phase = [0]                    # reloads done when a request started
    per_phase = [0] * 6            # answered requests, by that phase
    stop = threading.Event()

    def client():
        deadline = time.monotonic() + 60 * harness.SLOW
        while not stop.is_set() and time.monotonic() < deadline:
            ph = phase[0]
            with lock:
                results["attempts"] += 1
            try:
                out = get(port, ctx, "/echo/x")[0]
            except Exception as e:          # noqa: BLE001 - every failure counts
                out = repr(e).encode()
            with lock:
                if b"200 OK" in out and b"method=GET path=/echo/x" in out:
                    results["ok"] += 1
                    per_phase[ph] += 1
                else:
                    results["bad"].append(out[:80])

    def answered(ph, n=6):
        harness.wait_for(lambda: per_phase[ph] >= n or results["bad"], 10,
                         "%d answers after reload %d" % (n, ph))
        assert results["bad"] == [], results["bad"][:5]
    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            answered(i)
            p.rewrite(web(certs, http_backend.port, idle_timeout="%ds" % (60 + i)))
            p.reload()
            phase[0] = i + 1
        answered(5)
    finally:
        stop.set()
        for t in threads:
            t.join(30 * harness.SLOW)
    assert not any(t.is_alive() for t in threads), "a client thread hangs"
    assert results["bad"] == [], results["bad"][:5]
    assert results["ok"] == results["attempts"], results
    assert all(n >= 6 for n in per_phase), per_phase
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
        # The old worker's lines carry its generation: 1, the new one's 2.
        p.wait_log(r"worker 1\.1: drain_timeout over with 1 connection still open; closing it",
                   since=mark, timeout=5 * harness.SLOW)
        p.wait_log(r"worker 1\.1: \[web\] close .*: drain_timeout over after SIGQUIT", since=mark)
        p.wait_log(r"worker 2\.1: serving \(pid \d+\)", since=mark)
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


# ---- readiness: the old workers let go only once the new ones serve ---------
#
# No configuration makes a worker fail after the fork (the master checks
# everything a worker would need first), so these tests use the worker-only
# hook PORTIER_TEST_WORKER_FAIL=FILE (main.c): while FILE exists a new worker
# does not serve; it exits with status 1, or waits silently if FILE begins
# with "hang".

def started_since(p, mark):
    """[(worker number, pid)] from the "worker N started (pid P)" lines after mark."""
    return [(int(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"worker (\d+) started \(pid (\d+)\)", p.log()[mark:])]


def hup(p):
    """SIGHUP without waiting for a verdict (the harness waits for one that a
    failing reload does not give); returns the log offset before it."""
    mark = p.mark()
    os.kill(p.proc.pid, signal.SIGHUP)
    return mark


def ask(conn, path="/who"):
    """One request on a kept-alive TLS connection: the whole response."""
    conn.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
    out = b""
    while b"\r\n\r\n" not in out or len(out.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"Content-Length: (\d+)", out).group(1)):
        d = conn.recv(65536)
        assert d, "connection closed after %r" % out
        out += d
    return out


def serving(p, n=1):
    """The pids of the first n workers, once each says it serves (before
    that, a worker would still read the hook's file)."""
    harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", p.log())) >= n, 5,
                     "%d workers to serve" % n)
    pids = [int(x) for x in re.findall(r"serving \(pid (\d+)\)", p.log())[:n]]
    # The master logs "started" after fork() returns in it; a busy machine
    # may run the child to "serving" first. A mark taken now must not see
    # the master's line come in after it.
    for pid in pids:
        harness.wait_for(lambda: re.search(r"worker \d+ started \(pid %d\)" % pid, p.log()),
                         5, "the master's line for worker pid %d" % pid)
    return pids


@pytest.fixture
def fail_file(workdir, monkeypatch):
    """The hook's file (absent at first); portier inherits the variable."""
    path = os.path.join(str(workdir), "workers-fail")
    monkeypatch.setenv("PORTIER_TEST_WORKER_FAIL", path)
    return path


def test_a_reload_whose_workers_cannot_serve_keeps_the_running_configuration(
        portier, certs, http_backend, backend_b, fail_file):
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port), glob=[("workers", "2")])
    port = p.port("web")
    ctx = certs.client_context()
    old = set(serving(p, 2))
    assert old == set(p.workers().values())
    held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                           server_hostname="localhost")
    try:
        assert b"backend a GET /who" in ask(held)
        # The new configuration: another backend, and a listener of its own
        # on a port that must not stay open once the reload is undone.
        extra_port = harness.free_port()
        p.rewrite(web(certs, backend_b.port) +
                  [listener("extra", backend_b.port, protocol="http",
                            listen="127.0.0.1:%d" % extra_port)])
        with open(fail_file, "w") as f:
            f.write("exit\n")
        mark = hup(p)
        m = p.wait_log(r"reload failed: worker ([12]) \(pid (\d+)\) exited with status 1 "
                       r"before serving; keeping the running configuration", since=mark,
                       timeout=15)
        log = p.log()[mark:]
        assert "PORTIER_TEST_WORKER_FAIL: %s exists; not serving" % fail_file in log, log
        new = [pid for _, pid in started_since(p, mark)]
        assert len(new) == 2 and int(m.group(2)) in new, log
        # The new generation is gone (the other new worker was stopped) ...
        harness.wait_for(lambda: not any(harness.alive(pid) for pid in new), 15,
                         "the new workers to end")
        # ... and the old one never was told to let go.
        assert all(harness.alive(pid) for pid in old)
        log = p.log()[mark:]
        assert "reloaded" not in log and "no longer accepting" not in log, log
        assert not harness.port_open(extra_port), "the failed reload's new port stayed open"
        # Its connection and new ones are served by the old configuration.
        assert b"backend a GET /who" in ask(held)
        for _ in range(4):
            assert b"backend a GET /who" in get(port, ctx)[0]
    finally:
        held.close()
    # Once the workers can serve again, the same file reloads: the sockets
    # the failed attempt had taken were given back.
    os.unlink(fail_file)
    mark = p.reload()
    assert p.port("web") == port and harness.port_open(extra_port)
    for _ in range(3):
        assert b"backend b GET /who" in get(port, ctx)[0]
    for pid in old:
        p.wait_log(r"worker \(pid %d\) of the previous configuration has finished" % pid,
                   since=mark, timeout=10)
    assert not any(harness.alive(pid) for pid in old)


def test_a_failed_reload_lets_its_serving_workers_drain(portier, certs, http_backend,
                                                       backend_b, fail_file):
    """One new worker serves, the other never reports: the reload fails
    after 10 s. The one that served shares the listening sockets with the
    running generation and may already hold clients: it drains (SIGQUIT),
    its connections run on to their end, and only the silent one is
    stopped. It was SIGTERMed with the other, its clients cut."""
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port), glob=[("workers", "2")])
    port = p.port("web")
    ctx = certs.client_context()
    old = serving(p, 2)
    with open(fail_file, "w") as f:
        f.write("hang 2\n")
    p.rewrite(web(certs, backend_b.port))
    mark = hup(p)
    p.wait_log(r"PORTIER_TEST_WORKER_FAIL: .* not serving", since=mark)
    # The forked worker may log before the master says it started it.
    harness.wait_for(lambda: len(started_since(p, mark)) == 2, 5, "both workers' start lines")
    new = dict(started_since(p, mark))
    p.wait_log(r"serving \(pid %d\)" % new[1], since=mark)
    # A client of the new worker 1: the old ones stopped while it comes.
    for pid in old:
        os.kill(pid, signal.SIGSTOP)
    try:
        held = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                               server_hostname="localhost")
        assert b"backend b GET /who" in ask(held)
    finally:
        for pid in old:
            os.kill(pid, signal.SIGCONT)
    try:
        p.wait_log(r"reload failed: worker 2 \(pid %d\) did not report serving within "
                   r"10s; keeping the running configuration" % new[2], since=mark, timeout=20)
        p.wait_log(r"worker \(pid %d\) of the failed reload was killed by signal 15" % new[2],
                   since=mark, timeout=15)
        # Its client is served on, by the configuration it came to.
        assert b"backend b GET /who" in ask(held)
        assert harness.alive(new[1])
        assert re.search(r"reload undone: 1 worker of it already serving drains \(SIGQUIT\)",
                         p.log()[mark:])
        # New clients get the running configuration.
        for _ in range(3):
            assert b"backend a GET /who" in get(port, ctx)[0]
    finally:
        held.close()
    p.wait_log(r"worker \(pid %d\) of the failed reload has finished" % new[1],
               since=mark, timeout=10)
    assert all(harness.alive(pid) for pid in old)


def held_reports(n, skip=0):
    """The environment of a portier whose first n workers (after the first
    skip, which report at once) report serving only once the master has
    closed their channel (tests/fault/ready_hold.c)."""
    shim = os.path.join(harness.PORTIER_BUILD, "tests", "libready_hold.so")
    assert os.path.exists(shim), "the ready_hold shim was not built: %s" % shim
    return {"LD_PRELOAD": shim, "PORTIER_FAULT_READY_HOLD": str(n),
            "PORTIER_FAULT_READY_HOLD_SKIP": str(skip),
            "ASAN_OPTIONS": "verify_asan_link_order=0"}


HELD = "ready_hold: report held until the master closed the channel"
CANNOT_TELL = "cannot tell the master this worker serves"


def test_a_worker_that_serves_after_a_reload_committed_does_not_warn(
        portier, certs, http_backend):
    """A reload commits before the workers of the start have served (a
    SIGHUP right after the start, on a busy machine): the master closes
    their channels with their generation's, and their report, once they
    serve, meets EPIPE. Each warned "cannot tell the master this worker
    serves: Broken pipe", though the master no longer waits for it. The
    shim holds both reports until their channels close, so the window is
    met every time."""
    p = portier(web(certs, http_backend.port), glob=[("workers", "2")],
                env=held_reports(2))
    mark = p.reload()
    harness.wait_for(lambda: p.log()[mark:].count(HELD) == 2, 10,
                     "both held reports to meet their closed channels")
    old = [pid for n, pid in started_since(p, 0)[:2]]
    for pid in old:
        p.wait_log(r"worker \(pid %d\) of the previous configuration has finished" % pid,
                   since=mark, timeout=10)
    # Each wrote its report only once the commit had closed its channel
    # (the shim's two lines): the window was met; and each has ended since.
    log = p.log()
    assert CANNOT_TELL not in log, log


def test_a_worker_of_an_undone_reload_does_not_warn(portier, certs, http_backend,
                                                   backend_b, fail_file):
    """A reload fails (its worker 2 ends at once) while its worker 1 has
    not reported yet: the undo sends worker 1 SIGTERM and closes its
    channel, and its report meets EPIPE. It warned "cannot tell the master
    this worker serves: Broken pipe" though the master had let it go and
    said why. The shim holds worker 1's report until the channel closes."""
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port), glob=[("workers", "2")],
                env=held_reports(1, skip=2))
    port = p.port("web")
    serving(p, 2)
    with open(fail_file, "w") as f:
        f.write("exit 2\n")
    p.rewrite(web(certs, backend_b.port))
    mark = hup(p)
    p.wait_log(r"reload failed: .*; keeping the running configuration", since=mark,
               timeout=20)
    harness.wait_for(lambda: len(started_since(p, mark)) == 2, 5, "both workers' start lines")
    new = dict(started_since(p, mark))
    p.wait_log(re.escape(HELD), since=mark, timeout=10)
    p.wait_log(r"worker \(pid %d\) of the failed reload exited with status 0" % new[1],
               since=mark, timeout=15)
    log = p.log()[mark:]
    # It had said it serves, so its report was due and met the closed channel.
    assert re.search(r"serving \(pid %d\)" % new[1], log), log
    assert CANNOT_TELL not in log, log
    ctx = certs.client_context()
    assert b"backend a GET /who" in get(port, ctx)[0]


def test_a_worker_whose_master_is_gone_still_warns(portier, certs, http_backend):
    """The same closed channel while this worker's generation is the
    current one is no reload's doing: the master died before the report.
    That still warns."""
    p = portier(web(certs, http_backend.port), env=held_reports(1))
    worker = p.worker_pid(1)
    # Said just before the report, which the shim holds.
    p.wait_log(r"worker 1\.1: serving \(pid %d\)" % worker)
    p.stopped = True          # it is killed here, not stopped
    os.kill(p.proc.pid, signal.SIGKILL)
    p.proc.p.wait(timeout=10)
    try:
        # The worker ends by itself (its master's death sends it SIGTERM).
        harness.wait_for(lambda: not harness.alive(worker), 10, "the worker to end")
    finally:
        if harness.alive(worker):
            os.kill(worker, signal.SIGKILL)
    log = p.log()
    assert HELD in log, log
    assert re.search(r"worker 1\.1: warning: %s: Broken pipe" % CANNOT_TELL, log), log


def test_a_reload_that_widens_an_address_on_the_same_port_says_why_it_cannot(
        portier, certs, http_backend):
    """127.0.0.1:P cannot become 0.0.0.0:P by reload: the old socket must
    listen until the new workers serve, and Linux refuses both at once.
    The refusal names portier's own socket, not "another program" (which
    sent the admin to ss to find portier itself), and the running
    configuration serves on."""
    def at(listen):
        return [("tls", tls_items(certs.ec)),
                listener("web", http_backend.port, protocol="http", listen=listen)]

    port = harness.free_port()
    p = portier(at("127.0.0.1:%d" % port))
    p.rewrite(at("0.0.0.0:%d" % port))
    mark = p.reload(expect="reload refused")
    log = p.log()[mark:]
    assert ("cannot listen on '0.0.0.0:%d': Address already in use (portier itself "
            "listens on 127.0.0.1:%d, for the running configuration: a reload cannot "
            "move a listener to another address of the same port; restart portier for "
            "that)" % (port, port)) in log, log
    assert "another program" not in log
    assert b"GET /who" in get(port, certs.client_context())[0]
    # Another program's port still gets the other hint.
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    try:
        busy = other.getsockname()[1]
        p.rewrite(at("127.0.0.1:%d" % busy))
        mark = p.reload(expect="reload refused")
        assert ("cannot listen on '127.0.0.1:%d': Address already in use (another "
                "program holds it: ss -ltnp)" % busy) in p.log()[mark:]
    finally:
        other.close()


def test_the_old_workers_drain_only_after_the_new_ones_serve(portier, certs, http_backend,
                                                             backend_b):
    p = portier(web(certs, http_backend.port), glob=[("workers", "2")])
    harness.wait_for(lambda: len(p.workers()) == 2, 5, "two workers")
    old = p.workers()
    p.rewrite(web(certs, backend_b.port))
    mark = p.reload()
    log = p.log()[mark:]
    new = [pid for _, pid in started_since(p, mark)]
    assert len(new) == 2, log
    # Each new worker says it serves before it tells the master; the master
    # commits the reload only after both told it, and sends SIGQUIT after.
    reloaded = log.index("reloaded: ")
    for pid in new:
        serving = log.index("serving (pid %d)" % pid)
        assert serving < reloaded, log
    quits = [m.start() for m in re.finditer(r"no longer accepting; draining", log)]
    assert len(quits) == 2 and min(quits) > reloaded, log
    assert re.search(r"reloaded: .* \(generation 2\)", log), log
    for pid in old.values():
        p.wait_log(r"worker \(pid %d\) of the previous configuration has finished" % pid,
                   since=mark, timeout=10)
    assert b"backend b GET" in get(p.port("web"), certs.client_context())[0]


def test_a_new_worker_that_never_reports_fails_the_reload_after_the_bound(
        portier, certs, http_backend, backend_b, fail_file):
    """A new worker that stays silent fails the reload after 10 s; a SIGHUP
    that came meanwhile is not lost but reloads once the first is over."""
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port))
    old, = serving(p)
    with open(fail_file, "w") as f:
        f.write("hang\n")
    p.rewrite(web(certs, backend_b.port))
    mark = hup(p)
    p.wait_log(r"PORTIER_TEST_WORKER_FAIL: .* not serving", since=mark)
    # The forked worker may log before the master says it started it.
    harness.wait_for(lambda: len(started_since(p, mark)) == 1, 5, "the worker's start line")
    (_, silent), = started_since(p, mark)
    # While the master waits for it, the running configuration serves.
    assert b"backend a GET /who" in get(p.port("web"), certs.client_context())[0]
    os.unlink(fail_file)
    os.kill(p.proc.pid, signal.SIGHUP)
    p.wait_log(r"SIGHUP: a reload is still waiting for its workers; reloading again "
               r"once it is over", since=mark)
    assert "no longer accepting" not in p.log()[mark:] and harness.alive(old)
    failed = p.wait_log(r"reload failed: worker 1 \(pid %d\) did not report serving "
                        r"within 10s; keeping the running configuration" % silent,
                        since=mark, timeout=20)
    p.wait_log(r"worker \(pid %d\) of the failed reload was killed by signal 15" % silent,
               since=mark, timeout=15)
    # Then the second SIGHUP's reload, which succeeds.
    p.wait_log(r"reloaded: .* \(generation 2\)", since=mark, timeout=15)
    log = p.log()[mark:]
    assert log.index(failed.group(0)) < log.index("reloaded: "), log
    p.wait_log(r"worker \(pid %d\) of the previous configuration has finished" % old,
               since=mark, timeout=10)
    assert not harness.alive(silent)
    assert b"backend b GET /who" in get(p.port("web"), certs.client_context())[0]


def test_a_worker_that_dies_while_a_reload_waits_is_replaced_from_the_running_configuration(
        portier, certs, http_backend, backend_b, fail_file):
    """The master keeps reaping and restarting while it waits; the worker it
    starts in between serves the configuration still running."""
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port))
    port = p.port("web")
    old, = serving(p)
    with open(fail_file, "w") as f:
        f.write("hang\n")
    p.rewrite(web(certs, backend_b.port))
    mark = hup(p)
    p.wait_log(r"PORTIER_TEST_WORKER_FAIL: .* not serving", since=mark)
    # The forked worker may log before the master says it started it.
    harness.wait_for(lambda: len(started_since(p, mark)) == 1, 5, "the worker's start line")
    (_, silent), = started_since(p, mark)
    os.unlink(fail_file)     # the replacement must not hang too
    os.kill(old, signal.SIGKILL)
    p.wait_log(r"worker 1 \(pid %d\) was killed by signal 9" % old, since=mark)
    harness.wait_for(lambda: len(started_since(p, mark)) == 2, 5, "a replacement worker")
    replacement = started_since(p, mark)[1][1]
    p.wait_log(r"serving \(pid %d\)" % replacement, since=mark)
    for _ in range(3):
        assert b"backend a GET /who" in get(port, certs.client_context())[0]
    assert harness.alive(silent)
    # SIGTERM while the reload still waits: the master stops every worker,
    # the silent one too, and exits cleanly.
    p.stop()
    assert re.search(r"got signal 15 during a reload: its new workers stop too", p.log())
    assert not harness.alive(silent) and not harness.alive(replacement)


def test_a_reload_that_moves_pid_file_writes_the_new_one_and_removes_the_old(
        portier, certs, http_backend, workdir):
    """The pid_file follows the configuration: after a reload that names
    another file, that file holds the master's pid and the old one is gone;
    the stop removes the file portier wrote last, and only that one."""
    a = os.path.join(str(workdir), "a.pid")
    b = os.path.join(str(workdir), "b.pid")
    p = portier(web(certs, http_backend.port), glob=[("pid_file", a)])
    harness.wait_for(lambda: os.path.exists(a), 5, "the first pid_file")
    with open(a) as f:
        assert int(f.read()) == p.proc.pid
    name, items = p.sections[0]
    p.sections[0] = (name, [(k, b if k == "pid_file" else v) for k, v in items])
    p.rewrite(p.sections[1:])
    p.reload()
    with open(b) as f:
        assert int(f.read()) == p.proc.pid
    assert not os.path.exists(a), "the old pid_file was left behind"
    p.stop()
    assert not os.path.exists(b), "the stop left the pid_file it wrote"


def reload_to_unwritable_pid_file(portier, certs, http_backend, a, bad, error):
    """portier started with pid_file a, then reloaded to bad, which it
    cannot write (error): it says so and a still names the master."""
    p = portier(web(certs, http_backend.port), glob=[("pid_file", a)])
    harness.wait_for(lambda: os.path.exists(a), 5, "the first pid_file")
    name, items = p.sections[0]
    p.sections[0] = (name, [(k, bad if k == "pid_file" else v) for k, v in items])
    p.rewrite(p.sections[1:])
    p.reload()
    p.wait_log(r"reload: cannot write pid_file %s; keeping %s: %s$"
               % (re.escape(bad), re.escape(a), error))
    with open(a) as f:
        assert int(f.read()) == p.proc.pid
    return p


def test_a_reload_to_a_pid_file_it_cannot_write_keeps_the_old_one(
        portier, certs, http_backend, workdir):
    """A reload that names a pid_file portier cannot write (its directory
    is missing) warns and keeps the one it wrote before, which still names
    the master (it used to remove it and leave no pid_file at all, so
    logrotate's kill -USR1 found nothing); the stop removes that one."""
    a = os.path.join(str(workdir), "a.pid")
    p = reload_to_unwritable_pid_file(portier, certs, http_backend, a,
                                      os.path.join(str(workdir), "missing", "b.pid"),
                                      "No such file or directory")
    p.stop()
    assert not os.path.exists(a), "the stop left the pid_file it wrote"


def test_a_reload_to_a_pid_file_on_a_full_disk_leaves_no_empty_one(portier, certs, http_backend,
                                                                   workdir):
    """A pid_file that opens but cannot be written (a full file system:
    the write fails at fclose) is removed, not left empty beside the one
    kept, which nothing would then remove; the one written before stays."""
    a = os.path.join(str(workdir), "a.pid")
    full = os.path.join(str(workdir), "full")
    os.makedirs(full)
    harness.run(["mount", "-t", "tmpfs", "-o", "size=16k", "portier-test", full], check=True)
    try:
        fd = os.open(os.path.join(full, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with pytest.raises(OSError, match="No space left"):
                for _ in range(64):           # 16 KiB fill in at most four
                    os.write(fd, b"x" * 4096)
        finally:
            os.close(fd)
        bad = os.path.join(full, "b.pid")
        p = reload_to_unwritable_pid_file(portier, certs, http_backend, a, bad,
                                          "No space left on device")
        assert not os.path.exists(bad), "an empty pid_file was left"
        p.stop()
    finally:
        harness.run(["umount", full], check=True)


def test_a_detached_portier_started_with_relative_paths_reloads_them(workdir, certs,
                                                                     http_backend):
    """`cd /etc/portier && portier -c portier.ini` with `cert = tls/site.pem`:
    the paths mean on every reload what they meant at start (detaching
    used to move to /, and each reload looked for /portier.ini)."""
    from test_certbot_hook import served
    from test_keys import Detached

    tls = os.path.join(str(workdir), "tls")
    os.makedirs(tls)
    for leaf, name in ((certs.ec, "site"), (certs.rsa, "next")):
        shutil.copy(leaf.cert, os.path.join(tls, name + ".pem"))
        shutil.copy(leaf.key, os.path.join(tls, name + ".key"))
    log = os.path.join(str(workdir), "file.log")
    d = Detached(workdir, [("tls", [("cert", "tls/site.pem"), ("key", "tls/site.key")]),
                           listener("web", http_backend.port, protocol="http")],
                 [("log", log)], relative=True)
    try:
        assert served(d.port) == certs.ec.der
        for name in ("site.pem", "site.key"):
            os.replace(os.path.join(tls, name.replace("site", "next")), os.path.join(tls, name))
        os.kill(d.master, signal.SIGHUP)
        harness.wait_for(lambda: re.search(r"reloaded|reload refused", open(log).read()),
                         10 * harness.SLOW, "the reload's verdict")
        text = open(log).read()
        assert "reloaded:" in text and "refused" not in text, text
        harness.wait_for(lambda: harness.old_workers_left(open(log).read()), 10,
                         "the old workers to stop accepting")
        assert served(d.port) == certs.rsa.der
    finally:
        d.stop()
