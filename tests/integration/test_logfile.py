"""The log file after start: SIGUSR1 reopens it (logrotate), a reload that
changes `log` moves it. The master opens the file (it keeps root) and hands
it to the workers, which gave root up and could not open it themselves."""

import os
import re
import signal
import socket

import pytest

import harness
from harness import listener, tls_items
from test_keys import Detached

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d portier: "


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def sections(certs, backend_port):
    return [("tls", tls_items(certs.ec)), listener("web", backend_port, protocol="http")]


def worker_pids(text):
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r"worker (\d+) started \(pid (\d+)\)", text)}


def serving(log):
    """The pids of both workers, once each said it serves and the master
    said it started it (a busy machine may run a child to "serving" before
    the master writes "started")."""
    harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", read(log))) == 2
                     and len(worker_pids(read(log))) == 2, 10, "both workers to serve")
    return list(worker_pids(read(log)).values())


def get(d, certs, n):
    for _ in range(n):
        out, _, _ = harness.https_get(d.port, certs.client_context(), "/who")
        assert out.startswith(b"HTTP/1.1 200"), out


def test_sigusr1_reopens_the_log_in_the_master_and_every_worker(workdir, certs, http_backend):
    log = os.path.join(str(workdir), "portier.log")
    # The workers switch to nobody, who cannot even reach this directory:
    # only a descriptor from the master lets them write the new file.
    assert os.stat(str(workdir)).st_mode & 0o005 == 0
    d = Detached(workdir, sections(certs, http_backend.port),
                 [("log", log), ("workers", "2"), ("user", "nobody")])
    workers = []
    try:
        workers = serving(log)
        rotated = log + ".1"
        os.rename(log, rotated)
        os.kill(d.master, signal.SIGUSR1)
        harness.wait_for(
            lambda: all(re.search(r"^%sworker 1\.%d: log reopened$" % (STAMP, n),
                                  read(log), re.M) for n in (1, 2)),
            10, "both workers to say so in the new " + log)
        new = read(log)
        assert re.search(r"^%slog reopened \(SIGUSR1\): %s$" % (STAMP, re.escape(log)),
                         new, re.M), new
        assert re.search(r"SIGUSR1: reopening the log %s$" % re.escape(log), read(rotated),
                         re.M), read(rotated)
        st = os.stat(log)
        assert st.st_uid == 0, "the new file is the master's (root's)"
        assert worker_pids(new) == {}, "no worker was replaced: " + new
        # Every connection from now on is logged in the new file only, by
        # whichever worker took it.
        before_old = read(rotated)
        get(d, certs, 6)
        harness.wait_for(lambda: len(harness.close_lines(read(log))) >= 6, 10,
                         "six close lines in the new file")
        assert read(rotated) == before_old, "a line went to the rotated file"
        assert all(harness.alive(p) for p in workers)
    finally:
        d.stop(workers)
    assert re.search(r"portier: portier stopped$", read(log), re.M), read(log)


def test_sigusr1_during_a_drain_reopens_the_log(workdir, certs, http_backend):
    """A SIGQUIT drain may last drain_timeout (30 minutes): a logrotate in
    that window still gets its new file, in the master and the draining
    worker, whose held connection's close line goes there."""
    log = os.path.join(str(workdir), "portier.log")
    d = Detached(workdir, sections(certs, http_backend.port),
                 [("log", log), ("workers", "1"), ("drain_timeout", "30s")])
    workers = []
    held = None
    try:
        harness.wait_for(lambda: re.search(r"serving \(pid \d+\)", read(log)), 10,
                         "the worker to serve")
        workers = list(worker_pids(read(log)).values())
        held = harness.TLSClient(d.port, certs.client_context(), "localhost")
        held.send(b"GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n")
        os.kill(d.master, signal.SIGQUIT)
        harness.wait_for(lambda: "SIGQUIT: no longer accepting; draining 1 connection"
                         in read(log), 10, "the worker to drain")
        rotated = log + ".1"
        os.rename(log, rotated)
        os.kill(d.master, signal.SIGUSR1)
        harness.wait_for(lambda: re.search(r"^%sworker 1\.1: log reopened$" % STAMP,
                                           read(log), re.M), 10,
                         "the draining worker to say so in the new " + log)
        assert re.search(r"^%slog reopened \(SIGUSR1\): %s$" % (STAMP, re.escape(log)),
                         read(log), re.M), read(log)
        held.close()
        held = None
        harness.wait_for(lambda: len(harness.close_lines(read(log))) == 1, 10,
                         "the held connection's close line in the new file")
        harness.wait_for(lambda: not harness.alive(d.master), 10, "the drained master to end")
        assert re.search(r"drained: the last worker has finished; exiting with status 0$",
                         read(log), re.M), read(log)
    finally:
        if held is not None:
            held.close()
        d.stop(workers)


def test_sigusr1_to_a_worker_does_not_end_it(portier, certs, http_backend):
    p = portier(sections(certs, http_backend.port))
    pid = p.worker_pid(1)
    p.wait_log(r"serving \(pid %d\)" % pid)
    mark = p.mark()
    os.kill(pid, signal.SIGUSR1)
    os.kill(p.proc.pid, signal.SIGUSR1)
    # In the foreground the log is stderr: nothing to reopen, said once.
    p.wait_log(r"SIGUSR1: the log is not a file; nothing to reopen", since=mark)
    assert harness.alive(pid)
    out, _, _ = harness.https_get(p.port("web"), certs.client_context(), "/who")
    assert out.startswith(b"HTTP/1.1 200"), out
    assert "was killed" not in p.log()[mark:], p.log()


def test_a_reload_moves_the_log(workdir, certs, http_backend):
    log_a = os.path.join(str(workdir), "a.log")
    log_b = os.path.join(str(workdir), "b.log")
    d = Detached(workdir, sections(certs, http_backend.port),
                 [("log", log_a), ("workers", "2"), ("user", "nobody")])
    workers = []
    try:
        workers = serving(log_a)
        with open(d.ini, "w") as f:
            f.write(harness.ini_text(
                [("portier", [("log", log_b), ("workers", "2"), ("user", "nobody"),
                              ("pid_file", d.pid_file), ("ports_file", d.ports_file)])] +
                sections(certs, http_backend.port)))
        os.kill(d.master, signal.SIGHUP)
        harness.wait_for(lambda: re.search(r"^%sreloaded: " % STAMP, read(log_b), re.M), 15,
                         "the master's 'reloaded' line in " + log_b)
        a = read(log_a)
        assert re.search(r"reload: the log moves to %s$" % re.escape(log_b), a, re.M), a
        assert "takes effect at the next restart" not in a
        new = worker_pids(a)
        assert len(new) == 2 and set(new.values()).isdisjoint(workers), a
        workers += list(new.values())
        harness.wait_for(
            lambda: all(re.search(r"^%sworker 2\.%d: log reopened$" % (STAMP, n),
                                  read(log_b), re.M) for n in (1, 2)),
            10, "both new workers to log to " + log_b)
        harness.wait_for(lambda: read(log_a).count("no longer accepting; draining") == 2
                         or read(log_b).count("no longer accepting; draining") == 2,
                         10, "the old workers to stop accepting")
        get(d, certs, 4)
        harness.wait_for(lambda: len(harness.close_lines(read(log_b))) >= 4, 10,
                         "four close lines in " + log_b)
        assert harness.close_lines(read(log_a)) == [], read(log_a)
    finally:
        d.stop(workers)
    assert re.search(r"portier: portier stopped$", read(log_b), re.M), read(log_b)


def rewrite(d, certs, http_backend, log):
    with open(d.ini, "w") as f:
        f.write(harness.ini_text(
            [("portier", [("log", log), ("workers", "2"),
                          ("pid_file", d.pid_file), ("ports_file", d.ports_file)])] +
            sections(certs, http_backend.port)))


def test_a_reload_to_stderr_once_detached_keeps_the_file(workdir, certs, http_backend):
    """Detached, fd 2 is /dev/null: a reload to log = stderr would lose
    every line of the master and of the new workers (it did). The move is
    refused with a warning that says why, and the file goes on: the new
    workers' close lines and the master's last words are in it."""
    log = os.path.join(str(workdir), "a.log")
    d = Detached(workdir, sections(certs, http_backend.port),
                 [("log", log), ("workers", "2")])
    workers = []
    try:
        workers = serving(log)
        rewrite(d, certs, http_backend, "stderr")
        mark = len(read(log))
        os.kill(d.master, signal.SIGHUP)
        harness.wait_for(lambda: re.search(r"^%sreloaded: " % STAMP, read(log)[mark:], re.M),
                         15, "the master's 'reloaded' line in " + log)
        said = read(log)[mark:]
        assert re.search(r"^%swarning: reload: the log cannot move to stderr: portier has "
                         r"detached from the standard error it was started with \(start it "
                         r"with log = stderr, or run it with -f\); logging on to %s$"
                         % (STAMP, re.escape(log)), said, re.M), said
        assert "the log moves to" not in said, said
        new = worker_pids(said)
        assert len(new) == 2 and set(new.values()).isdisjoint(workers), said
        workers += list(new.values())
        harness.wait_for(lambda: not any(harness.alive(p) for p in workers[:2]), 10,
                         "the old workers to finish")
        before = len(harness.close_lines(read(log)))
        get(d, certs, 4)
        harness.wait_for(lambda: len(harness.close_lines(read(log))) >= before + 4, 10,
                         "the new workers' four close lines in " + log)
    finally:
        d.stop(workers)
    assert re.search(r"portier: portier stopped$", read(log), re.M), read(log)


def test_a_reload_that_could_not_open_the_log_is_tried_again(workdir, certs, http_backend):
    """A reload to a file in a missing directory logs on to the old file.
    Once the directory is there, the next reload with that same `log`
    moves it: the master compares with what is open, not with the value
    the last configuration named (it did, and the log stayed for good)."""
    log_a = os.path.join(str(workdir), "a.log")
    log_b = os.path.join(str(workdir), "later", "b.log")
    d = Detached(workdir, sections(certs, http_backend.port),
                 [("log", log_a), ("workers", "2")])
    workers = []
    try:
        workers = serving(log_a)
        rewrite(d, certs, http_backend, log_b)
        mark = len(read(log_a))
        os.kill(d.master, signal.SIGHUP)
        harness.wait_for(lambda: re.search(r"^%sreloaded: " % STAMP, read(log_a)[mark:], re.M),
                         15, "the master's 'reloaded' line in " + log_a)
        said = read(log_a)[mark:]
        assert re.search(r"warning: reload: cannot open log %s; logging on to %s \(the next "
                         r"reload tries again\): No such file or directory$"
                         % (re.escape(log_b), re.escape(log_a)), said, re.M), said
        workers += list(worker_pids(said).values())
        assert not os.path.exists(log_b)
        os.mkdir(os.path.dirname(log_b))
        mark = len(read(log_a))
        os.kill(d.master, signal.SIGHUP)
        harness.wait_for(lambda: re.search(r"^%sreloaded: " % STAMP, read(log_b), re.M), 15,
                         "the master's 'reloaded' line in " + log_b)
        assert re.search(r"reload: the log moves to %s$" % re.escape(log_b),
                         read(log_a)[mark:], re.M), read(log_a)[mark:]
        workers += list(worker_pids(read(log_a)[mark:]).values())
    finally:
        d.stop(workers)
    assert re.search(r"portier: portier stopped$", read(log_b), re.M), read(log_b)


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def test_started_with_stderr_closed_a_reload_lets_go_of_the_old_port(workdir, http_backend):
    # Started with fd 2 closed (2>&-), the first socket portier made took
    # fd 2, and the log "stderr" became a copy of that listening socket in
    # every process: the port stayed bound and took connections nobody
    # served after a reload had dropped its listener.
    ini = os.path.join(str(workdir), "p.ini")
    ports = os.path.join(str(workdir), "p.ports")

    def write(name, listen):
        with open(ini, "w") as f:
            f.write(harness.ini_text([("portier", [("log", "stderr"), ("ports_file", ports)]),
                                      listener(name, http_backend.port, mode="plain",
                                               listen=listen)]))
    write("a", "127.0.0.1:0")
    with open(os.path.join(str(workdir), "out"), "wb") as out:
        p = harness.subprocess.Popen(["sh", "-c", 'exec "$0" -f -c "$1" 2>&-',
                                      harness.PORTIER_BIN, ini], stdin=harness.subprocess.DEVNULL,
                                     stdout=out, env=dict(os.environ, **harness.portier_env()))
    try:
        harness.wait_for(lambda: read(ports).startswith("a "), 10, "listener a in " + ports)
        old_port = int(read(ports).split()[1].rsplit(":", 1)[1])
        harness.wait_for(lambda: children(p.pid), 10, "a worker")
        old = children(p.pid)
        write("b", "127.0.0.1:%d" % harness.free_port())   # not a's socket
        os.kill(p.pid, signal.SIGHUP)
        harness.wait_for(lambda: read(ports).startswith("b "), 10, "listener b in " + ports)
        harness.wait_for(lambda: not any(harness.alive(w) for w in old), 10,
                         "the old worker to end")
        s = socket.socket()
        s.settimeout(5)
        try:
            with pytest.raises(ConnectionRefusedError):
                s.connect(("127.0.0.1", old_port))
        finally:
            s.close()
    finally:
        p.terminate()
        p.wait(10)
