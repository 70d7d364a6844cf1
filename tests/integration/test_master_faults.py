"""The master when something around it goes wrong: a listen port another
program holds (at start and on reload), a ports_file or pid_file whose
directory is missing, a ports_file that must name only sockets that
listen (moved, unwritable, at stop and drain), a pid_file deleted under
a running master, processes whose memory (and keys) their own user could
read, a worker that cannot start, SIGUSR1 after the log's directory was
removed, a stopped worker when the master is told to stop, an old worker
killed while it drains, and the per-client limit's IPv6 grouping by a
prefix that is no whole byte."""

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

import harness
from harness import listener, tls_items
from hostile_support import cpu_finding
from test_keys import Detached
from test_logfile import read
from test_workers import children, status

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d portier: "


def web(certs, backend_port, name="web", listen="127.0.0.1:0", extra=()):
    return [("tls", tls_items(certs.ec)),
            listener(name, backend_port, protocol="http", listen=listen, extra=list(extra))]


def get(port, certs, path="/who"):
    out, _, _ = harness.https_get(port, certs.client_context(), path)
    return out


def line_of(path, needle):
    """The 1-based number of the line of file path that holds needle."""
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if needle in line:
                return i
    raise AssertionError("%r not in %s" % (needle, path))


@pytest.fixture
def holder():
    """A socket listening on a loopback port: another program holding it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s
    s.close()


# ---- a listen port another program holds ------------------------------------

@pytest.mark.parametrize("args", [["-f"], []], ids=["foreground", "detaching"])
def test_a_port_held_at_start_names_its_line_and_exits_1(workdir, certs, http_backend,
                                                          holder, args):
    """Binding comes before detaching: the error reaches the terminal as
    FILE:LINE: [section] listen: with the address, and portier exits 1
    (portier(8), EXIT STATUS) without writing its pid_file or ports_file,
    with or without -f."""
    held_port = holder.getsockname()[1]
    d = str(workdir)
    pid_file, ports_file = os.path.join(d, "portier.pid"), os.path.join(d, "portier.ports")
    ini = os.path.join(d, "portier.ini")
    with open(ini, "w") as f:
        f.write(harness.ini_text(
            [("portier", [("log", os.path.join(d, "portier.log")), ("pid_file", pid_file),
                          ("ports_file", ports_file)])] +
            web(certs, http_backend.port, "first") +
            [listener("held", http_backend.port, protocol="http",
                      listen="127.0.0.1:%d" % held_port)]))
    cp = harness.run([harness.PORTIER_BIN] + args + ["-c", ini], timeout=20)
    at = line_of(ini, "listen = 127.0.0.1:%d" % held_port)
    assert cp.returncode == 1, (cp.returncode, cp.out, cp.err)
    assert (cp.out + cp.err).splitlines() == [
        "%s:%d: [held] listen: cannot listen on '127.0.0.1:%d': Address already in use "
        "(another program holds it: ss -ltnp)" % (ini, at, held_port)], cp.out + cp.err
    assert not os.path.exists(pid_file) and not os.path.exists(ports_file)
    assert read(os.path.join(d, "portier.log")) == ""


def test_a_reload_onto_a_held_port_closes_what_it_bound_and_serves_on(
        portier, certs, http_backend, holder):
    """A reload whose new listener's port is held is refused at that line;
    a new listener bound before it is closed again, the running
    configuration serves on its old port with its old worker, and once the
    port is free the same file reloads."""
    held_port = holder.getsockname()[1]
    p = portier(web(certs, http_backend.port))
    port = p.port("web")
    worker = p.worker_pid()
    fresh = harness.free_port()
    new = (web(certs, http_backend.port) +
           [listener("fresh", http_backend.port, protocol="http",
                     listen="127.0.0.1:%d" % fresh),
            listener("held", http_backend.port, protocol="http",
                     listen="127.0.0.1:%d" % held_port)])
    p.rewrite(new)
    mark = p.reload(expect="reload refused")
    log = p.log()[mark:]
    at = line_of(p.ini, "listen = 127.0.0.1:%d" % held_port)
    assert ("%s:%d: [held] listen: cannot listen on '127.0.0.1:%d': Address already in "
            "use" % (p.ini, at, held_port)) in log, log
    assert "reload refused: %s has 1 error; still serving the configuration loaded " \
        "before" % p.ini in log, log
    assert not harness.port_open(fresh), "the refused reload left [fresh] listening"
    assert sorted(p.ports) == ["web"], p.ports
    assert get(port, certs).startswith(b"HTTP/1.1 200"), "the old port stopped serving"
    assert p.workers(since=mark) == {} and harness.alive(worker), log
    # Nothing of the refused reload stays in the way of the next one.
    holder.close()
    p.reload()
    assert sorted(p.ports) == ["fresh", "held", "web"], p.ports
    assert p.port("fresh") == fresh and p.port("held") == held_port
    for name in ("web", "fresh", "held"):
        assert get(p.port(name), certs).startswith(b"HTTP/1.1 200"), name


# ---- a ports_file or pid_file whose directory does not exist ----------------

def missing_dir_config(workdir, certs, backend_port, key, listen="127.0.0.1:0"):
    """A config whose KEY names a file in a directory that does not exist:
    (its text, the file's path)."""
    path = os.path.join(str(workdir), "nodir", "portier." + key.split("_")[0])
    return harness.ini_text([("portier", [("log", "stderr"), (key, path)])] +
                            web(certs, backend_port, listen=listen)), path


def missing_dir_warning(ini, key, path):
    return ("warning: %s:%d: [portier] %s: '%s' cannot be written: directory '%s' does "
            "not exist" % (ini, line_of(ini, "%s = " % key), key, path, os.path.dirname(path)))


@pytest.mark.parametrize("key", ["ports_file", "pid_file"])
def test_check_warns_of_a_file_whose_directory_is_missing(workdir, certs, http_backend, key):
    """-t said "configuration OK" and the start then could not write the
    file. Now a warning at the key's line (exit 0: portier does start, and
    a directory a service manager makes at start may not be there yet)."""
    text, path = missing_dir_config(workdir, certs, http_backend.port, key)
    rc, out, ini = harness.portier_check(workdir, text)
    assert rc == 0, out
    assert out.splitlines() == [missing_dir_warning(ini, key, path),
                                "%s: configuration OK (1 listeners, with warnings)" % ini], out
    # A path under a file is no better; a directory that exists says nothing.
    blocker = os.path.join(str(workdir), "nodir")
    with open(blocker, "w"):
        pass
    rc, out, ini = harness.portier_check(workdir, text)
    assert rc == 0 and ("[portier] %s: '%s' cannot be written: '%s' is not a directory"
                        % (key, path, blocker)) in out, out
    os.unlink(blocker)
    os.mkdir(blocker)
    rc, out, ini = harness.portier_check(workdir, text)
    assert rc == 0 and out.splitlines() == ["%s: configuration OK (1 listeners)" % ini], out


def test_a_ports_file_in_a_missing_directory_is_said_at_its_line_and_portier_serves(
        workdir, certs, http_backend):
    """At start, and again on reload, the log names the key's line, then
    the write that failed; portier serves all the same."""
    port = harness.free_port()
    text, path = missing_dir_config(workdir, certs, http_backend.port, "ports_file",
                                    listen="127.0.0.1:%d" % port)
    ini = os.path.join(str(workdir), "portier.ini")
    with open(ini, "w") as f:
        f.write(text)
    proc = harness.Proc([harness.PORTIER_BIN, "-f", "-c", ini],
                        os.path.join(str(workdir), "portier.log"), "portier")
    try:
        failed = "warning: cannot write ports_file %s: No such file or directory" % path
        harness.wait_for(lambda: "serving (pid" in proc.log() or not proc.alive(), 10,
                         "the worker to serve")
        log = proc.log()
        assert missing_dir_warning(ini, "ports_file", path) in log.splitlines()[0], log
        assert failed in log, log
        assert get(port, certs).startswith(b"HTTP/1.1 200")
        mark = len(proc.log())
        os.kill(proc.pid, signal.SIGHUP)
        harness.wait_for(lambda: "reloaded:" in proc.log()[mark:], 10, "the reload")
        log = proc.log()[mark:]
        assert missing_dir_warning(ini, "ports_file", path) in log, log
        assert failed in log, log
        assert not os.path.exists(os.path.dirname(path))
        assert get(port, certs).startswith(b"HTTP/1.1 200")
    finally:
        rc, killed = proc.stop()
    assert rc == 0 and not killed, proc.log()


def test_a_pid_file_that_is_a_fifo_or_a_symlink_is_not_written(portier, workdir, certs,
                                                                http_backend):
    """The master opened pid_file with fopen(): a FIFO there made it wait
    for a reader for ever, its workers unsupervised and SIGTERM unheard;
    a symlink was followed, so a root master could be led to truncate any
    file. -t warns of both at the line; a reload naming either goes on
    without writing it, the symlink's target untouched, and the stop
    ends."""
    fifo = os.path.join(str(workdir), "pid.fifo")
    os.mkfifo(fifo)
    target = os.path.join(str(workdir), "precious")
    with open(target, "w") as f:
        f.write("keep\n")
    link = os.path.join(str(workdir), "pid.link")
    os.symlink(target, link)
    p = portier(web(certs, http_backend.port))
    glob = p.sections[0]
    for path, what in ((fifo, "a FIFO"), (link, "a symlink")):
        p.sections[0] = ("portier", list(glob[1]) + [("pid_file", path)])
        text = harness.ini_text(p.sections)
        rc, out, ini = harness.portier_check(workdir, text)
        assert rc == 0, out
        assert ("warning: %s:%d: [portier] pid_file: '%s' is not a regular file (%s); "
                "portier writes its pid_file only as one"
                % (ini, line_of(ini, "pid_file = "), path, what)) in out.splitlines(), out
        p.rewrite(p.sections[1:])
        mark = p.reload()
        assert ("warning: reload: cannot write pid_file %s: Invalid argument" % path
                in p.log()[mark:]), p.log()[mark:]
        assert get(p.port("web"), certs).startswith(b"HTTP/1.1 200")
    with open(target) as f:
        assert f.read() == "keep\n"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_descriptors_of_the_starting_process_are_not_kept(workdir, certs, http_backend):
    """A descriptor the starting process left open (here the write end of a
    pipe, as a supervisor that waits for EOF would hold) stayed open in
    the master and in every worker, past their switch of user: the reader
    never saw EOF while portier ran. Now portier closes what it did not
    open, so EOF comes once the starter closes its own copy."""
    r, w = os.pipe()
    ini = os.path.join(str(workdir), "portier.ini")
    port = harness.free_port()
    with open(ini, "w") as f:
        f.write(harness.ini_text([("portier", [("log", "stderr"), ("workers", "2")])] +
                                 web(certs, http_backend.port,
                                     listen="127.0.0.1:%d" % port)))
    logpath = os.path.join(str(workdir), "portier.log")
    with open(logpath, "w") as log:
        proc = subprocess.Popen([harness.PORTIER_BIN, "-f", "-c", ini], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, pass_fds=(w,),
                                env=dict(os.environ, **harness.portier_env()))
    os.close(w)
    try:
        harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", read(logpath))) == 2,
                         10, "both workers to serve")
        assert get(port, certs).startswith(b"HTTP/1.1 200")
        os.set_blocking(r, False)
        try:
            got = os.read(r, 1)
        except BlockingIOError:
            got = None
        assert got == b"", "portier holds the starter's pipe:\n" + read(logpath)
    finally:
        os.close(r)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    assert rc == 0, read(logpath)


# ---- the ports_file names sockets that listen -------------------------------

def set_ports_file(p, path):
    """p's [portier] section with ports_file = path, for its next rewrite."""
    p.sections[0] = ("portier", [(k, path if k == "ports_file" else v)
                                 for k, v in p.sections[0][1]])


def hup(p):
    """SIGHUP; waits for the reload's verdict, which must be "reloaded" (the
    ports_file is settled by then). The log from before it is returned.
    (Portier.reload would read the ports_file these tests move or take.)"""
    # Every current worker serves first: one still starting would say,
    # after the commit, that it cannot tell the master any more.
    harness.wait_for(lambda: all("serving (pid %d)" % pid in p.log()
                                 for pid in p.workers().values()), 10, "the workers to serve")
    mark = p.mark()
    os.kill(p.proc.pid, signal.SIGHUP)
    p.wait_log(r"reloaded: ", since=mark, timeout=10)
    return p.log()[mark:]


def test_the_ports_file_follows_a_reload_that_moves_it_and_goes_at_stop(
        portier, workdir, certs, http_backend):
    """A reload that named another ports_file wrote it and left the old one
    behind, and the stop left the last one: ports nobody listened on any
    more, for portier probe and admins' scripts to read. Now the old one
    goes once the new one is written, and the last one at stop."""
    p = portier(web(certs, http_backend.port))
    first = p.ports_file
    port = p.port("web")
    moved = os.path.join(str(workdir), "moved.ports")
    set_ports_file(p, moved)
    p.rewrite(web(certs, http_backend.port) +
              [listener("more", http_backend.port, protocol="http")])
    log = hup(p)
    assert "cannot write" not in log, log
    assert not os.path.exists(first), "the ports_file of before is still there"
    lines = read(moved).splitlines()
    assert lines[0] == "web 127.0.0.1:%d" % port and len(lines) == 2, lines
    assert re.fullmatch(r"more 127\.0\.0\.1:\d+", lines[1]), lines
    p.stop()
    assert not os.path.exists(moved), "the stop left the ports_file"
    assert p.log().rstrip().endswith("portier stopped"), p.log()


def test_a_ports_file_that_cannot_be_written_leaves_the_old_one_only_while_it_is_true(
        portier, workdir, certs, http_backend):
    """A reload that could not write its ports_file left the one written
    before as it was, naming the sockets of the configuration before. Now
    that one stays while it says what is true (a reload that moved no
    socket) and goes when the sockets changed, as the warning says; at stop
    the master removes only a file that still holds what it wrote. The
    write is made to fail by a FIFO at the temporary path beside it."""
    p = portier(web(certs, http_backend.port))
    path = p.ports_file
    before = read(path)
    os.mkfifo(path + ".tmp")
    log = hup(p)
    assert ("warning: cannot write ports_file %s: Invalid argument; keeping %s, written "
            "before: it still names the sockets" % (path, path)) in log, log
    assert read(path) == before
    p.rewrite(web(certs, http_backend.port) +
              [listener("more", http_backend.port, protocol="http")])
    log = hup(p)
    assert ("warning: cannot write ports_file %s: Invalid argument; removed %s, written "
            "before: it named sockets of the configuration before" % (path, path)) in log, log
    assert not os.path.exists(path)
    os.unlink(path + ".tmp")
    log = hup(p)
    assert "cannot write" not in log and re.match(r"web .*\nmore ", read(path)), log
    # What another put at that path since is not the master's to remove.
    with open(path, "w") as f:
        f.write(before)
    p.stop()
    assert read(path) == before


def test_a_drain_removes_the_ports_file_when_the_sockets_close(portier, certs, http_backend):
    """SIGQUIT closes the listening sockets at once while open connections
    run on: the ports_file goes then, not when the last one ends."""
    p = portier(web(certs, http_backend.port))
    held = certs.client_context().wrap_socket(
        socket.create_connection(("127.0.0.1", p.port("web")), timeout=10 * harness.SLOW),
        server_hostname="localhost")
    try:
        held.sendall(b"GET /echo/held HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b"200 OK" in held.recv(65536)
        mark = p.mark()
        os.kill(p.proc.pid, signal.SIGQUIT)
        p.wait_log(r"worker 1\.1: SIGQUIT: no longer accepting; draining 1 connection",
                   since=mark)
        assert not os.path.exists(p.ports_file), "the ports_file outlived the sockets"
        assert p.proc.alive(), p.log()[mark:]
    finally:
        held.close()
    p.wait_log(r"drained: the last worker has finished; exiting with status 0", since=mark)


# ---- a pid_file deleted under a running master -----------------------------

def test_a_reload_writes_the_pid_file_again_that_was_deleted_or_overwritten(
        portier, workdir, certs, http_backend):
    """A reload whose pid_file path had not changed wrote nothing, so a
    pid_file deleted under the running master (a tmpfiles cleaner, a
    logrotate mistake) stayed gone and the next `kill -HUP $(cat ...)`
    missed. Now a reload writes it again when it is missing or no longer
    holds the master's pid; and the stop leaves one that holds another
    process's pid (a second instance given the same path)."""
    pid_file = os.path.join(str(workdir), "portier.pid")
    p = portier(web(certs, http_backend.port), glob=[("pid_file", pid_file)])
    ours = "%d\n" % p.proc.pid
    assert read(pid_file) == ours
    os.unlink(pid_file)
    log = hup(p)
    assert "cannot write" not in log, log
    assert read(pid_file) == ours, "the reload did not write the deleted pid_file again"
    with open(pid_file, "w") as f:
        f.write("1\n")
    hup(p)
    assert read(pid_file) == ours, "the reload left another pid in the pid_file"
    with open(pid_file, "w") as f:
        f.write("1\n")
    p.stop()
    assert read(pid_file) == "1\n", "the stop removed a pid_file that was not the master's"


# ---- the keys out of reach of the processes' own users ----------------------

def test_portier_run_by_a_user_cannot_be_read_by_that_user(workdir, certs, http_backend):
    """portier started by an unprivileged user (no `user` key): its
    master and worker hold every private key, and were dumpable, so any
    process of that user could trace them and read their memory, and a
    crash left the keys in a core file. Now the master makes itself
    non-dumpable before it reads a key, and the workers inherit it: the
    kernel then gives their /proc files to root, not to the user (which
    is how this test sees it without tracing anything)."""
    nobody = pwd.getpwnam("nobody")
    d = harness.world_dir("dumpable")
    try:
        cert, key = os.path.join(d, "ec.pem"), os.path.join(d, "ec.key")
        shutil.copy(certs.ec.cert, cert)
        shutil.copy(certs.ec.key, key)
        for path in (d, cert, key):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        ports = os.path.join(d, "portier.ports")
        ini = os.path.join(d, "portier.ini")
        with open(ini, "w") as f:
            f.write(harness.ini_text(
                [("portier", [("log", "stderr"), ("ports_file", ports)]),
                 ("tls", [("cert", cert), ("key", key)]),
                 listener("web", http_backend.port, protocol="http")]))
        proc = harness.Proc(["setpriv", "--reuid=%d" % nobody.pw_uid,
                             "--regid=%d" % nobody.pw_gid, "--clear-groups",
                             harness.PORTIER_BIN, "-f", "-c", ini],
                            os.path.join(str(workdir), "portier.log"), "portier")
        try:
            m = harness.wait_for(lambda: re.search(r"serving \(pid (\d+)\)", proc.log()) or
                                 not proc.alive(), 10, "the worker to serve")
            assert proc.alive(), proc.log()
            worker = int(m.group(1))
            for pid in (proc.pid, worker):
                assert status(pid)["Uid"].split() == [str(nobody.pw_uid)] * 4, status(pid)
                owner = os.stat("/proc/%d/environ" % pid).st_uid
                assert owner == 0, "pid %d is dumpable: its /proc files belong to uid %d" \
                    % (pid, owner)
            port = int(read(ports).split()[1].rsplit(":", 1)[1])
            assert get(port, certs).startswith(b"HTTP/1.1 200")
        finally:
            rc, killed = proc.stop()
        assert rc == 0 and not killed, proc.log()
    finally:
        shutil.rmtree(d)


def test_workers_that_switch_user_cannot_gain_privileges(portier, certs, http_backend):
    """A worker that gave up root could gain privileges again through a
    setuid program or file capabilities, had anything made it exec one.
    Now every worker sets no_new_privs (it execs nothing, and serves as
    before); the master, which starts them, does not."""
    p = portier(web(certs, http_backend.port), glob=[("workers", "2"), ("user", "nobody")])
    harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", p.log())) == 2, 10,
                     "both workers to serve")
    for n in (1, 2):
        st = status(p.worker_pid(n))
        assert st["Uid"].split()[0] != "0" and st["NoNewPrivs"] == "1", (n, st)
    assert status(p.proc.pid)["NoNewPrivs"] == "0"
    for _ in range(2):
        assert get(p.port("web"), certs).startswith(b"HTTP/1.1 200")
    p.reload()
    assert get(p.port("web"), certs).startswith(b"HTTP/1.1 200")


# ---- a worker that cannot start ---------------------------------------------

QUICK_END = (r"error: worker 1 \(pid (\d+)\) exited with status 1 after 0\.\ds; starting "
             r"another in (\d+)s")


def test_a_worker_that_cannot_start_is_replaced_after_pauses_that_double(workdir, certs,
                                                                         http_backend):
    """A worker that dies as soon as it starts, every time, was replaced
    every second for ever: a log line (two, with the reason) a second per
    worker, for days. Here it is a real one: `user = nobody` under a
    bounding set without CAP_SETUID (a unit's CapabilityBoundingSet that
    forgot it), so the switch of user fails after the fork. Now the pause
    doubles with each quick death in a row (up to 60 s), and the line says
    how long it is."""
    ini = os.path.join(str(workdir), "portier.ini")
    with open(ini, "w") as f:
        f.write(harness.ini_text([("portier", [("log", "stderr"), ("user", "nobody")])] +
                                 web(certs, http_backend.port)))
    proc = harness.Proc(["setpriv", "--bounding-set=-setuid", harness.PORTIER_BIN, "-f",
                         "-c", ini], os.path.join(str(workdir), "portier.log"), "portier")
    try:
        # 1 s, then 2 s: the third end comes some 3 s after the first.
        harness.wait_for(lambda: len(re.findall(QUICK_END, proc.log())) >= 3 or
                         not proc.alive(), 10, "three quick ends of worker 1")
        log = proc.log()
        ends = re.findall(QUICK_END, log)
        assert [int(pause) for _, pause in ends[:3]] == [1, 2, 4], log
        assert "starting another in 4s (3 quick deaths in a row; the pause doubles up to " \
            "60s)" in log, log
        for pid, _ in ends[:3]:
            assert log.count("worker 1 started (pid %s)" % pid) == 1, log
        # The worker's own line, tagged as every worker's is.
        assert len(re.findall(r"^portier: worker 1\.1: warning: cannot switch to user nobody: "
                              r"Operation not permitted$", log, re.M)) >= 3, log
    finally:
        rc, killed = proc.stop()
    assert rc == 0 and not killed, proc.log()


def age(pid):
    """How long pid has run, in seconds, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    start = int(stat[stat.rindex(")") + 2:].split()[19])
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) - start / os.sysconf("SC_CLK_TCK")


def test_the_pause_starts_again_from_a_second_once_a_worker_lived(portier, workdir, certs,
                                                                  http_backend):
    """The count of quick deaths is of deaths in a row: a worker that lived
    (RESPAWN_QUICK_S, a second) is replaced at once when it dies, and the
    next quick death waits a second again, not the doubled pause of the
    deaths before. The worker fails through PORTIER_TEST_WORKER_FAIL
    (main.c) while its file exists."""
    fail = os.path.join(str(workdir), "workers-fail")
    with open(fail, "w") as f:
        f.write("exit\n")
    p = portier(web(certs, http_backend.port), env={"PORTIER_TEST_WORKER_FAIL": fail})
    harness.wait_for(lambda: len(re.findall(QUICK_END, p.log())) >= 2, 10,
                     "two quick ends of worker 1")
    assert [int(x) for _, x in re.findall(QUICK_END, p.log())] == [1, 2], p.log()
    os.unlink(fail)
    lived = int(p.wait_log(r"worker 1\.1: serving \(pid (\d+)\)", timeout=10).group(1))
    harness.wait_for(lambda: age(lived) > 1.5, 10, "the serving worker to live 1.5s")
    with open(fail, "w") as f:
        f.write("exit\n")
    mark = p.mark()
    os.kill(lived, signal.SIGKILL)
    m = p.wait_log(r"error: worker 1 \(pid %d\) was killed by signal 9 \(Killed\) after "
                   r"(\d+\.\d)s; starting another(.*)$" % lived, since=mark)
    assert float(m.group(1)) >= 1.0 and m.group(2) == "", m.group(0)
    m = p.wait_log(QUICK_END + "$", since=mark, timeout=10)
    assert m.group(2) == "1", m.group(0)
    # Served again before the stop: a worker that fails while the master
    # stops would be an unclean end.
    os.unlink(fail)
    p.wait_log(r"worker 1\.1: serving \(pid (?!%d\))\d+\)" % lived, since=mark, timeout=10)


# ---- SIGUSR1 after the log's directory was removed ---------------------------

def test_sigusr1_without_the_logs_directory_keeps_serving_and_logs_again_once_it_is_back(
        workdir, certs, http_backend):
    """rm -r of the log's directory, then SIGUSR1: the master cannot open the
    file again and says so once, in the file it keeps writing (the old one,
    now unlinked: this test reads it through a descriptor it opened
    before), and nobody dies or spins; every worker keeps serving and
    logging there. With the directory back, the next SIGUSR1 moves the
    master and every worker to the new file, where the master says since
    when the lines went to the old one."""
    logdir = os.path.join(str(workdir), "logs")
    os.mkdir(logdir)
    log = os.path.join(logdir, "portier.log")
    d = Detached(workdir, web(certs, http_backend.port), [("log", log), ("workers", "2")])
    workers = []
    try:
        harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", read(log))) == 2 and
                         len(re.findall(r"worker \d started", read(log))) == 2,
                         10, "both workers to serve")
        workers = [int(x) for x in re.findall(r"worker \d started \(pid (\d+)\)", read(log))]
        with open(log) as old:
            def old_text():
                old.seek(0)
                return old.read()

            shutil.rmtree(logdir)
            os.kill(d.master, signal.SIGUSR1)
            cannot = (r"^%swarning: SIGUSR1: cannot reopen the log %s; logging on to the "
                      r"old file: No such file or directory$" % (STAMP, re.escape(log)))
            harness.wait_for(lambda: re.search(cannot, old_text(), re.M), 10,
                             "the master to say it cannot reopen the log")
            for pid in [d.master] + workers:
                assert harness.alive(pid), pid
                finding = cpu_finding(pid, "the log could not be reopened")
                assert finding is None, finding
            before = len(harness.close_lines(old_text()))
            for _ in range(4):
                assert get(d.port, certs).startswith(b"HTTP/1.1 200")
            harness.wait_for(lambda: len(harness.close_lines(old_text())) == before + 4, 10,
                             "four close lines in the old file")
            assert not os.path.exists(logdir)

            os.mkdir(logdir)
            os.kill(d.master, signal.SIGUSR1)
            harness.wait_for(
                lambda: all(re.search(r"^%sworker 1\.%d: log reopened$" % (STAMP, n),
                                      read(log), re.M) for n in (1, 2)),
                10, "both workers to say so in the new " + log)
            assert re.search(r"^%slog reopened \(SIGUSR1\): %s$" % (STAMP, re.escape(log)),
                             read(log), re.M), read(log)
            # The new file says the old one had the lines in between: the
            # warning of the failed reopen went only there.
            gap = (r"^%swarning: SIGUSR1: the log could not be reopened from \d{4}-\d\d-\d\d "
                   r"\d\d:\d\d:\d\d UTC \(No such file or directory\); the lines logged "
                   r"until now went to the file it had before$" % STAMP)
            assert len(re.findall(gap, read(log), re.M)) == 1, read(log)
            assert not re.search(gap, old_text(), re.M), old_text()
            # The first SIGUSR1 was handled whole before the second: it
            # said so once.
            assert len(re.findall(cannot, old_text(), re.M)) == 1, old_text()
            kept = old_text()
            for _ in range(4):
                assert get(d.port, certs).startswith(b"HTTP/1.1 200")
            harness.wait_for(lambda: len(harness.close_lines(read(log))) == 4, 10,
                             "four close lines in the new file")
            assert old_text() == kept, "a line still went to the old file"
        assert all(harness.alive(p) for p in workers)
        assert not re.search(r"worker \d started", read(log)), "a worker was replaced"
    finally:
        d.stop(workers)


# ---- a stopped worker when the master stops ----------------------------------

def state(pid):
    """The state letter of pid ("T" stopped), "" once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2]     # comm may hold spaces and ')'


def test_a_stop_under_a_storm_of_sigterms_ends_as_a_stop(workdir, certs, http_backend):
    """SIGTERM again and again, as an impatient supervisor or a script in a
    loop sends it: the master stops once and ends as a stop should, exit 0,
    its last line said, its pid_file and ports_file removed, each worker
    ended in order. The master unblocked its signals on the way out, so a
    SIGTERM pending then killed it by the default action (status -15, the
    files left behind, no last line). A worker stopped its signal watchers
    (libev gives SIGTERM its default action back) before it ignored
    SIGTERM, so one the master passed on in between killed it (exit 1, "was
    killed by signal 15 while stopping"); the shim widens that instant."""
    shim = os.path.join(harness.PORTIER_BUILD, "tests", "libsigign_delay.so")
    assert os.path.exists(shim), "the sigign_delay shim was not built: %s" % shim
    pid_file = os.path.join(str(workdir), "portier.pid")
    p = harness.Portier(workdir, web(certs, http_backend.port),
                        glob=[("workers", "2"), ("pid_file", pid_file)],
                        env={"LD_PRELOAD": shim, "PORTIER_FAULT_SIGIGN_DELAY_MS": "300",
                             "ASAN_OPTIONS": "verify_asan_link_order=0"})
    try:
        harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", p.log())) == 2, 5,
                         "both workers to serve")
        rc = None
        done = threading.Event()

        def storm():
            # As fast as kill(2) goes, until the master has exited: the
            # window between its last read of its signals and its exit is
            # microseconds. The exit is waited for without reaping
            # (WNOWAIT), so the pid cannot be another's meanwhile.
            for _ in range(20000000):
                if done.is_set():
                    break
                os.kill(p.proc.pid, signal.SIGTERM)
        t = threading.Thread(target=storm, daemon=True)
        t.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and \
                os.waitid(os.P_PID, p.proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
            time.sleep(0.01)
        done.set()
        t.join(10)
        rc = p.proc.p.wait(timeout=1)
    finally:
        if rc is None:
            p.proc.stop(timeout=5)
        p.stopped = True
    log = p.log()
    assert rc == 0, "exit %s:\n%s" % (rc, log)
    assert "killed" not in log, log
    assert re.search(r"portier: portier stopped$", log, re.M), log
    assert not os.path.exists(pid_file), log
    assert not os.path.exists(p.ports_file), log


def test_sigterm_with_a_stopped_worker_kills_it_after_the_grace_and_exits_1(
        portier, certs, http_backend):
    """A worker that cannot take SIGTERM (SIGSTOP, as a debugger or a
    frozen cgroup would leave it) does not hold the master for ever: after
    its 10 s the master SIGKILLs it, reaps it and exits 1 (portier(8):
    a worker killed after the grace period is an unclean stop); the other
    worker ends cleanly."""
    p = portier(web(certs, http_backend.port), glob=[("workers", "2")])
    harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", p.log())) == 2, 5,
                     "both workers to serve")
    frozen, other = p.worker_pid(1), p.worker_pid(2)
    os.kill(frozen, signal.SIGSTOP)
    try:
        harness.wait_for(lambda: state(frozen) == "T", 5, "worker 1 to be stopped")
        mark = p.mark()
        # SIGTERM, and again every 2 s as an impatient supervisor would,
        # for at most 25 s (10 s of grace, then the kill and the reap, with
        # room to spare): the grace runs from the first, where each one
        # used to start it again, so the kill never came.
        rc = None
        for _ in range(13):
            os.kill(p.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                rc = p.proc.p.wait(timeout=2)
                break
        killed = rc is None
        if killed:
            p.proc.stop(timeout=5)
        p.stopped = True
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGCONT)     # whatever happened, it may end
    log = p.log()[mark:]
    assert not killed, "the master did not end within 25 s of SIGTERMs:\n" + log
    assert rc == 1, "exit %s:\n%s" % (rc, log)
    assert "got signal 15, stopping 2 workers" in log, log
    assert re.search(r"worker 1\.2: got signal 15, shutting down", log), log
    assert "error: 1 worker still running 10s after SIGTERM; killing it" in log, log
    assert ("error: worker 1 (pid %d) was killed by signal 9 (Killed) while stopping"
            % frozen) in log, log
    assert "worker 2 (pid %d)" % other not in log, "worker 2 did not end cleanly:\n" + log
    assert log.rstrip().endswith("portier stopped"), log
    assert not harness.alive(frozen) and not harness.alive(other)


# ---- an old worker killed while it drains ------------------------------------

def test_an_old_worker_killed_while_draining_is_reaped_not_replaced(portier, certs,
                                                                    http_backend):
    """kill -9 of a worker of the previous configuration, draining a
    connection after a reload: the master reaps it and says how it ended;
    it starts nothing in its place (its generation is over), and the new
    generation serves on, its worker untouched."""
    p = portier(web(certs, http_backend.port))
    port = p.port("web")
    old = p.worker_pid()
    held = certs.client_context().wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10 * harness.SLOW),
        server_hostname="localhost")
    try:
        held.sendall(b"GET /echo/held HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b"200 OK" in held.recv(65536)
        mark = p.reload()
        p.wait_log(r"worker 1\.1: SIGQUIT: no longer accepting; draining 1 connection",
                   since=mark)
        new = p.workers(since=mark)[1]
        p.wait_log(r"worker 2\.1: serving \(pid %d\)" % new, since=mark)
        assert children(p.proc.pid) == sorted([old, new])
        mark = p.mark()
        os.kill(old, signal.SIGKILL)
        p.wait_log(r"error: worker \(pid %d\) of the previous configuration was killed by "
                   r"signal 9 \(Killed\)$" % old, since=mark)
        # A signal the master answers in its loop: by its answer the loop
        # has passed the point where it would start a worker after the reap.
        os.kill(p.proc.pid, signal.SIGUSR1)
        p.wait_log(r"SIGUSR1: the log is not a file; nothing to reopen", since=mark)
        assert p.workers(since=mark) == {}, p.log()[mark:]
        assert children(p.proc.pid) == [new]
        for _ in range(3):
            assert get(port, certs).startswith(b"HTTP/1.1 200")
        harness.wait_for(lambda: len(re.findall(r"worker 2\.1: \[web\] close ",
                                                p.log()[mark:])) == 3, 5,
                         "three close lines from the new worker")
        assert "worker 1.1" not in p.log()[mark:], p.log()[mark:]
    finally:
        held.close()
    p.stop()          # exit 0: an old worker's end is no unclean stop


# ---- ipv6_prefix not a multiple of 8 -----------------------------------------

def v6_client(port):
    return socket.create_connection(("::1", port), timeout=3 * harness.SLOW)


def test_ipv6_prefix_60_counts_two_clients_from_the_same_60_as_one(portier, certs,
                                                                     http_backend):
    """ipv6_prefix = 60 (no whole number of bytes) on an IPv6 listener: two
    connections from ::1 are one client of one /60, so max_connections_per_ip
    = 1 refuses the second before its handshake and serves again once the
    first ends. (Addresses that differ below and above bit 60 need more than
    ::1: tests/unit/test_limit.c.)"""
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web6", http_backend.port, protocol="http", listen="[::1]:0",
                          extra=[("max_connections_per_ip", "1"), ("ipv6_prefix", "60")])])
    port = p.port("web6")
    assert p.ports["web6"][0][0] == "::1", p.ports
    first = certs.client_context().wrap_socket(v6_client(port), server_hostname="localhost")
    try:
        mark = p.mark()
        second = v6_client(port)
        try:
            got = second.recv(1)
        except socket.timeout:
            got = None          # a server that serves waits for the ClientHello
        except ConnectionResetError:
            got = b""
        finally:
            second.close()
        assert got == b"", "the second client from ::1 was not refused"
        p.wait_log(r"\[web6\] client=\[::1\]:\d+: over max_connections_per_ip \(1\); "
                   r"refusing it, logged once per 60s", since=mark)
    finally:
        first.close()
    harness.wait_for(lambda: re.search(r"\[web6\] close .*client=\[::1\]", p.log()[mark:]),
                     5, "the first client's close line")
    ctx = certs.client_context()
    with v6_client(port) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as t:
        t.sendall(b"GET /echo/v6 HTTP/1.0\r\nHost: localhost\r\n\r\n")
        assert harness.read_to_eof(t).startswith(b"HTTP/1.1 200")
