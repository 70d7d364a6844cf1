"""Helpers for portier's integration tests: certificates, the portier process,
real backends (HTTP, dovecot, opensmtpd, slapd) and small TLS clients.

Rules every helper follows:
- only 127.0.0.1 / ::1;
- every wait is a bounded poll (deadline + short interval), never a bare sleep;
- every process is started by us and stopped by its PID (SIGTERM, then SIGKILL
  after a bound), from a fixture finalizer.
"""

import contextlib
import fcntl
import hashlib
import http.server
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

PORTIER_BIN = os.environ.get("PORTIER_BIN", "")
PORTIER_BUILD = os.environ.get("PORTIER_BUILD", "")


def sanitized_build():
    """True if PORTIER_BUILD was configured with PORTIER_SANITIZE=ON."""
    cache = os.path.join(PORTIER_BUILD, "CMakeCache.txt") if PORTIER_BUILD else ""
    try:
        with open(cache) as f:
            return re.search(r"^PORTIER_SANITIZE:BOOL=(ON|TRUE|1)$", f.read(), re.M) is not None
    except OSError:
        return False


# Sanitizer builds start and run slower; stretch every deadline.
SLOW = 3.0 if sanitized_build() else 1.0


def deadline(seconds):
    return time.monotonic() + seconds * SLOW


def wait_for(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value (returned) or timeout seconds pass."""
    end = deadline(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout * SLOW, what))
        time.sleep(interval)


def free_port(host="127.0.0.1"):
    """A port the kernel just gave us; for backends that cannot report their own."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def old_workers_left(log_text):
    """After the last "reloaded" line of log_text, every worker of the
    previous generation has said it no longer accepts: from then on a new
    client reaches the new configuration only (the log says "reloaded" as
    it tells them, a moment before they stop)."""
    m = None
    for m in re.finditer(r"reloaded: .* (\d+) workers? of the previous", log_text):
        pass
    return m is not None and log_text[m.end():].count("no longer accepting; draining") >= \
        int(m.group(1))


# The ranges free_port_range has handed out in this process. A range is
# free when it is handed out, but its program binds its ports only later
# (vsftpd a passive port at each PASV): a second range chosen meanwhile must
# not overlap the first, or a test that fills one range meets the other
# program's listener there (a 425 in test_ftps, once in a CI run). One test
# takes two or three ranges; the last eight are kept.
_ranges_given = []


def free_port_range(n, host="127.0.0.1", attempts=100):
    """The lowest of n consecutive ports each free on host now, above the
    kernel's ephemeral range: a port there is never some connection's local
    port, and a random start keeps two test runs at once apart. For ranges
    a program binds by number (data_ports, vsftpd's passive ports); none
    overlaps the last ranges handed out in this process."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        top = int(f.read().split()[1])
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(attempts):
        low = random.randrange(top + 1, 65536 - n)
        if any(low < a + m and a < low + n for a, m in _ranges_given):
            continue
        held = []
        try:
            for port in range(low, low + n):
                s = socket.socket(fam, socket.SOCK_STREAM)
                held.append(s)
                s.bind((host, port))
            # The last few only: a test's ranges end with its programs,
            # and the space above the ephemeral range is a few thousand.
            _ranges_given[:] = _ranges_given[-7:] + [(low, n)]
            return low
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise AssertionError("no %d free ports in a row above %d" % (n, top))


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def world_dir(prefix):
    """A 0755 temp dir outside pytest's 0700 tree, for files that unprivileged
    service users (dovecot, the mail user, opensmtpd) must reach."""
    d = tempfile.mkdtemp(prefix="portier-" + prefix + "-", dir="/tmp")
    os.chmod(d, 0o755)
    return d


# --------------------------------------------------------------------------
# Sanitizer reports. Every run of portier (run(), Proc, Portier, portier_check)
# gets these options, so that a report exits SANITIZER_EXIT, which no portier
# path uses (0, 1 and 2 are its codes: ASan's default 1 would pass for a
# config error), and is checked for a report in its output, whatever exit
# code the test expects.

SANITIZER_EXIT = 86
SANITIZER_OPTIONS = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
# "Sanitizer" catches every report's ERROR:/WARNING:/SUMMARY: line (Address,
# Leak, UndefinedBehavior); "runtime error:" is UBSan's one-line form.
SANITIZER_REPORT = re.compile(r"Sanitizer|runtime error:")


def is_portier(cmd):
    """True if argv cmd runs PORTIER_BIN (as its program or an argument of a wrapper)."""
    if not PORTIER_BIN:
        return False
    me = os.path.realpath(PORTIER_BIN)
    return any(os.path.realpath(str(c)) == me for c in cmd)


def portier_env(env=None):
    """env (a dict of overrides, or None) with the sanitizer options for a run of
    portier: ours, then the environment's and the caller's (which may add to
    them), then exitcode=SANITIZER_EXIT, which always wins."""
    e = dict(env or {})
    for var, ours in SANITIZER_OPTIONS.items():
        parts = [ours, os.environ.get(var, ""), (env or {}).get(var, ""),
                 "exitcode=%d" % SANITIZER_EXIT]
        e[var] = ":".join(p for p in parts if p)
    return e


def check_sanitizer(rc, output, what):
    """Fail if a run of portier (exit code rc, its output) shows a sanitizer report."""
    m = SANITIZER_REPORT.search(output)
    assert rc != SANITIZER_EXIT and m is None, \
        "sanitizer report from %s (exit %s%s):\n%s" % (
            what, rc, ", matched %r" % m.group(0) if m else "", output)


def run(cmd, timeout=30, env=None, input=None, check=False, cwd=None):
    """Run a command with a bound (in directory cwd); returns CompletedProcess
    with text output. A run of portier fails on a sanitizer report
    (check_sanitizer)."""
    portier = is_portier(cmd)
    if portier:
        env = portier_env(env)
    e = dict(os.environ)
    if env:
        e.update(env)
    cp = subprocess.run(cmd, capture_output=True, timeout=timeout * SLOW, env=e, cwd=cwd,
                        input=input, stdin=None if input is not None else subprocess.DEVNULL)
    cp.out = cp.stdout.decode("utf-8", "replace")
    cp.err = cp.stderr.decode("utf-8", "replace")
    if portier:
        check_sanitizer(cp.returncode, cp.out + cp.err, " ".join(map(str, cmd)))
    if check and cp.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(map(str, cmd)), cp.returncode, cp.out, cp.err))
    return cp


# --------------------------------------------------------------------------
# Processes

class Proc:
    """A child process stopped by its PID, with its output in a file."""

    def __init__(self, cmd, logpath, name, env=None, cwd=None):
        self.name = name
        self.cmd = [str(c) for c in cmd]
        self.logpath = str(logpath)
        self.log_f = open(self.logpath, "wb")
        self.portier = is_portier(self.cmd)
        if self.portier:
            env = portier_env(env)
        e = dict(os.environ)
        if env:
            e.update(env)
        self.p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.log_f,
                                  stderr=subprocess.STDOUT, env=e, cwd=cwd)
        self.pid = self.p.pid
        self.returncode = None

    def alive(self):
        return self.p.poll() is None

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=10):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns (exit code, killed)."""
        killed = False
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.p.wait(timeout=10)
        self.returncode = self.p.returncode
        self.log_f.close()
        if self.portier:
            check_sanitizer(self.returncode, self.log(), self.name)
        return self.returncode, killed


def alive(pid):
    """pid exists and is not a zombie (a worker its master has not reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"    # comm may hold spaces and ')'


def https_get(port, ctx, path="/echo/get", session=None, timeout=10):
    """One HTTP/1.0 GET over TLS on a new connection to 127.0.0.1:port, read
    to the end: (response bytes, the TLS session, whether it was resumed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW) as s:
        with ctx.wrap_socket(s, server_hostname="localhost", session=session) as t:
            t.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
            out = b""
            for _ in range(100):
                d = t.recv(65536)
                if not d:
                    break
                out += d
            return out, t.session, t.session_reused


def start_listening(make_cmd, name, workdir, timeout=15, attempts=3, host="127.0.0.1",
                    env=None, logname=None):
    """Start a server that cannot report its port: pick a free port, start it,
    poll until the port accepts; retry with another port if the server died
    (someone else took the port in between). make_cmd(port) -> argv.
    Returns (Proc, port)."""
    last = None
    for _ in range(attempts):
        port = free_port(host)
        cmd = make_cmd(port)
        proc = Proc(cmd, os.path.join(workdir, logname or (name + ".log")), name, env=env)
        end = deadline(timeout)
        while time.monotonic() < end:
            if port_open(port, host):
                return proc, port
            if not proc.alive():
                break
            time.sleep(0.05)
        last = proc.log()
        proc.stop()
    raise AssertionError("%s did not start listening; its output:\n%s" % (name, last))


# --------------------------------------------------------------------------
# Certificates, made with the openssl CLI at test time

CA_CONF = """\
[ca]
default_ca = testca
[testca]
dir = {d}
database = {d}/index.txt
new_certs_dir = {d}/newcerts
serial = {d}/serial
certificate = {d}/ca.pem
private_key = {d}/ca.key
default_md = sha256
policy = anything
copy_extensions = none
unique_subject = no
[anything]
commonName = supplied
[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = @alt
[alt]
{alt}
"""


NGINX_CONF = """\
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{http}
    server {{
        listen 127.0.0.1:{port}{listen};
        location / {{
            return 200 "{answer}\\n";
        }}
    }}
}}
"""


def start_nginx(workdir, answer="served $request_uri", listen="", log_format=None,
                http=()):
    """nginx as an HTTP backend on 127.0.0.1, every path answered 200 with
    answer (nginx variables expand), one access log line per request in
    .access_log; .port, .stop(). listen: words after the address
    (" proxy_protocol"); log_format: the access log's format; http: more
    directives for the http block ("client_header_timeout 1s"). Skips
    the test when nginx is not installed."""
    import pytest
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (scripts/test installs it)")
    d = os.path.join(str(workdir), "nginx")
    os.makedirs(d)
    access_log = os.path.join(d, "access.log")
    lines = []
    if log_format:
        lines += ["    log_format portier %s;" % log_format,
                  "    access_log %s portier;" % access_log]
    else:
        lines.append("    access_log %s;" % access_log)
    lines += ["    %s;" % x for x in http]

    def cmd(port):
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=d, port=port, listen=listen, answer=answer,
                                      http="\n".join(lines)))
        return ["nginx", "-p", d, "-c", conf]
    proc, port = start_listening(cmd, "nginx", str(workdir))
    proc.port = port
    proc.access_log = access_log
    return proc


class Certs:
    """A test CA and leaves. Each leaf has .cert (leaf then CA, PEM), .key,
    .leaf (leaf only) and .der (the leaf in DER, to identify what a server sent).

    ec        ECDSA P-256 for localhost, mail.example.org, 127.0.0.1, ::1
    rsa       RSA-2048 for the same names
    other     ECDSA P-256 for other.example.org
    expired   ECDSA for localhost, valid 2020-01-01..2020-02-01
    expiring  ECDSA for localhost, valid for 10 more days
    wild      ECDSA for *.example.org
    wrongkey  a key that matches none of the certificates
    """

    MAIN_NAMES = ["localhost", "mail.example.org", "IP:127.0.0.1", "IP:::1"]

    def __init__(self, d):
        self.dir = str(d)
        os.makedirs(os.path.join(self.dir, "newcerts"), exist_ok=True)
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        self.ca = os.path.join(self.dir, "ca.pem")
        ca_key = os.path.join(self.dir, "ca.key")
        self._key("ec", ca_key)
        self._ssl(["req", "-x509", "-new", "-key", ca_key, "-out", self.ca, "-days", "3650",
                   "-subj", "/CN=portier test CA", "-addext", "basicConstraints=critical,CA:true",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        self.ec = self._leaf("ec", "ec", self.MAIN_NAMES)
        self.rsa = self._leaf("rsa", "rsa", self.MAIN_NAMES)
        self.other = self._leaf("other", "ec", ["other.example.org"])
        self.expired = self._leaf("expired", "ec", ["localhost"],
                                  dates=["-startdate", "20200101000000Z",
                                         "-enddate", "20200201000000Z"])
        self.expiring = self._leaf("expiring", "ec", ["localhost"], dates=["-days", "10"])
        self.wild = self._leaf("wild", "ec", ["*.example.org"])
        self.wrongkey = os.path.join(self.dir, "wrong.key")
        self._key("ec", self.wrongkey)

    def _ssl(self, args):
        run(["openssl"] + args, env={"OPENSSL_CONF": "/dev/null"}, check=True)

    def _key(self, kind, path):
        if kind == "ec":
            self._ssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                       "-out", path])
        else:
            self._ssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                       "-out", path])
        os.chmod(path, 0o600)

    def _leaf(self, name, kind, names, dates=("-days", "365")):
        class Leaf:
            pass
        leaf = Leaf()
        leaf.names = names
        leaf.key = os.path.join(self.dir, name + ".key")
        leaf.leaf = os.path.join(self.dir, name + ".leaf.pem")
        leaf.cert = os.path.join(self.dir, name + ".pem")
        csr = os.path.join(self.dir, name + ".csr")
        conf = os.path.join(self.dir, name + ".cnf")
        alt = []
        n_dns = n_ip = 0
        for n in names:
            if n.startswith("IP:"):
                n_ip += 1
                alt.append("IP.%d = %s" % (n_ip, n[3:]))
            else:
                n_dns += 1
                alt.append("DNS.%d = %s" % (n_dns, n))
        with open(conf, "w") as f:
            f.write(CA_CONF.format(d=self.dir, alt="\n".join(alt)))
        self._key(kind, leaf.key)
        self._ssl(["req", "-new", "-key", leaf.key, "-out", csr, "-subj", "/CN=" + names[0]])
        self._ssl(["ca", "-batch", "-notext", "-config", conf, "-extensions", "leaf",
                   "-in", csr, "-out", leaf.leaf] + list(dates))
        with open(leaf.leaf) as f:
            pem = f.read()
        with open(self.ca) as f:
            ca_pem = f.read()
        with open(leaf.cert, "w") as f:
            f.write(pem + ca_pem)
        leaf.der = ssl.PEM_cert_to_DER_cert(pem)
        return leaf

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx


def first_pem_der(text):
    """The DER of the first certificate PEM block in text (e.g. s_client output)."""
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    if not m:
        return None
    return ssl.PEM_cert_to_DER_cert(m.group(0))


# --------------------------------------------------------------------------
# portier

def ini_text(sections):
    """sections: list of (name, items); items a dict or a list of (key, value)
    pairs (lists allow repeated keys such as cert/key/listen)."""
    out = []
    for name, items in sections:
        out.append("[%s]" % name)
        pairs = items.items() if isinstance(items, dict) else items
        for k, v in pairs:
            out.append("%s = %s" % (k, v))
        out.append("")
    return "\n".join(out)


def tls_items(*leaves, **extra):
    items = []
    for leaf in leaves:
        items += [("cert", leaf.cert), ("key", leaf.key)]
    items += list(extra.items())
    return items


def parse_kv(line):
    """key=value pairs of a log line (values may be "quoted")."""
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in re.finditer(r'(\w+)=(?:"([^"]*)"|(\S*))', line)}


class Portier:
    """A running `portier -f -c INI`. .ports maps a listener name to a list of
    (host, port) as written to ports_file; .port(name) is the first port."""

    def __init__(self, workdir, sections, name="portier", start_timeout=10, glob=(), env=None):
        if not PORTIER_BIN or not os.access(PORTIER_BIN, os.X_OK):
            raise AssertionError("PORTIER_BIN is not set to an executable portier (got %r)"
                                 % PORTIER_BIN)
        self.workdir = str(workdir)
        self.ports_file = os.path.join(self.workdir, name + ".ports")
        self.ini = os.path.join(self.workdir, name + ".ini")
        glob = [("log", "stderr"), ("ports_file", self.ports_file)] + list(glob)
        self.sections = [("portier", glob)] + list(sections)
        with open(self.ini, "w") as f:
            f.write(ini_text(self.sections))
        if os.path.exists(self.ports_file):   # a previous instance's; never read it
            os.unlink(self.ports_file)
        # Proc adds the sanitizer options (portier_env) and checks for a report.
        self.proc = Proc([PORTIER_BIN, "-f", "-c", self.ini],
                         os.path.join(self.workdir, name + ".log"), name, env=env)
        self.stopped = False
        try:
            wait_for(lambda: os.path.exists(self.ports_file) or not self.proc.alive(),
                     start_timeout, "portier to write its ports_file")
        except AssertionError:
            self.proc.stop()
            raise AssertionError("portier did not write %s in time; config:\n%s\nlog:\n%s"
                                 % (self.ports_file, ini_text(self.sections), self.proc.log()))
        if not self.proc.alive() and not os.path.exists(self.ports_file):
            rc, _ = self.proc.stop()
            raise AssertionError("portier exited %s at start; config:\n%s\nlog:\n%s"
                                 % (rc, ini_text(self.sections), self.proc.log()))
        self._read_ports()

    def _read_ports(self):
        self.ports = {}
        with open(self.ports_file) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                m = re.fullmatch(r"(\S+) (?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d+)", line)
                assert m, "bad ports_file line %r" % line
                host = m.group(2) or m.group(3)
                port = int(m.group(4))
                assert 0 < port < 65536, line
                self.ports.setdefault(m.group(1), []).append((host, port))

    def rewrite(self, sections):
        """Write a new config file (the same [portier] keys) for a reload."""
        self.sections = [self.sections[0]] + list(sections)
        with open(self.ini, "w") as f:
            f.write(ini_text(self.sections))

    def reload(self, expect="reloaded", timeout=10):
        """SIGHUP to the master; waits for its verdict ("reloaded" or
        "reload refused", which must be expect), after a reload also for the
        old workers to stop accepting, and re-reads the ports. Returns the
        log offset from before the signal."""
        mark = self.mark()
        os.kill(self.proc.pid, signal.SIGHUP)
        m = self.wait_log(r"(reloaded|reload refused)", timeout=timeout * SLOW, since=mark)
        assert m.group(1) == expect, "%s, expected %s; log:\n%s" % (m.group(0), expect,
                                                                    self.log()[mark:])
        if expect == "reloaded":
            # Done when every old worker has let go of the listening sockets:
            # from then on only the new configuration accepts.
            n = int(self.wait_log(r"reloaded: .* (\d+) workers? of the previous",
                                  since=mark).group(1))
            wait_for(lambda: len(re.findall(r"no longer accepting; draining",
                                            self.log()[mark:])) >= n,
                     timeout * SLOW, "%d old workers to stop accepting" % n)
        self._read_ports()
        return mark

    def port(self, name):
        assert name in self.ports, "no listener %r in ports_file: %r" % (name, self.ports)
        return self.ports[name][0][1]

    def log(self):
        return self.proc.log()

    def workers(self, since=0):
        """{worker number: pid} from the master's "worker N started (pid P)"
        lines (the latest of each number), from log offset since."""
        return {int(m.group(1)): int(m.group(2))
                for m in re.finditer(r"worker (\d+) started \(pid (\d+)\)",
                                     self.log()[since:])}

    def worker_pid(self, n=1, timeout=5):
        """The pid of worker n, waiting for it to start."""
        wait_for(lambda: n in self.workers(), timeout * SLOW, "worker %d to start" % n)
        return self.workers()[n]

    def mark(self):
        """The log's current length: pass as since= to wait for newer lines only."""
        return len(self.log())

    def wait_log(self, pattern, timeout=5, flags=0, since=0):
        """Poll the log (from offset since) until a line matches pattern (regex);
        returns the match."""
        rx = re.compile(pattern, flags)

        def find():
            for line in self.log()[since:].splitlines():
                m = rx.search(line)
                if m:
                    return m
            return None
        try:
            return wait_for(find, timeout, "log line /%s/" % pattern)
        except AssertionError:
            raise AssertionError("no log line matches /%s/; log:\n%s" % (pattern, self.log()))

    def stop(self):
        """SIGTERM; portier must exit 0 (no sanitizer report, no hang)."""
        if self.stopped:
            return
        self.stopped = True
        rc, killed = self.proc.stop(timeout=10)     # checks for a sanitizer report
        log = self.log()
        assert not killed, "portier ignored SIGTERM for 10s; log:\n" + log
        assert rc == 0, "portier exited %s on SIGTERM; log:\n%s" % (rc, log)


def portier_check(workdir, text, name="check.ini", args=("-t",)):
    """Write text to workdir/name and run `portier -t -c FILE`.
    Returns (exit code, stdout+stderr, path)."""
    path = os.path.join(str(workdir), name)
    with open(path, "w") as f:
        f.write(text)
    cp = run([PORTIER_BIN] + list(args) + ["-c", path], timeout=30)
    return cp.returncode, cp.out + cp.err, path


# --------------------------------------------------------------------------
# TLS client with explicit half-close (MemoryBIO: close_notify is sent while
# the socket stays open for reading)

class TLSConn:
    """TLS over a connected socket through MemoryBIOs, either side."""

    def __init__(self, sock, ctx, server_side=False, server_hostname=None):
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                server_hostname=server_hostname)
        self.eof_tcp = False
        self.got_close_notify = False

    def do_handshake(self):
        self._loop(self.obj.do_handshake)

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            self.eof_tcp = True
            self.incoming.write_eof()
        else:
            self.incoming.write(data)

    def _loop(self, op, *args):
        for _ in range(100000):
            try:
                r = op(*args)
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                if self.eof_tcp:
                    raise ConnectionError("TCP EOF without close_notify")
                self._fill()
        raise AssertionError("TLS loop did not finish")

    def send(self, data):
        view = memoryview(data)
        while view:
            n = self._loop(self.obj.write, view[:16384])
            view = view[n:]

    def close_notify(self):
        """Send our close_notify; keep reading possible."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def recv_some(self):
        """The bytes of one read (waiting for some); b"" at the peer's end."""
        try:
            return self._loop(self.obj.read, 65536)
        except ssl.SSLZeroReturnError:
            return b""

    def recv_all(self, limit=64 << 20):
        """Read until the peer's close_notify or a bare FIN; returns the bytes.
        got_close_notify says which. Python sets OP_IGNORE_UNEXPECTED_EOF on
        its contexts, and then OpenSSL reports a FIN without close_notify as a
        zero return, like a close_notify: the alert can only have been seen if
        TCP's EOF was not yet (an alert is processed as soon as its bytes are
        fed in, before the next recv can see the FIN). Without that option a
        bare FIN raises SSLEOFError here."""
        out = bytearray()
        while len(out) < limit:
            try:
                d = self._loop(self.obj.read, 65536)
            except ssl.SSLZeroReturnError:
                self.got_close_notify = not self.eof_tcp
                break
            if not d:
                self.got_close_notify = not self.eof_tcp
                break
            out += d
        return bytes(out)

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


class TLSClient(TLSConn):
    """A TLS client to 127.0.0.1:port with explicit close_notify handling."""

    def __init__(self, port, ctx, server_hostname, host="127.0.0.1", timeout=10):
        sock = socket.create_connection((host, port), timeout=timeout * SLOW)
        TLSConn.__init__(self, sock, ctx, False, server_hostname)
        self.do_handshake()


# --------------------------------------------------------------------------
# Plaintext HTTP backend (in-process thread)

class HTTPBackend:
    """ThreadingHTTPServer on 127.0.0.1:0.
    GET  /echo...          -> JSON-ish text: method, path, host header
    GET  /size/N           -> N bytes of the deterministic blob
    GET  /big              -> the 1 MiB random blob (.big, .big_sha256)
    POST|PUT /sha256       -> sha256 hex of the whole request body (Content-Length or chunked)
    anything else          -> 200 "backend NAME METHOD PATH"
    Every request is recorded in .requests as (method, path, headers dict)."""

    def __init__(self, name="http"):
        self.name = name
        self.big = os.urandom(1 << 20)
        self.big_sha256 = sha256(self.big)
        self.requests = []
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, code, body, ctype="text/plain"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    for _ in range(1 << 20):
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline().strip():
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                    raise ValueError("too many chunks")
                n = int(self.headers.get("Content-Length", "0"))
                return self.rfile.read(n)

            def _handle(self):
                backend.requests.append((self.command, self.path, dict(self.headers)))
                path = self.path.split("?")[0]
                if path == "/sha256":
                    body = self._body()
                    return self._reply(200, sha256(body).encode())
                body = self._body() if self.command in ("POST", "PUT") else b""
                if path.startswith("/echo"):
                    txt = "method=%s path=%s host=%s bodylen=%d\n" % (
                        self.command, self.path, self.headers.get("Host"), len(body))
                    return self._reply(200, txt.encode())
                if path == "/big":
                    return self._reply(200, backend.big, "application/octet-stream")
                m = re.fullmatch(r"/size/(\d+)", path)
                if m:
                    n = min(int(m.group(1)), len(backend.big))
                    return self._reply(200, backend.big[:n], "application/octet-stream")
                return self._reply(200, ("backend %s %s %s\n" % (
                    backend.name, self.command, self.path)).encode())

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class RawBackend:
    """A one-shot TCP backend on 127.0.0.1:0 running handler(conn) in a thread for
    each accepted connection; handler results go to .results (a list)."""

    def __init__(self, handler, max_conns=8):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.results = []
        self.errors = []
        self.done = threading.Event()
        self.max_conns = max_conns
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        n = 0
        while not self.done.is_set() and n < self.max_conns:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            n += 1
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        c.settimeout(15 * SLOW)
        try:
            r = self.handler(c)
            with self.cond:
                self.results.append(r)
                self.cond.notify_all()
        except Exception as e:  # reported by wait_result
            with self.cond:
                self.errors.append(repr(e))
                self.cond.notify_all()
        finally:
            c.close()

    def wait_result(self, timeout=10):
        end = deadline(timeout)
        with self.cond:
            while not self.results and not self.errors:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("backend handler produced nothing in time")
                self.cond.wait(left)
            assert not self.errors, "backend handler failed: %s" % self.errors
            return self.results.pop(0)

    def stop(self):
        self.done.set()
        self.sock.close()
        self.thread.join(timeout=5)


def read_to_eof(c, limit=64 << 20):
    out = bytearray()
    while len(out) < limit:
        d = c.recv(65536)
        if not d:
            break
        out += d
    return bytes(out)


def read_to_end(c, limit=64 << 20):
    """What c sends until its end, up to limit bytes, and the error that
    ended it instead (a reset, a timeout), or None: (bytes, OSError|None),
    for tests where how the stream ended is part of what they check."""
    out = bytearray()
    try:
        while len(out) < limit:
            d = c.recv(65536)
            if not d:
                break
            out += d
    except OSError as e:
        return bytes(out), e
    return bytes(out), None


# --------------------------------------------------------------------------
# Mail user shared by dovecot and opensmtpd

MAIL_USER = "portiertest"
MAIL_PASS = "Test-Pass-1"


def ensure_mail_user():
    """A real system user for mail delivery (created once with useradd)."""
    try:
        pw = pwd.getpwnam(MAIL_USER)
    except KeyError:
        run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", MAIL_USER], check=True)
        pw = pwd.getpwnam(MAIL_USER)
    return pw.pw_uid, pw.pw_gid


def chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for n in files:
            os.chown(os.path.join(root, n), uid, gid)


def make_maildir(path, uid, gid):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    chown_tree(path, uid, gid)
    os.chmod(path, 0o700)


# --------------------------------------------------------------------------
# dovecot (IMAP + POP3, plaintext, on loopback high ports)

DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot-file.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
last_valid_uid = 0
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
{extra}passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}{imap_extra}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


# haproxy=True: the IMAP listener wants a PROXY header first (from
# 127.0.0.1 only), and login lines carry the ports the header gave.
DOVECOT_HAPROXY = """\
haproxy_trusted_networks = 127.0.0.1
login_log_format_elements = user=<%u> method=%m rip=%r rport=%{rport} lip=%l lport=%{lport} mpid=%e %c session=<%{session}>
"""


DOVECOT_COMPRESS = """\
mail_plugins = zlib
protocol imap {
  mail_plugins = $mail_plugins imap_zlib
}
"""


class Dovecot:
    """dovecot -F with IMAP on .imap_port and POP3 on .pop3_port; user
    MAIL_USER/MAIL_PASS with one message (Subject contains .token) in Maildir/cur.
    haproxy=True: IMAP takes connections only with a PROXY header (haproxy =
    yes, trusted from 127.0.0.1); POP3 stays as it is.
    ssl="yes" or "required" with leaf (a Certs leaf) turns on dovecot's own
    STARTTLS: optional with plaintext login allowed, or required.
    compress=True loads imap_zlib: COMPRESS=DEFLATE offered after login."""

    def __init__(self, haproxy=False, ssl=None, leaf=None, compress=False):
        self.dir = world_dir("dovecot")
        uid, gid = ensure_mail_user()
        self.token = "tok" + os.urandom(8).hex()
        home = os.path.join(self.dir, "home")
        self.maildir = os.path.join(home, "Maildir")
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "state"))
        make_maildir(self.maildir, uid, gid)
        self.message = ("From: sender@example.net\r\nTo: %s@example.org\r\n"
                        "Subject: portier test %s\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                        "Message-ID: <%s@example.net>\r\n\r\nbody line with %s\r\n"
                        % (MAIL_USER, self.token, self.token, self.token))
        msg = os.path.join(self.maildir, "cur", "1700000000.M1P1.portier:2,")
        with open(msg, "w") as f:
            f.write(self.message)
        chown_tree(home, uid, gid)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write("%s:{PLAIN}%s:%d:%d::%s\n" % (MAIL_USER, MAIL_PASS, uid, gid, home))
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.proc = None
        for _ in range(3):
            self.imap_port, self.pop3_port = free_port(), free_port()
            conf = DOVECOT_CONF.format(
                d=self.dir, imap=self.imap_port, pop3=self.pop3_port,
                extra=(DOVECOT_HAPROXY if haproxy else "") +
                (DOVECOT_COMPRESS if compress else ""),
                imap_extra="\n    haproxy = yes" if haproxy else "")
            if ssl is not None:
                conf = conf.replace("ssl = no\ndisable_plaintext_auth = no\n",
                                    "ssl = %s\nssl_cert = <%s\nssl_key = <%s\n"
                                    "disable_plaintext_auth = %s\n"
                                    % (ssl, leaf.cert, leaf.key,
                                       "no" if ssl == "yes" else "yes"))
            with open(self.conf, "w") as f:
                f.write(conf)
            self.proc = Proc(["dovecot", "-F", "-c", self.conf],
                             os.path.join(self.dir, "dovecot.log"), "dovecot")
            ok = False
            end = deadline(15)
            while time.monotonic() < end and self.proc.alive():
                if port_open(self.imap_port) and port_open(self.pop3_port):
                    ok = True
                    break
                time.sleep(0.05)
            if ok:
                return
            out = self.proc.log() + self.file_log()
            self.proc.stop()
        raise AssertionError("dovecot did not start:\n" + out)

    def file_log(self):
        try:
            with open(os.path.join(self.dir, "dovecot-file.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc:
            self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# opensmtpd (one instance per machine: fixed control socket)

SMTPD_LOCK = "/run/lock/portier-tests-smtpd.lock"
SMTPD_SOCK = "/var/run/smtpd.sock"

SMTPD_CONF = """\
listen on 127.0.0.1 port {port} hostname mail.example.org
action "d" maildir "{maildir}"
match from any for domain "example.org" action "d"
"""


class OpenSMTPD:
    """smtpd -d on 127.0.0.1:.port delivering mail for example.org into .maildir
    (owned by MAIL_USER). Holds an exclusive lock across processes while running."""

    def __init__(self):
        os.makedirs(os.path.dirname(SMTPD_LOCK), exist_ok=True)
        self.lock = open(SMTPD_LOCK, "w")
        end = deadline(300)
        while True:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    raise AssertionError("another opensmtpd test held %s for 300s" % SMTPD_LOCK)
                time.sleep(0.2)
        self.proc = None
        self.dir = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        if os.path.exists(SMTPD_SOCK):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(SMTPD_SOCK)
                raise AssertionError("a system smtpd owns %s; stop it (scripts/test does)"
                                     % SMTPD_SOCK)
            except (ConnectionRefusedError, FileNotFoundError):
                pass
            finally:
                s.close()
        os.makedirs("/var/spool/smtpd", exist_ok=True)
        os.chmod("/var/spool/smtpd", 0o711)
        uid, gid = ensure_mail_user()
        self.dir = world_dir("smtpd")
        self.maildir = os.path.join(self.dir, "Maildir")
        make_maildir(self.maildir, uid, gid)
        conf = os.path.join(self.dir, "smtpd.conf")

        def cmd(port):
            with open(conf, "w") as f:
                f.write(SMTPD_CONF.format(port=port, maildir=self.maildir))
            os.chmod(conf, 0o600)
            return ["smtpd", "-d", "-f", conf]
        self.proc, self.port = start_listening(cmd, "smtpd", self.dir, timeout=20)

    def delivered(self, token, timeout=20):
        """Poll the maildir's new/ (and cur/) for a message containing token."""
        def find():
            for sub in ("new", "cur"):
                d = os.path.join(self.maildir, sub)
                for n in os.listdir(d):
                    with open(os.path.join(d, n), "rb") as f:
                        data = f.read()
                    if token.encode() in data:
                        return data
            return None
        try:
            return wait_for(find, timeout, "delivery of %s" % token, interval=0.1)
        except AssertionError:
            raise AssertionError("message %s not delivered; smtpd log:\n%s"
                                 % (token, self.proc.log() if self.proc else ""))

    def stop(self):
        try:
            if self.proc:
                self.proc.stop()
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()


# --------------------------------------------------------------------------
# slapd

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
sasl-host localhost
sasl-realm example.org
authz-regexp "uid=([^,]*),cn=example.org,cn=digest-md5,cn=auth" "uid=$1,ou=people,dc=example,dc=org"
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw {pw}
directory {d}/db
access to attrs=userPassword by anonymous auth by * none
access to * by * read
"""

SLAPD_LDIF = """\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@example.org
userPassword: {alicepw}
description: {token}
"""


class Slapd:
    """slapd -d 256 on ldap://127.0.0.1:.port/ with a small tree;
    uid=alice's description is .token; rootdn cn=admin,dc=example,dc=org / .rootpw.
    alice binds with SASL DIGEST-MD5 (realm example.org, password .alicepw), which
    negotiates a security layer (Cyrus SASL reads her cleartext userPassword).
    idletimeout: slapd's, in seconds (it ends idle connections silently)."""

    ROOTDN = "cn=admin,dc=example,dc=org"

    def __init__(self, workdir, idletimeout=None):
        self.dir = os.path.join(str(workdir), "slapd")
        os.makedirs(os.path.join(self.dir, "db"))
        self.token = "tok" + os.urandom(8).hex()
        self.rootpw = "Root-Pass-1"
        self.alicepw = "Alice-Pass-1"
        conf = os.path.join(self.dir, "slapd.conf")
        with open(conf, "w") as f:
            if idletimeout is not None:   # a global directive: before the database
                f.write("idletimeout %d\n" % idletimeout)
            f.write(SLAPD_CONF.format(d=self.dir, pw=self.rootpw))
        ldif = os.path.join(self.dir, "data.ldif")
        with open(ldif, "w") as f:
            f.write(SLAPD_LDIF.format(token=self.token, alicepw=self.alicepw))
        run(["slapadd", "-f", conf, "-l", ldif], check=True, timeout=60)
        self.proc, self.port = start_listening(
            lambda port: ["slapd", "-d", "256", "-f", conf, "-h", "ldap://127.0.0.1:%d/" % port],
            "slapd", self.dir)

    def stop(self):
        self.proc.stop()


# --------------------------------------------------------------------------
# Clients

def curl(certs, port, path, host="localhost", addr="127.0.0.1", args=(), scheme="https",
         timeout=30):
    """curl SCHEME://host:port/path with --cacert and --resolve host:port:addr."""
    a = "[%s]" % addr if ":" in addr else addr
    cmd = ["curl", "-sS", "--max-time", str(int(timeout * SLOW)), "--cacert", certs.ca,
           "--resolve", "%s:%d:%s" % (host, port, a), "%s://%s:%d%s" % (scheme, host, port, path)]
    return run(cmd + list(args), timeout=timeout + 5)


def s_client(port, args=(), stdin=b"", servername="localhost", ca=None, timeout=20):
    """openssl s_client with OpenSSL's config out of the way (so -tls1_1 and
    -cipher '...@SECLEVEL=0' are really offered)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
    if servername:
        cmd += ["-servername", servername]
    if ca:
        cmd += ["-CAfile", ca, "-verify_return_error"]
    return run(cmd + list(args), input=stdin, timeout=timeout,
               env={"OPENSSL_CONF": "/dev/null"})


def listener(name, backend_port=None, mode="tls", protocol="tcp", listen="127.0.0.1:0", extra=(),
             backend=None):
    items = []
    for l in (listen if isinstance(listen, (list, tuple)) else [listen]):
        items.append(("listen", l))
    items += [("mode", mode), ("protocol", protocol)]
    if backend is None and backend_port is not None:
        backend = "127.0.0.1:%d" % backend_port
    if backend is not None:
        items.append(("backend", backend))
    items += list(extra)
    return (name, items)


def close_lines(log):
    """The per-connection close lines of a portier log (those carrying up= and down=)."""
    return [l for l in log.splitlines() if " up=" in " " + l and "down=" in l]
