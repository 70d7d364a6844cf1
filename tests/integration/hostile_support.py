"""Helpers for test_hostile.py: what a hostile client costs the worker (CPU
ticks over a quiet window), the close line of one client, a paced byte
dripper, a recording backend with a few scripted behaviours, and one
"ordinary client" per listener type.

Same rules as harness.py: loopback only, every socket has a timeout, every
wait and loop is bounded, every thread is joined at teardown.
"""

import contextlib
import os
import re
import socket
import ssl
import threading
import time

import harness
from harness import SLOW
from starttls_support import ANSWER, Client, UPGRADE, ldap_search, ldap_split, ldap_unbind

CLK_TCK = os.sysconf("SC_CLK_TCK")

# A spinning worker shows ~100 % of a CPU; an idle one 0. The bound leaves
# room for a timer firing or a stray wakeup, not for a loop.
CPU_SHARE = 0.10
CPU_WINDOW = 1.0

ORDINARY = 20          # ordinary clients served while a hostile one waits
DRIP_PERIOD = 0.3      # seconds between two bytes of a dripping client


def secs(n):
    """A timeout of n seconds stretched for sanitizer builds, in whole seconds
    (the REASON lines below say "{t}s")."""
    return max(1, int(round(n * SLOW)))


# The close reasons portier logs, one row per timeout, so that a change of
# wording is made here once.
REASON = {
    "idle": "idle for {t}s",
    "handshake": "TLS handshake timed out after {t}s",
    "httphead": "no complete request within {t}s",
    "prelude": "pre-TLS deadline passed after {t}s",
}


# --------------------------------------------------------------------------
# CPU

def worker_ticks(pid):
    """utime + stime of pid in clock ticks (fields 14 and 15 of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    # comm (field 2) may hold spaces and ')': count from its last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])     # fields[0] is field 3


def cpu_over(pid, window=CPU_WINDOW, during=None):
    """(ticks, seconds) the worker used over a window of about window seconds.
    during(), if given, runs inside the window (e.g. a paced upload); the
    window is then as long as it takes."""
    t0, c0 = time.monotonic(), worker_ticks(pid)
    if during is None:
        time.sleep(window)     # the measuring window itself, not a wait for an event
    else:
        during()
    t1, c1 = time.monotonic(), worker_ticks(pid)
    return c1 - c0, t1 - t0


def cpu_finding(pid, what, window=CPU_WINDOW, during=None):
    """None if the worker stayed under CPU_SHARE of a CPU over the window,
    else what it used, in words."""
    ticks, elapsed = cpu_over(pid, window, during)
    if ticks <= CPU_SHARE * elapsed * CLK_TCK:
        return None
    return ("worker %d used %d ticks in %.2f s (%.0f%% of a CPU, bound %.0f%%) while %s"
            % (pid, ticks, elapsed, 100.0 * ticks / (elapsed * CLK_TCK), CPU_SHARE * 100,
               what))


class Findings:
    """The checks of one test that need not stop it: each failed one is kept,
    and the test fails at the end with all of them (and with a hard failure
    that came later), so one run names everything that is wrong."""

    def __init__(self):
        self.items = []

    def check(self, ok, what):
        if not ok:
            self.items.append(what)

    def quiet(self, pid, what, window=CPU_WINDOW, during=None):
        """The worker costs no CPU over the window (see cpu_finding)."""
        f = cpu_finding(pid, what, window, during)
        self.check(f is None, f)

    def still_open(self, p, client_port, since, what):
        """The client's connection has no close line yet."""
        line = find_close(p, client_port, since)
        self.check(line is None, "the hostile client was closed before %s: %s" % (what, line))

    def __enter__(self):
        return self

    def __exit__(self, typ, val, tb):
        if typ is None:
            assert not self.items, "\n".join(self.items)
        elif self.items and issubclass(typ, Exception):
            raise AssertionError("\n".join(self.items + ["and then: %s: %s"
                                                        % (typ.__name__, val)])) from val
        return False


# --------------------------------------------------------------------------
# The log line of one client

def _client_rx(client_port):
    return r"client=127\.0\.0\.1:%d(?=[ :])" % client_port


def find_close(p, client_port, since=0):
    """The close (or handshake failed) line of the client on client_port, or None."""
    rx = re.compile(_client_rx(client_port))
    for line in p.log()[since:].splitlines():
        if (" close " in line or " handshake failed " in line) and rx.search(line):
            return line
    return None


def wait_close(p, client_port, since=0, timeout=10):
    """Wait (bounded) for the client's close line; returns it."""
    try:
        return harness.wait_for(lambda: find_close(p, client_port, since), timeout,
                                "the close line of client port %d" % client_port)
    except AssertionError:
        raise AssertionError("no close line for client port %d; log:\n%s"
                             % (client_port, p.log()[since:]))


def close_reason(line):
    """The reason at the end of a close line ("... time=1.234s: REASON") or of a
    handshake failure ("... client=ADDR: REASON")."""
    m = re.search(r" time=[0-9.]+s: (.*)$", line) or \
        re.search(r" handshake failed client=\S+?: (.*)$", line)
    assert m, "not a close line: %r" % line
    return m.group(1)


def read_until_closed(sock, timeout):
    """Read a plain socket until EOF or a reset, bounded: (bytes, "eof"|"reset")."""
    end = harness.deadline(timeout)
    out = bytearray()
    for _ in range(100000):
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return bytes(out), "reset"
        if not d:
            return bytes(out), "eof"
        out += d
    raise AssertionError("the connection was not closed within %.1fs; got %d bytes"
                         % (timeout * SLOW, len(out)))


# --------------------------------------------------------------------------
# A client that sends one byte every DRIP_PERIOD seconds

class Dripper:
    """Sends payload one byte at a time, DRIP_PERIOD apart, from a thread, until
    the payload is out, .stop() or a send fails (the peer closed)."""

    def __init__(self, sock, payload, period=DRIP_PERIOD):
        self.sock = sock
        self.payload = payload
        self.period = period
        self.sent = 0
        self.error = None
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for i in range(len(self.payload)):
            if self.halt.is_set():
                return
            try:
                self.sock.send(self.payload[i:i + 1])
            except OSError as e:
                self.error = e
                return
            self.sent += 1
            if self.halt.wait(self.period):   # pacing between bytes
                return

    def stop(self):
        self.halt.set()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------
# A backend that records what each connection sent and how it ended

class Session:
    """One backend connection: .data holds every byte received, .end is None
    while open, then "eof" (an orderly end), "reset" or "timeout"."""

    def __init__(self, sock):
        self.sock = sock
        self.data = bytearray()
        self.end = None
        self.stamps = []       # (monotonic time, len(data)) after each read
        self.done = threading.Event()

    def recv(self, n=65536):
        """Bytes, or b"" once the stream ended (and .end says how)."""
        try:
            d = self.sock.recv(n)
        except socket.timeout:
            self.end = "timeout"
            return b""
        except (ConnectionResetError, BrokenPipeError):
            self.end = "reset"
            return b""
        except OSError:
            self.end = "closed"     # our own stop() closed the socket
            return b""
        if not d:
            self.end = "eof"
            return b""
        self.data += d
        self.stamps.append((time.monotonic(), len(self.data)))
        return d

    def send(self, data):
        self.sock.sendall(data)

    def lines(self):
        """Complete lines received so far (CRLF kept)."""
        return [l + b"\n" for l in bytes(self.data).split(b"\n")[:-1]]


class Backend:
    """A TCP server on 127.0.0.1:.port running serve(session) in a thread per
    connection; .sessions in order of accept."""

    def __init__(self, serve, max_conns=64):
        self.serve = serve
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.max_conns = max_conns
        self.sessions = []
        self.errors = []
        self.halt = threading.Event()
        self.threads = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.halt.is_set() and len(self.sessions) < self.max_conns:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(30 * SLOW)
            s = Session(c)
            self.sessions.append(s)
            t = threading.Thread(target=self._one, args=(s,), daemon=True)
            self.threads.append(t)
            t.start()

    def _one(self, s):
        try:
            self.serve(s)
        except OSError as e:
            if s.end is None:
                s.end = "reset" if isinstance(e, ConnectionError) else "error"
        except Exception as e:      # reported by the tests through .errors
            self.errors.append(repr(e))
        finally:
            with contextlib.suppress(OSError):
                s.sock.close()
            s.done.set()

    def session(self, i, timeout=10):
        """The i-th accepted session, waiting for it (bounded)."""
        harness.wait_for(lambda: len(self.sessions) > i, timeout,
                         "backend connection %d" % (i + 1))
        return self.sessions[i]

    def stop(self):
        self.halt.set()
        self.sock.close()
        self.thread.join(timeout=5)
        for s in self.sessions:
            with contextlib.suppress(OSError):
                s.sock.shutdown(socket.SHUT_RDWR)
        for t in self.threads:
            t.join(timeout=5)


def serve_echo(s):
    """Echo every byte; end when the client side ends."""
    for _ in range(1000000):
        d = s.recv()
        if not d:
            return
        s.send(d)


def serve_ldap(s):
    """A tiny LDAP server (starttls_support's answers: every result carries
    "backend-marker"); ends on unbind or end of stream."""
    answer = ANSWER["ldap"]
    pending = b""
    for _ in range(100000):
        d = s.recv()
        if not d:
            return
        pending += d
        msgs, pending = ldap_split(pending)
        for m in msgs:
            a = answer(m)
            if a is None:
                return
            s.send(a)


def serve_smtp_xclient(s):
    """An SMTP server that offers XCLIENT, XFORWARD and STARTTLS and accepts
    them all (so a command that leaks through shows in the client's reply)."""
    s.send(b"220 backend.example ESMTP backend-marker\r\n")
    pending = b""
    for _ in range(100000):
        d = s.recv()
        if not d:
            return
        pending += d
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            verb = line.strip().split(b" ")[0].upper()
            if verb in (b"EHLO", b"HELO"):
                s.send(b"250-backend.example\r\n"
                       b"250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN\r\n"
                       b"250-XFORWARD NAME ADDR PROTO HELO SOURCE\r\n"
                       b"250-STARTTLS\r\n"
                       b"250 8BITMIME\r\n")
            elif verb == b"XCLIENT":
                s.send(b"220 backend.example ESMTP backend-marker xclient-accepted\r\n")
            elif verb == b"XFORWARD":
                s.send(b"250 2.0.0 backend-marker xforward-accepted\r\n")
            elif verb == b"QUIT":
                s.send(b"221 2.0.0 backend-marker bye\r\n")
                return
            else:
                s.send(b"250 2.0.0 backend-marker " + verb + b" ok\r\n")


def commands(session):
    """The verbs (upper case) of the lines an SMTP backend received."""
    return [l.strip().split(b" ")[0].upper() for l in session.lines()]


# --------------------------------------------------------------------------
# Ordinary clients, one exchange each; every socket has a timeout

def serve_ordinary(one, n=ORDINARY):
    """Run n ordinary clients one after the other; one(i) raises on failure."""
    for i in range(n):
        try:
            one(i)
        except (OSError, ssl.SSLError, AssertionError) as e:
            raise AssertionError("ordinary client %d of %d was not served while the "
                                 "hostile client waited: %r" % (i + 1, n, e)) from e


def https_ordinary(port, ctx):
    def one(i):
        out, _, _ = harness.https_get(port, ctx, "/echo/ordinary-%d" % i, timeout=5)
        status = out.split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.") and b" 200 " in status, out[:200]
        assert b"path=/echo/ordinary-%d" % i in out, out[:300]
    return one


def tls_echo_ordinary(port, ctx):
    def one(i):
        msg = b"ping-%d" % i
        with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(msg)
                got = b""
                for _ in range(100):
                    if len(got) >= len(msg):
                        break
                    d = t.recv(4096)
                    if not d:
                        break
                    got += d
                assert got == msg, got
                t.unwrap()      # our close_notify; returns on portier's
    return one


def plain_echo_ordinary(port):
    def one(i):
        msg = b"ping-%d" % i
        with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
            s.sendall(msg)
            s.shutdown(socket.SHUT_WR)
            got, how = read_until_closed(s, 5)
            assert (got, how) == (msg, "eof"), (got, how)
    return one


def redirect_ordinary(port):
    def one(i):
        with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
            s.sendall(b"GET /ordinary-%d HTTP/1.1\r\nHost: example.org\r\n\r\n" % i)
            got, _ = read_until_closed(s, 5)
        assert got.startswith(b"HTTP/1.1 301 "), got[:200]
        assert b"\r\nLocation: https://example.org/ordinary-%d\r\n" % i in got, got[:300]
    return one


def ldaps_ordinary(port, ctx):
    def one(i):
        with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(ldap_search(5, "dc=ordinary-%d" % i))
                got = b""
                for _ in range(100):
                    msgs, _ = ldap_split(got)
                    if msgs:
                        break
                    d = t.recv(4096)
                    assert d, "closed before the search result"
                    got += d
                msgs, _ = ldap_split(got)
                assert msgs and msgs[0][0] == 0x30 and b"backend-marker" in msgs[0], got
                t.sendall(ldap_unbind(6))
                for _ in range(100):     # the backend ends the session
                    if not t.recv(4096):
                        break
    return one


def starttls_ordinary(port, proto, certs):
    """Upgrade, one command the (FakeBackend) backend answers, goodbye."""
    def one(i):
        c = Client(port, timeout=5)
        try:
            UPGRADE[proto](c, certs)
            if proto == "smtp":
                c.send(b"EHLO ordinary-%d.example.net\r\n" % i)
                assert c.smtp_reply(timeout=5).startswith(b"250"), "EHLO after TLS"
                c.send(b"QUIT\r\n")
                assert b"backend-marker" in c.smtp_reply(timeout=5)
            elif proto == "imap":
                c.send(b"o1 NOOP\r\n")
                assert b"backend-marker" in c.until(rb"o1 [^\r\n]*\r\n", timeout=5)
                c.send(b"o2 LOGOUT\r\n")
            elif proto == "pop3":
                c.send(b"NOOP\r\n")
                assert b"backend-marker" in c.line(timeout=5)
                c.send(b"QUIT\r\n")
            else:
                c.send(ldap_search(7, "dc=ordinary-%d" % i))
                r = c.ldap(timeout=5)
                assert (r.msgid, r.op, r.diag) == (7, 0x65, b"backend-marker"), r
                c.send(ldap_unbind(8))
            c.read_to_eof(timeout=5)
        finally:
            c.close()
    return one


# --------------------------------------------------------------------------
# TLS pieces

def client_hello(ctx, server_hostname="localhost"):
    """The bytes of a real ClientHello (Python's ssl, through a MemoryBIO)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:16]
    return hello


def tls_session_over(sock, ctx, server_hostname="localhost"):
    """A harness.TLSConn over an already connected socket, handshake done."""
    t = harness.TLSConn(sock, ctx, False, server_hostname)
    t.do_handshake()
    return t
