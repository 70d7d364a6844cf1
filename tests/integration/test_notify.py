"""systemd's readiness protocol (sd_notify): the test plays the service
manager with a unix datagram socket named by NOTIFY_SOCKET, and checks every
message portier sends, and their order, from start to stop."""

import contextlib
import os
import re
import shutil
import signal
import socket
import tempfile
import time

import pytest

import harness
from harness import listener, tls_items


def web(certs, backend_port, **keys):
    return [("tls", tls_items(certs.ec)),
            listener("web", backend_port, protocol="http", extra=list(keys.items()))]


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Manager:
    """A service manager's end of NOTIFY_SOCKET: a bound datagram socket.
    .address is what NOTIFY_SOCKET says (a path, or '@name' for an abstract
    one)."""

    def __init__(self, abstract=False):
        self.dir = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "portier-test-notify-%d-%s" % (os.getpid(), os.urandom(4).hex())
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # A short directory of our own: sun_path holds 108 bytes, and
            # pytest's tmp paths can be longer.
            self.dir = tempfile.mkdtemp(prefix="portier-notify-", dir="/tmp")
            self.address = os.path.join(self.dir, "notify.sock")
            self.sock.bind(self.address)
        self.got = []

    def env(self):
        return {"NOTIFY_SOCKET": self.address}

    def next(self, timeout=10):
        """The next message, as a list of (key, value) in the order sent."""
        self.sock.settimeout(timeout * harness.SLOW)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("no message from portier within %.0fs; got before: %r"
                                 % (timeout * harness.SLOW, self.got))
        text = data.decode("utf-8")
        lines = text.split("\n")
        assert all("=" in l for l in lines), "not KEY=VALUE lines: %r" % text
        msg = [tuple(l.split("=", 1)) for l in lines]
        self.got.append(msg)
        return msg

    def nothing_more(self):
        """No message is waiting."""
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            data = self.sock.recv(65536)
            raise AssertionError("unexpected message %r after %r" % (data, self.got))

    def close(self):
        self.sock.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def manager():
    m = Manager()
    yield m
    m.close()


def keys(msg):
    return [k for k, _ in msg]


def status(msg):
    values = [v for k, v in msg if k == "STATUS"]
    assert len(values) == 1, "one STATUS= line expected in %r" % msg
    return values[0]


def expect_reloading(manager, before, path):
    msg = manager.next()
    after = monotonic_usec()
    assert keys(msg) == ["RELOADING", "MONOTONIC_USEC", "STATUS"], msg
    assert dict(msg)["RELOADING"] == "1"
    usec = int(dict(msg)["MONOTONIC_USEC"])
    assert before <= usec <= after, \
        "MONOTONIC_USEC=%d is not CLOCK_MONOTONIC between SIGHUP (%d) and now (%d)" % (
            usec, before, after)
    assert status(msg) == "reloading %s" % path, msg


def hup(p):
    before = monotonic_usec()
    os.kill(p.proc.pid, signal.SIGHUP)
    return before


def test_start_reload_refused_reload_and_stop_in_order(portier, certs, http_backend,
                                                       manager):
    http_backend.name = "a"
    backend_b = harness.HTTPBackend("b")
    try:
        p = portier(web(certs, http_backend.port), glob=[("workers", "2")],
                    env=manager.env())
        ctx = certs.client_context()
        # Start: READY=1 only once both workers serve.
        msg = manager.next()
        assert keys(msg) == ["READY", "STATUS"] and dict(msg)["READY"] == "1", msg
        assert len(re.findall(r"serving \(pid \d+\)", p.log())) == 2, \
            "READY=1 before every worker served; log:\n" + p.log()
        assert status(msg) == "serving: 1 listener on 1 socket, 2 workers, generation 1"
        port = p.port("web")
        assert b"backend a GET /who" in harness.https_get(port, ctx, "/who")[0]

        # A good reload: RELOADING=1 with the time of the signal, then
        # READY=1 once the new generation serves.
        p.rewrite(web(certs, backend_b.port))
        mark = p.mark()
        before = hup(p)
        expect_reloading(manager, before, p.ini)
        msg = manager.next()
        assert keys(msg) == ["READY", "STATUS"], msg
        assert "reloaded:" in p.log()[mark:], "READY=1 before the commit; log:\n" + p.log()
        assert status(msg) == "serving: 1 listener on 1 socket, 2 workers, generation 2"
        # The old workers let go of the sockets once told (just after).
        harness.wait_for(lambda: p.log()[mark:].count("no longer accepting; draining") == 2,
                         5, "the old workers to stop accepting")
        assert b"backend b GET /who" in harness.https_get(p.port("web"), ctx, "/who")[0]

        # A broken config: RELOADING=1, then READY=1 on the running
        # generation with the first error in STATUS.
        p.rewrite([("tls", tls_items(certs.ec)),
                   ("web", [("listen", "127.0.0.1:0"), ("mode", "tlss"),
                            ("backend", "127.0.0.1:%d" % http_backend.port)])])
        before = hup(p)
        expect_reloading(manager, before, p.ini)
        msg = manager.next()
        assert keys(msg) == ["READY", "STATUS"], msg
        assert re.fullmatch(r"reload refused: .*portier\.ini:\d+: \[web\] mode: 'tlss' is not "
                            r"one of [^;]*; serving: 1 listener on 1 socket, 2 workers, "
                            r"generation 2", status(msg)), msg
        assert b"backend b GET /who" in harness.https_get(p.port("web"), ctx, "/who")[0]

        # Stop: STOPPING=1, and nothing after it. (The old workers are gone
        # by then: STATUS counts every worker the master stops.)
        harness.wait_for(lambda: p.log()[mark:].count("of the previous configuration has "
                                                      "finished") == 2,
                         10, "the old workers to finish")
        p.stop()
        msg = manager.next()
        assert keys(msg) == ["STOPPING", "STATUS"] and dict(msg)["STOPPING"] == "1", msg
        assert status(msg) == "stopping on signal 15: 2 workers"
        manager.nothing_more()
    finally:
        backend_b.stop()


def test_a_reload_whose_workers_cannot_serve_reports_ready_on_the_old_generation(
        portier, certs, http_backend, manager, workdir, monkeypatch):
    fail_file = os.path.join(str(workdir), "workers-fail")
    monkeypatch.setenv("PORTIER_TEST_WORKER_FAIL", fail_file)
    http_backend.name = "a"
    p = portier(web(certs, http_backend.port), env=manager.env())
    assert keys(manager.next()) == ["READY", "STATUS"]
    with open(fail_file, "w") as f:
        f.write("exit\n")
    before = hup(p)
    expect_reloading(manager, before, p.ini)
    msg = manager.next(timeout=15)
    assert keys(msg) == ["READY", "STATUS"], msg
    assert re.fullmatch(r"reload failed: worker 1 \(pid \d+\) exited with status 1 before "
                        r"serving; serving: 1 listener on 1 socket, 1 worker, generation 1",
                        status(msg)), msg
    assert b"backend a GET /who" in harness.https_get(p.port("web"), certs.client_context(),
                                                      "/who")[0]
    os.unlink(fail_file)


def test_status_follows_a_worker_that_dies_and_its_replacement(portier, certs, http_backend,
                                                              manager):
    p = portier(web(certs, http_backend.port), glob=[("workers", "2")], env=manager.env())
    assert keys(manager.next()) == ["READY", "STATUS"]
    os.kill(p.worker_pid(1), signal.SIGKILL)
    msg = manager.next()
    assert msg == [("STATUS", "serving: 1 listener on 1 socket, 1 of 2 workers, "
                              "generation 1")], msg
    msg = manager.next()
    assert msg == [("STATUS", "serving: 1 listener on 1 socket, 2 workers, generation 1")], msg


def test_a_drain_on_sigquit_says_stopping(portier, certs, http_backend, manager):
    """STOPPING=1 starts systemd's stop timeout (TimeoutStopSec, 90 s by
    default), after which it kills the unit and restarts it as failed: the
    drain asks for its drain_timeout, the 10 s of grace after it and 5 s
    more (EXTEND_TIMEOUT_USEC). Without it, a drain of more than 90 s
    under the unit was killed."""
    p = portier(web(certs, http_backend.port), glob=[("workers", "2"),
                                                      ("drain_timeout", "2m")],
                env=manager.env())
    assert keys(manager.next()) == ["READY", "STATUS"]
    os.kill(p.proc.pid, signal.SIGQUIT)
    msg = manager.next()
    assert msg == [("STOPPING", "1"), ("EXTEND_TIMEOUT_USEC", str((120 + 10 + 5) * 10**6)),
                   ("STATUS", "draining on SIGQUIT: 2 workers")], msg
    p.proc.p.wait(timeout=10 * harness.SLOW)     # no connection open: ends at once
    p.stop()
    manager.nothing_more()


def test_an_abstract_socket_name(portier, certs, http_backend):
    m = Manager(abstract=True)
    try:
        p = portier(web(certs, http_backend.port), env=m.env())
        msg = m.next()
        assert keys(msg) == ["READY", "STATUS"], msg
        p.stop()
        assert keys(m.next()) == ["STOPPING", "STATUS"]
    finally:
        m.close()


def test_a_manager_that_does_not_read_never_stalls_the_master(portier, certs, http_backend,
                                                              manager):
    # Fill the manager's queue to the brim: portier's messages find no room.
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    queued = 0
    try:
        for _ in range(100000):
            try:
                filler.sendto(b"X=1", manager.address)
            except BlockingIOError:
                break
            queued += 1
        else:
            pytest.fail("the manager's queue never filled")
        http_backend.name = "a"
        p = portier(web(certs, http_backend.port), env=manager.env())
        p.wait_log(r"warning: cannot tell the service manager portier is ready: "
                   r"Resource temporarily unavailable")
        ctx = certs.client_context()
        assert b"backend a GET /who" in harness.https_get(p.port("web"), ctx, "/who")[0]
        # The master still answers signals: a reload goes through.
        p.rewrite(web(certs, http_backend.port, idle_timeout="30s"))
        p.reload()
        assert b"backend a GET /who" in harness.https_get(p.port("web"), ctx, "/who")[0]
        # What was queued is all the manager got.
        for _ in range(queued):
            assert manager.next(timeout=1) == [("X", "1")]
        manager.nothing_more()
    finally:
        filler.close()


def test_a_notify_socket_nobody_can_reach_is_a_warning(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port), env={"NOTIFY_SOCKET": "vsock:2:1234"})
    p.wait_log(r"warning: NOTIFY_SOCKET: cannot speak to the service manager at vsock:2:1234")
    assert b"GET /who" in harness.https_get(p.port("web"), certs.client_context(), "/who")[0]
