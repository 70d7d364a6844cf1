"""Keys the rest of the suite never exercised, each against the built portier
with real clients: `log = FILE` and `pid_file` in a detached run,
`log_level = warning`, `alpn = none` and a custom `alpn`, `curves` with no
shared group, a bare `listen = PORT` (v4 and v6), a backend given by name,
`connect_timeout` on a connect that hangs, and `hostname` in the SMTP
greeting and EHLO reply."""

import contextlib
import os
import re
import select
import signal
import socket
import ssl
import time

import pytest

import harness
from harness import listener, s_client, tls_items

REQUEST = b"GET /echo/keys HTTP/1.0\r\nHost: localhost\r\n\r\n"


def tls_get(port, ctx, host="127.0.0.1", request=REQUEST):
    """One request over TLS; (response bytes, selected ALPN id or None)."""
    with socket.create_connection((host, port), timeout=10 * harness.SLOW) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            alpn = t.selected_alpn_protocol()
            t.sendall(request)
            return harness.read_to_eof(t), alpn


def plain_get(port, host):
    with socket.create_connection((host, port), timeout=10 * harness.SLOW) as s:
        s.sendall(REQUEST)
        return harness.read_to_eof(s)


def alpn_ctx(certs, *ids):
    ctx = certs.client_context()
    ctx.set_alpn_protocols(list(ids))
    return ctx


# --------------------------------------------------------------------------
# log = FILE, pid_file, running without -f

class Detached:
    """`portier -c INI` without -f: the command returns once the daemon has
    detached; the master is found by pid_file and stopped by that PID.
    ASan reports go to files under workdir (the daemon's stderr is
    /dev/null), checked at stop. With relative, portier starts in workdir
    and is given the config as `-c portier.ini`."""

    def __init__(self, workdir, sections, glob, env=None, relative=False):
        self.dir = str(workdir)
        self.pid_file = os.path.join(self.dir, "portier.pid")
        self.ports_file = os.path.join(self.dir, "portier.ports")
        self.asan = os.path.join(self.dir, "asan")
        self.ini = os.path.join(self.dir, "portier.ini")
        g = list(glob) + [("pid_file", self.pid_file), ("ports_file", self.ports_file)]
        with open(self.ini, "w") as f:
            f.write(harness.ini_text([("portier", g)] + list(sections)))
        self.master = None
        env = dict(env or {})
        env["ASAN_OPTIONS"] = ":".join(filter(None, ["log_path=" + self.asan,
                                                      env.get("ASAN_OPTIONS")]))
        env["UBSAN_OPTIONS"] = "log_path=" + self.asan
        cp = harness.run([harness.PORTIER_BIN, "-c",
                          os.path.basename(self.ini) if relative else self.ini],
                         timeout=20, env=env, cwd=self.dir if relative else None)
        assert cp.returncode == 0, "portier -c exited %d:\n%s%s" % (cp.returncode, cp.out,
                                                                     cp.err)
        self.master = harness.wait_for(self._read_pid, 10, "pid_file " + self.pid_file)
        try:
            harness.wait_for(lambda: os.path.exists(self.ports_file), 10, "ports_file")
            with open(self.ports_file) as f:
                self.port = int(f.read().split()[1].rsplit(":", 1)[1])
        except BaseException:
            self.stop()
            raise

    def _read_pid(self):
        try:
            with open(self.pid_file) as f:
                text = f.read()
        except OSError:
            return None
        return int(text) if re.fullmatch(r"\d+\n", text) else None

    def stop(self, workers=()):
        """SIGTERM to the master; it and its workers must be gone within the
        bound (SIGKILL after it, and fail)."""
        if self.master is None:
            return
        pid, self.master = self.master, None
        os.kill(pid, signal.SIGTERM)
        pids = [pid] + list(workers)
        try:
            harness.wait_for(lambda: not any(harness.alive(p) for p in pids), 10,
                             "detached portier (pids %s) to exit" % pids)
        except AssertionError:
            for p in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            raise
        reports = [n for n in os.listdir(self.dir) if n.startswith("asan")]
        texts = "".join(open(os.path.join(self.dir, n)).read() for n in reports)
        harness.check_sanitizer(0, texts, "detached portier")
        assert not reports, texts


def test_log_file_detached_appends_with_worker_prefix(workdir, certs, http_backend):
    log = os.path.join(str(workdir), "portier.log")
    with open(log, "w") as f:
        f.write("a line from before\n")
    d = Detached(workdir, [("tls", tls_items(certs.ec)),
                           listener("web", http_backend.port, protocol="http")],
                 [("log", log)])
    workers = []
    try:
        assert d.master != os.getpid() and harness.alive(d.master)
        out, _ = tls_get(d.port, certs.client_context())
        assert out.startswith(b"HTTP/1.1 200") and b"path=/echo/keys" in out, out

        def read():
            with open(log) as f:
                return f.read()
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d portier: "
        close = harness.wait_for(
            lambda: re.search(r"^%sworker 1\.1: \[web\] close client=127\.0\.0\.1:\d+ .*"
                              r"up=\d+ down=\d+ " % stamp, read(), re.M),
            10, "a close line in " + log)
        text = read()
        # Appended, not truncated: the line written before the start is first.
        assert text.startswith("a line from before\n"), text
        m = re.search(r"^%sworker 1 started \(pid (\d+)\)$" % stamp, text, re.M)
        assert m, text
        workers.append(int(m.group(1)))
        assert re.search(r"^%sportier \S+ started: " % stamp, text, re.M), text
        # pid_file names the detached master, not the command we ran.
        assert re.search(r"^%smaster \(pid %d\) starting" % (stamp, d.master), text, re.M), text
        assert close.group(0)
    finally:
        d.stop(workers)
    # The master's last words, and the pid_file taken away.
    text = open(log).read()
    assert re.search(r"portier: portier stopped$", text, re.M), text
    assert not os.path.exists(d.pid_file)


def devlog_env(path):
    """The environment for `log = syslog` into a socket of the test:
    tests/fault/devlog.c moves portier's connect to /dev/log there."""
    shim = os.path.join(harness.PORTIER_BUILD, "tests", "libdevlog.so")
    assert os.path.exists(shim), "the devlog shim was not built: %s" % shim
    # the shim comes before ASan's runtime in the list
    return {"LD_PRELOAD": shim, "PORTIER_FAULT_DEVLOG": path,
            "ASAN_OPTIONS": "verify_asan_link_order=0"}


class SyslogSink:
    """A datagram socket standing in for syslogd: keeps every message."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.msgs = []

    def wait(self, pattern, timeout=10):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * harness.SLOW
        while True:
            for m in self.msgs:
                hit = rx.search(m)
                if hit:
                    return hit
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no syslog message matches %r; got:\n%s"
                                     % (pattern, "\n".join(self.msgs)))
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self.msgs.append(self.sock.recv(65536).decode("utf-8", "replace"))

    def close(self):
        self.sock.close()


# <PRI>Mmm dd hh:mm:ss portier[PID]: text, the traditional format syslogd
# reads from /dev/log; PRI is facility daemon (3) * 8 + severity.
SYSLOG = r"^<%d>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d portier\[(\d+)\]: "
INFO, NOTICE, WARNING = 3 * 8 + 6, 3 * 8 + 5, 3 * 8 + 4


def test_log_syslog_sends_each_line_as_a_datagram_with_its_severity(workdir, certs,
                                                                   http_backend, closed_port):
    sink = SyslogSink(os.path.join(str(workdir), "devlog.sock"))
    d = None
    workers = []
    try:
        d = Detached(workdir, [("tls", tls_items(certs.ec)),
                               listener("web", http_backend.port, protocol="http"),
                               listener("down", closed_port, protocol="http")],
                     [("log", "syslog")], env=devlog_env(sink.path))
        m = sink.wait(SYSLOG % INFO + r"worker 1 started \(pid (\d+)\)$")
        workers.append(int(m.group(2)))
        # The master's lines come from the detached master's pid.
        assert int(m.group(1)) == d.master, m.string
        m = sink.wait(SYSLOG % NOTICE + r"portier \S+ started: ")
        assert int(m.group(1)) == d.master, m.string
        ctx = certs.client_context()
        out, _ = tls_get(d.port, ctx)
        assert out.startswith(b"HTTP/1.1 200"), out
        # A close line: info, from the worker, with its tag.
        m = sink.wait(SYSLOG % INFO + r"worker 1\.1: \[web\] close client=127\.0\.0\.1:\d+ ")
        assert int(m.group(1)) == workers[0], m.string
        with open(d.ports_file) as f:
            down = int(re.search(r"^down \S+:(\d+)$", f.read(), re.M).group(1))
        out, _ = tls_get(down, ctx)
        assert out.startswith(b"HTTP/1.1 502"), out
        # The refusal is a warning.
        sink.wait(SYSLOG % WARNING + r"worker 1\.1: \[down\] client=127\.0\.0\.1:\d+: backend "
                  r"127\.0\.0\.1:%d: .*; refusing in http$" % closed_port)
        # One line per datagram: no newline inside or at the end.
        assert all("\n" not in msg for msg in sink.msgs), sink.msgs
    finally:
        if d is not None:
            d.stop(workers)
        with contextlib.suppress(AssertionError):
            sink.wait(r"portier stopped$", 5)
        sink.close()
    # The master's last words went there too (read before the socket closed).
    assert any(re.search(SYSLOG % NOTICE + r"portier stopped$", m) for m in sink.msgs), \
        sink.msgs


def test_log_syslog_starts_without_syslogd_and_reaches_it_once_it_is_there(
        workdir, certs, http_backend):
    """No syslogd at start is no reason to refuse it (as openlog(3) never
    did): each line tries to connect again until the socket is there."""
    path = os.path.join(str(workdir), "devlog.sock")
    d = Detached(workdir, [("tls", tls_items(certs.ec)),
                           listener("web", http_backend.port, protocol="http")],
                 [("log", "syslog")], env=devlog_env(path))
    sink = None
    workers = []
    try:
        ctx = certs.client_context()
        out, _ = tls_get(d.port, ctx)        # its close line has nowhere to go
        assert out.startswith(b"HTTP/1.1 200"), out
        sink = SyslogSink(path)
        out, _ = tls_get(d.port, ctx)
        assert out.startswith(b"HTTP/1.1 200"), out
        m = sink.wait(SYSLOG % INFO + r"worker 1\.1: \[web\] close client=127\.0\.0\.1:\d+ ")
        workers.append(int(m.group(1)))
        assert workers[0] != d.master, m.string
        # Only the second connection's line: the first had no syslogd.
        closes = [x for x in sink.msgs if " close client=" in x]
        assert len(closes) == 1, sink.msgs
    finally:
        d.stop(workers)
        if sink is not None:
            sink.close()


class StreamSyslogSink:
    """A stream socket standing in for syslogd (syslog-ng's unix-stream()):
    accepts every connection and splits what each sends at its NULs."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.conns = []         # {"sock": socket or None once ended, "tail": bytes}
        self.msgs = []          # (connection index, text)

    def _pump(self, left):
        open_ = [c["sock"] for c in self.conns if c["sock"] is not None]
        r, _, _ = select.select([self.sock] + open_, [], [], left)
        for s in r:
            if s is self.sock:
                c, _ = self.sock.accept()
                self.conns.append({"sock": c, "tail": b""})
                continue
            i = next(i for i, c in enumerate(self.conns) if c["sock"] is s)
            data = s.recv(65536)
            if not data:
                s.close()
                self.conns[i]["sock"] = None
                continue
            *whole, self.conns[i]["tail"] = (self.conns[i]["tail"] + data).split(b"\0")
            self.msgs += [(i, m.decode("utf-8", "replace")) for m in whole]

    def wait(self, pattern, timeout=10):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * harness.SLOW
        while True:
            for i, m in self.msgs:
                hit = rx.search(m)
                if hit:
                    return i, hit
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no syslog message matches %r; got:\n%s"
                                     % (pattern, "\n".join(m for _, m in self.msgs)))
            self._pump(left)

    def unended(self):
        """What any connection sent after its last NUL."""
        return [c["tail"] for c in self.conns if c["tail"]]

    def close(self):
        for c in self.conns:
            if c["sock"] is not None:
                c["sock"].close()
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def test_log_syslog_on_a_stream_socket_ends_lines_with_nul_one_connection_per_process(
        workdir, certs, http_backend):
    """A stream /dev/log (syslog-ng's unix-stream()): the datagram connect
    fails with EPROTOTYPE and portier connects as a stream, each message
    ended by a NUL as glibc's syslog(3) ends them; each process has its own
    connection (a worker's lines never share a byte stream with the
    master's); a syslogd restarted as the other kind is followed."""
    path = os.path.join(str(workdir), "devlog.sock")
    sink = StreamSyslogSink(path)
    d = None
    workers = []
    try:
        d = Detached(workdir, [("tls", tls_items(certs.ec)),
                               listener("web", http_backend.port, protocol="http")],
                     [("log", "syslog")], env=devlog_env(path))
        master_conn, m = sink.wait(SYSLOG % INFO + r"worker 1 started \(pid (\d+)\)$")
        workers.append(int(m.group(2)))
        assert int(m.group(1)) == d.master, m.string
        ctx = certs.client_context()
        out, _ = tls_get(d.port, ctx)
        assert out.startswith(b"HTTP/1.1 200"), out
        conn, m = sink.wait(SYSLOG % INFO + r"worker 1\.1: \[web\] close client=127\.0\.0\.1:\d+ ")
        assert int(m.group(1)) == workers[0], m.string
        assert conn != master_conn, sink.msgs
        assert all(pid == str(d.master) for i, msg in sink.msgs if i == master_conn
                   for pid in re.findall(r"portier\[(\d+)\]", msg)), sink.msgs
        # Every message ended by its NUL, none with a newline.
        assert sink.unended() == [], sink.unended()
        assert all("\n" not in msg for _, msg in sink.msgs), sink.msgs

        # syslogd restarted with a datagram socket: the next line gets there.
        sink.close()
        sink = SyslogSink(path)
        out, _ = tls_get(d.port, ctx)
        assert out.startswith(b"HTTP/1.1 200"), out
        m = sink.wait(SYSLOG % INFO + r"worker 1\.1: \[web\] close client=127\.0\.0\.1:\d+ ")
        assert int(m.group(1)) == workers[0], m.string
        # ... and as a stream again.
        sink.close()
        os.unlink(path)
        sink = StreamSyslogSink(path)
        out, _ = tls_get(d.port, ctx)
        assert out.startswith(b"HTTP/1.1 200"), out
        _, m = sink.wait(SYSLOG % INFO + r"worker 1\.1: \[web\] close client=127\.0\.0\.1:\d+ ")
        assert int(m.group(1)) == workers[0], m.string
        d.stop(workers)
        _, m = sink.wait(SYSLOG % NOTICE + r"portier stopped$")
        assert sink.unended() == [], sink.unended()
    finally:
        if d is not None:
            d.stop(workers)
        sink.close()


def test_log_syslog_stream_line_sent_short_is_ended_before_the_next(
        workdir, certs, http_backend):
    """A stream takes part of a line when it has little room: the cut line
    is ended (a NUL) before the next is sent, so it never runs into it, and
    counts as dropped. The devlog shim sends every fourth line of each
    process short (the master's come whole up to its "worker 1 started")."""
    path = os.path.join(str(workdir), "devlog.sock")
    sink = StreamSyslogSink(path)
    d = None
    workers = []
    try:
        env = devlog_env(path)
        env["PORTIER_FAULT_DEVLOG_SHORT"] = "4"
        d = Detached(workdir, [("tls", tls_items(certs.ec)),
                               listener("web", http_backend.port, protocol="http")],
                     [("log", "syslog")], env=env)
        _, m = sink.wait(SYSLOG % INFO + r"worker 1 started \(pid (\d+)\)$")
        workers.append(int(m.group(2)))
        ctx = certs.client_context()
        for _ in range(7):
            out, _ = tls_get(d.port, ctx)
            assert out.startswith(b"HTTP/1.1 200"), out
        # One of the worker's first four lines was cut: the warning says
        # it, and the lines after it come whole.
        dropped = SYSLOG % WARNING + r"worker 1\.1: 1 log line dropped \(log target not " \
            r"keeping up\)$"
        conn, _ = sink.wait(dropped)
        # The cut line came, ended where it was cut, and the warning after it.
        mine = [msg for i, msg in sink.msgs if i == conn]
        cut = [k for k, msg in enumerate(mine) if " close client=" in msg and
               not re.search(r" time=\d+\.\d+s: \S.*$", msg)]
        assert cut, mine
        assert all(k + 1 < len(mine) and re.search(dropped, mine[k + 1]) for k in cut), mine
        closes = [msg for _, msg in sink.msgs if re.search(
            SYSLOG % INFO + r"worker 1\.1: \[web\] close client=.* time=\d+\.\d+s: .+$", msg)]
        assert len(closes) >= 2, sink.msgs
        # Every message starts with a header, and holds no other: a cut
        # line that ran into the next would.
        for _, msg in sink.msgs:
            assert re.match(r"<\d+>[A-Z][a-z]{2} ", msg), sink.msgs
            assert not re.search(r".<\d+>[A-Z][a-z]{2} ", msg), msg
    finally:
        if d is not None:
            d.stop(workers)
        sink.close()


def test_log_level_warning_drops_close_lines_keeps_warnings(portier, certs, http_backend,
                                                            closed_port):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http"),
                 listener("down", closed_port, protocol="http")],
                glob=[("log_level", "warning")])
    ctx = certs.client_context()
    mark = p.mark()
    out, _ = tls_get(p.port("web"), ctx)
    assert out.startswith(b"HTTP/1.1 200"), out
    out, _ = tls_get(p.port("down"), ctx)
    assert out.startswith(b"HTTP/1.1 502"), out
    # The refusal is a warning: kept, with the worker prefix. It is written
    # before the refused connection closes, after the good one closed.
    p.wait_log(r"^portier: worker 1\.1: warning: \[down\] client=127\.0\.0\.1:\d+: backend "
               r"127\.0\.0\.1:%d: .*; refusing in http$" % closed_port, since=mark)
    # A handshake failure is an info line too: dropped.
    with socket.create_connection(("127.0.0.1", p.port("web")), timeout=5) as s:
        s.sendall(b"not tls at all\r\n\r\n")
        harness.read_to_eof(s)
    # A marker that every line before it is out: a second refusal.
    out, _ = tls_get(p.port("down"), ctx)
    assert out.startswith(b"HTTP/1.1 502"), out
    harness.wait_for(lambda: len(re.findall(r"refusing in http", p.log()[mark:])) >= 2, 5,
                     "the second refusal")
    log = p.log()[mark:]
    assert harness.close_lines(log) == [], log
    assert "handshake failed" not in log, log


# --------------------------------------------------------------------------
# alpn

def test_alpn_none_accepts_foreign_offer_and_selects_nothing(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http", extra=[("alpn", "none")])])
    out, alpn = tls_get(p.port("web"), alpn_ctx(certs, "h2"))
    assert alpn is None
    assert out.startswith(b"HTTP/1.1 200") and b"path=/echo/keys" in out, out


def test_alpn_custom_id(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("custom", http_backend.port, extra=[("alpn", "myproto")])])
    out, alpn = tls_get(p.port("custom"), alpn_ctx(certs, "myproto"))
    assert alpn == "myproto"
    assert out.startswith(b"HTTP/1.1 200") and b"path=/echo/keys" in out, out
    mark = p.mark()
    with pytest.raises(ssl.SSLError) as e:
        tls_get(p.port("custom"), alpn_ctx(certs, "h2"))
    # The server's alert, not any failure of the client's own.
    assert "alert no application protocol" in str(e.value), e.value
    p.wait_log(r"\[custom\] handshake failed client=127\.0\.0\.1:\d+: client offered only "
               r"foreign ALPN protocols", since=mark)


# --------------------------------------------------------------------------
# curves

def test_curves_without_shared_group_refused(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec, curves="P-384")),
                 listener("web", http_backend.port, protocol="http")])
    port = p.port("web")
    ok = s_client(port, ["-groups", "P-384"], ca=certs.ca)
    assert re.search(r"Cipher is (?!\(NONE\))\S+", ok.out), ok.out + ok.err
    mark = p.mark()
    bad = s_client(port, ["-groups", "X25519"], ca=certs.ca)
    assert bad.returncode != 0, bad.out
    assert not re.search(r"Cipher is (?!\(NONE\))\S+", bad.out), bad.out
    p.wait_log(r"\[web\] handshake failed client=127\.0\.0\.1:\d+: no shared key-exchange "
               r"group \(see 'curves'\)$", since=mark)


# --------------------------------------------------------------------------
# listen = PORT

def have_v6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_bare_port_listens_on_v4_and_v6(portier, http_backend):
    if not have_v6_loopback():
        pytest.skip("no ::1 on this host")
    last = None
    for _ in range(3):      # another process may take the free port in between
        port = harness.free_port("::1")
        try:
            p = portier([listener("bare", http_backend.port, mode="plain", listen=str(port))],
                        name="bare%d" % port)
            break
        except AssertionError as e:
            last = e
    else:
        raise last
    assert p.port("bare") == port
    for host in ("127.0.0.1", "::1"):
        out = plain_get(port, host)
        assert out.startswith(b"HTTP/1.1 200") and b"path=/echo/keys" in out, (host, out)
    p.wait_log(r"\[bare\] close client=\[?::1\]?:\d+ ")
    p.wait_log(r"\[bare\] close client=127\.0\.0\.1:\d+ ")


# --------------------------------------------------------------------------
# backend by name

def test_backend_by_name(portier, certs, http_backend):
    first = socket.getaddrinfo("localhost", http_backend.port, type=socket.SOCK_STREAM)[0]
    if first[4][0] != "127.0.0.1":
        pytest.skip("localhost resolves first to %s, not 127.0.0.1" % first[4][0])
    p = portier([("tls", tls_items(certs.ec)),
                 listener("named", backend="localhost:%d" % http_backend.port,
                          protocol="http")])
    out, _ = tls_get(p.port("named"), certs.client_context())
    assert out.startswith(b"HTTP/1.1 200") and b"path=/echo/keys" in out, out
    assert http_backend.requests and http_backend.requests[-1][1] == "/echo/keys"


# --------------------------------------------------------------------------
# connect_timeout

@contextlib.contextmanager
def hanging_backend():
    """A loopback port whose SYNs go unanswered: a listener with backlog 0
    whose accept queue we fill (Linux drops SYNs while it is full). Yields
    the port once a probe connect has been seen to hang."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held = []
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        port = lsock.getsockname()[1]
        for _ in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(s)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            _, w, _ = select.select([], [s], [], 0.3)
            if not w:
                break           # this one hangs: the queue is full
        else:
            pytest.skip("the kernel answered every SYN to a full backlog-0 listener")
        yield port
    finally:
        for s in held:
            s.close()
        lsock.close()


def test_connect_timeout_on_hanging_connect(portier, certs):
    with hanging_backend() as port:
        p = portier([("tls", tls_items(certs.ec)),
                     listener("web", port, protocol="http",
                              extra=[("connect_timeout", "1500ms")])])
        mark = p.mark()
        with socket.create_connection(("127.0.0.1", p.port("web")),
                                      timeout=10 * harness.SLOW) as s:
            with certs.client_context().wrap_socket(s, server_hostname="localhost") as t:
                start = time.monotonic()
                t.sendall(REQUEST)
                out = harness.read_to_eof(t)
                took = time.monotonic() - start
        assert out.startswith(b"HTTP/1.1 502"), out
        # About connect_timeout: not at once (a refusal would be), not the
        # kernel's own SYN give-up (over a minute).
        assert 1.3 <= took <= 1.5 + 2 * harness.SLOW, took
        p.wait_log(r"\[web\] client=127\.0\.0\.1:\d+: backend 127\.0\.0\.1:%d: connect "
                   r"timed out after 1500ms; refusing in http$" % port, since=mark)


# --------------------------------------------------------------------------
# hostname

def smtp_lines(f, code):
    """Reply lines up to the last one ('CODE ')."""
    lines = []
    while True:
        line = f.readline()
        assert line, "EOF after %r" % lines
        lines.append(line.decode())
        if line.startswith(code + b" "):
            return lines
        assert line.startswith(code + b"-"), lines


def test_hostname_in_smtp_greeting_and_ehlo(portier, certs, closed_port):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("own", closed_port, mode="starttls", protocol="smtp",
                          extra=[("hostname", "mx-own.example.test")]),
                 listener("global", closed_port, mode="starttls", protocol="smtp")],
                glob=[("hostname", "mx-global.example.test")])
    for name, host in (("own", "mx-own.example.test"), ("global", "mx-global.example.test")):
        with socket.create_connection(("127.0.0.1", p.port(name)),
                                      timeout=10 * harness.SLOW) as s:
            f = s.makefile("rb")
            greeting = smtp_lines(f, b"220")
            assert greeting == ["220 %s ESMTP ready\r\n" % host], greeting
            s.sendall(b"EHLO client.example.net\r\n")
            ehlo = smtp_lines(f, b"250")
            assert ehlo[0] == "250-%s\r\n" % host, ehlo
            assert "250 STARTTLS\r\n" in ehlo, ehlo
            s.sendall(b"QUIT\r\n")
            bye = smtp_lines(f, b"221")
            assert bye, bye
