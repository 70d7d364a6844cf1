"""contrib/fail2ban: the filter's four failregexes, run by Debian's own
fail2ban-regex over the log file a real portier wrote while clients did
what each regex is for, and what none of them is for. Each event comes from
a source address of its own (127.0.0.x, ::1), so the addresses fail2ban
finds per regex say exactly which lines it matched."""

import ast
import collections
import datetime
import json
import os
import re
import shutil
import socket
import ssl
import warnings

import pytest

import harness
from harness import listener, tls_items
from starttls_support import Client, ldap_bind, ldap_unbind, starttls_listener
from test_keys import Detached, devlog_env

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
FILTER = os.path.join(ROOT, "contrib", "fail2ban", "filter.d", "portier.conf")
JAIL = os.path.join(ROOT, "contrib", "fail2ban", "jail.d", "portier.conf")
COMMON = "/etc/fail2ban/filter.d/common.conf"


def failregexes(text):
    """The failregex lines of a filter file, in order."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("failregex"):
            inside = True
            out.append(line.split("=", 1)[1].strip())
        elif inside and line[:1] in (" ", "\t") and line.strip():
            out.append(line.strip())
        else:
            inside = False
    return out


def one_regex_filter(workdir, k):
    """A copy of the filter with only its k-th failregex, beside
    common.conf as fail2ban's include needs."""
    text = open(FILTER).read()
    regexes = failregexes(text)
    d = os.path.join(str(workdir), "f2b%d" % k, "filter.d")
    os.makedirs(d)
    shutil.copy(COMMON, d)
    lines, skip = [], False
    for line in text.splitlines():
        if line.startswith("failregex"):
            lines.append("failregex = " + regexes[k])
            skip = True
        elif skip and line[:1] in (" ", "\t") and line.strip():
            continue
        else:
            skip = False
            lines.append(line)
    path = os.path.join(d, "portier.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def hits(log, filt):
    """Counter of the addresses fail2ban-regex finds in log with filt."""
    cp = harness.run(["fail2ban-regex", "-o", "ip", log, filt], timeout=60)
    assert cp.returncode == 0, cp.out + cp.err
    return collections.Counter(l.strip() for l in cp.out.splitlines() if l.strip())


def tls_from(src, port, ctx, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10 * harness.SLOW)
    s.bind((src, 0))
    s.connect((host, port))
    return s, ctx.wrap_socket(s, server_hostname="localhost", do_handshake_on_connect=False)


def handshake_fails(src, port, ctx, host="127.0.0.1"):
    s, t = tls_from(src, port, ctx, host)
    try:
        try:
            t.do_handshake()
        except (ssl.SSLError, ConnectionError):
            return
        raise AssertionError("the handshake from %s succeeded" % src)
    finally:
        t.close()


def plain_from(src, port):
    c = Client.__new__(Client)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.settimeout(10 * harness.SLOW)
    c.sock.bind((src, 0))
    c.sock.connect(("127.0.0.1", port))
    c.buf, c.eof = b"", False
    return c


@pytest.fixture(params=["file", "syslog", "json", "journal"])
def form(request):
    return request.param


def as_text(line):
    """A log line in the words of the text form, whichever form it is in
    (for waiting on events; what fail2ban reads is the file as it is)."""
    if not line.startswith("{"):
        return line
    o = json.loads(line)
    if o.get("event") == "handshake_failed":
        return "[%s] handshake failed client=%s: %s" % (o["listener"], o["client"], o["reason"])
    if o.get("event") == "close":
        return "[%s] close client=%s sni=%s: %s" % (o["listener"], o["client"], o["sni"],
                                                   o["reason"])
    return o["msg"]


def ports_of(path):
    """{listener: [(host, port)]} from a ports_file."""
    out = collections.defaultdict(list)
    for line in open(path).read().split("\n"):
        m = re.fullmatch(r"(\S+) \[?([0-9a-fA-F:.]+?)\]?:(\d+)", line)
        if m:
            out[m.group(1)].append((m.group(2), int(m.group(3))))
    return out


class Rsyslogd:
    """Debian's rsyslogd as a throwaway process: one socket of the test's
    (portier reaches it through tests/fault/devlog.c), every message into
    one file in the traditional format that /var/log/syslog has."""

    def __init__(self, workdir):
        self.dir = os.path.join(str(workdir), "rsyslog")
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "log.sock")
        self.file = os.path.join(self.dir, "syslog")
        conf = os.path.join(self.dir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write('global(workDirectory="%s")\n'
                    'module(load="imuxsock" SysSock.Use="off")\n'
                    'input(type="imuxsock" Socket="%s")\n'
                    'module(load="builtin:omfile" Template="RSYSLOG_TraditionalFileFormat")\n'
                    '*.* action(type="omfile" file="%s")\n' % (self.dir, self.sock, self.file))
        self.proc = harness.Proc(["rsyslogd", "-n", "-f", conf, "-i",
                                  os.path.join(self.dir, "rsyslogd.pid")],
                                 os.path.join(self.dir, "rsyslogd.out"), "rsyslogd")
        harness.wait_for(lambda: os.path.exists(self.sock) or not self.proc.alive(),
                         10 * harness.SLOW, "rsyslogd's socket")
        assert self.proc.alive(), self.proc.log()

    def stop(self):
        self.proc.stop()


class Journal:
    """What the shipped unit gives the jail: `portier -f`, its standard
    error the journal's stream (systemd sets JOURNAL_STREAM to that
    stream's device and inode), read back by fail2ban's systemd backend.
    There is no journald to run here, so the stream is a file whose device
    and inode JOURNAL_STREAM names, and each line becomes the entry
    journald would store (its "<N>" taken off as the priority), which
    fail2ban's own FilterSystemd.formatJournalEntry turns into the line its
    failregexes see, dated as the backend dates it."""

    def __init__(self, workdir, sections):
        self.dir = str(workdir)
        stream = os.path.join(self.dir, "portier.log")   # harness.Portier's output
        open(stream, "wb").close()
        st = os.stat(stream)
        self.p = harness.Portier(workdir, sections, env={
            "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.ports_file = self.p.ports_file
        self.file = os.path.join(self.dir, "journal.log")

    def stop(self):
        self.p.stop()

    def render(self):
        """The journal as fail2ban reads it, into self.file."""
        with warnings.catch_warnings():   # fail2ban's own, of old modules it uses
            warnings.simplefilter("ignore", DeprecationWarning)
            from fail2ban.server.filtersystemd import FilterSystemd

        class Backend:
            jailName = "portier"

            def getLogEncoding(self):
                return "UTF-8"

            getJrnEntTime = FilterSystemd.getJrnEntTime

        out = []
        for line in self.p.log().splitlines():
            # Every line portier writes to the journal starts with its
            # priority; journald stores the rest as MESSAGE.
            m = re.fullmatch(r"<([0-7])>(.*)", line)
            assert m, "a line to the journal without its <N>: %r" % line
            entry = {"_HOSTNAME": "host", "SYSLOG_IDENTIFIER": "portier",
                     "_PID": self.p.proc.pid, "PRIORITY": m.group(1), "MESSAGE": m.group(2),
                     "__REALTIME_TIMESTAMP": datetime.datetime.now()}
            (_, date, text), _ = FilterSystemd.formatJournalEntry(Backend(), entry)
            out.append(date + text)
        with open(self.file, "w") as f:
            f.write("\n".join(out) + "\n")


def test_filter_bans_exactly_its_lines(workdir, certs, http_backend, closed_port, form):
    """form "file": a detached portier with log = FILE, the form with a
    timestamp that fail2ban dates each line by (-f would log to stderr);
    "syslog": log = syslog, written by a real rsyslogd; "journal": -f
    under systemd, as Journal says."""
    assert shutil.which("fail2ban-regex"), "fail2ban is not installed"
    rs = None
    jr = None
    if form in ("file", "json"):
        log = os.path.join(str(workdir), "file.log")
        glob, env = [("log", log)], None
        if form == "json":
            glob.append(("log_format", "json"))
    elif form == "syslog":
        rs = Rsyslogd(workdir)
        log = rs.file
        glob, env = [("log", "syslog")], devlog_env(rs.sock)
    else:
        glob, env = None, None
    sections = [("tls", tls_items(certs.ec)),
                listener("web", http_backend.port, protocol="http",
                         listen=["127.0.0.1:0", "[::1]:0"]),
                listener("imaps", closed_port, protocol="imap"),
                starttls_listener("smtp", "smtp", closed_port),
                starttls_listener("imap", "imap", closed_port),
                starttls_listener("pop3", "pop3", closed_port),
                starttls_listener("ldap", "ldap", closed_port),
                listener("lim", http_backend.port, protocol="http",
                         extra=[("max_connections_per_ip", "1")]),
                listener("rate", http_backend.port, protocol="http",
                         listen=["127.0.0.1:0", "[::1]:0"],
                         extra=[("rate_per_ip", "1/m"), ("rate_burst", "1")])]
    try:
        if form == "journal":
            d = jr = Journal(workdir, sections)
            log = jr.p.proc.logpath
        else:
            d = Detached(workdir, sections, glob, env=env)
        try:
            run_events(d, log, certs)
        finally:
            d.stop()
    finally:
        if rs:
            rs.stop()
    if jr:
        jr.render()
        log = jr.file
    text = open(log).read()
    if form == "json":
        assert re.match(r'\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"', text), text
    elif form == "file":
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d portier: ", text), text
    elif form == "syslog":
        assert re.match(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ portier\[\d+\]: ", text), text
    else:
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+ host portier\[\d+\]: ", text), text
    check_filter(workdir, log, text, form == "json")


# What each failregex must find, by source address: run_events() makes
# exactly these lines, and others that no regex may match.
WANT = [collections.Counter({"127.0.0.11": 1, "::1": 1, "127.0.0.12": 1}),
        collections.Counter({"127.0.0.16": 1}),
        collections.Counter({"127.0.0.17": 1, "127.0.0.18": 1, "127.0.0.19": 1,
                             "127.0.0.20": 1}),
        collections.Counter({"127.0.0.23": 1, "::1": 1})]


def run_events(d, log, certs):
    ports = ports_of(d.ports_file)
    web = ports["web"][0][1]
    web6 = [port for host, port in ports["web"] if host == "::1"][0]

    def port_of(name):
        return ports[name][0][1]

    def lines():
        # rsyslogd makes its file with the first line it writes, from its
        # own queue: on a loaded machine that can come after the test
        # first looks.
        try:
            with open(log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def wait_line(pattern):
        rx = re.compile(pattern)
        harness.wait_for(lambda: any(rx.search(as_text(l)) for l in lines()),
                         10 * harness.SLOW, "log line /%s/" % pattern)

    # --- regex 1: handshakes that failed on what the client offered ---
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # that is the point
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    handshake_fails("127.0.0.11", web, old)
    cbc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cbc.check_hostname, cbc.verify_mode = False, ssl.CERT_NONE
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("AES128-SHA:@SECLEVEL=0")
    handshake_fails("::1", web6, cbc, host="::1")
    alpn = certs.client_context()
    alpn.set_alpn_protocols(["http/1.1"])
    handshake_fails("127.0.0.12", port_of("imaps"), alpn)
    wait_line(r"client=127\.0\.0\.12:\d+: client offered only foreign ALPN")

    # --- none: a client that hangs up, one that rejects the certificate,
    # plaintext on the implicit-TLS port, and a handshake that worked ---
    s = socket.create_connection(("127.0.0.1", web), source_address=("127.0.0.13", 0))
    s.close()
    wait_line(r"handshake failed client=127\.0\.0\.13:\d+:")
    handshake_fails("127.0.0.14", web, ssl.create_default_context())
    wait_line(r"handshake failed client=127\.0\.0\.14:\d+:")
    c = plain_from("127.0.0.15", port_of("imaps"))
    c.send(b"a LOGIN user pass\r\n")
    c.read_to_eof()
    c.close()
    wait_line(r"handshake failed client=127\.0\.0\.15:\d+: .*plaintext")
    s, t = tls_from("127.0.0.22", web, certs.client_context())
    t.do_handshake()
    t.sendall(b"GET /who HTTP/1.0\r\nHost: localhost\r\n\r\n")
    assert harness.read_to_eof(t).startswith(b"HTTP/1.1 200")
    t.close()
    wait_line(r"\[web\] close client=127\.0\.0\.22:\d+ ")

    # --- regex 2: commands pipelined behind STARTTLS ---
    c = plain_from("127.0.0.16", port_of("smtp"))
    c.smtp_reply()
    c.send(b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\n")
    c.read_to_eof()
    c.close()
    wait_line(r"client=127\.0\.0\.16:\d+ .*command injection attempt")

    # --- regex 3: credentials before STARTTLS, in each protocol ---
    c = plain_from("127.0.0.17", port_of("smtp"))
    c.smtp_reply()
    c.send(b"EHLO x\r\n")
    c.smtp_reply()
    c.send(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
    assert c.smtp_reply().startswith(b"530 ")
    c.send(b"QUIT\r\n")
    c.read_to_eof()
    c.close()
    c = plain_from("127.0.0.18", port_of("imap"))
    c.line()
    c.send(b"a LOGIN alice secret\r\nb LOGIN alice secret\r\nc LOGOUT\r\n")
    c.read_to_eof()
    c.close()
    # (once per connection, not per command: WANT has 127.0.0.18 once)
    c = plain_from("127.0.0.19", port_of("pop3"))
    c.line()
    c.send(b"USER alice\r\n")
    assert c.line().startswith(b"-ERR")
    c.send(b"QUIT\r\n")
    c.read_to_eof()
    c.close()
    c = plain_from("127.0.0.20", port_of("ldap"))
    c.send(ldap_bind(1, "cn=admin,dc=example", "secret"))
    assert c.ldap().code == 13
    c.send(ldap_unbind(2))
    c.read_to_eof()
    c.close()
    c = plain_from("127.0.0.21", port_of("ldap"))       # anonymous: no credentials
    c.send(ldap_bind(1, "", ""))
    assert c.ldap().code == 13
    c.send(ldap_unbind(2))
    c.read_to_eof()
    c.close()
    for src in ("17", "18", "19", "20"):
        wait_line(r"client=127\.0\.0\.%s:\d+: \S+ before STARTTLS refused" % src)
    wait_line(r"\[ldap\] close client=127\.0\.0\.21:")

    # --- regex 4: over a per-client limit, three times each: one line ---
    s, held = tls_from("127.0.0.23", port_of("lim"), certs.client_context())
    held.do_handshake()
    for _ in range(3):
        refused_unheard("127.0.0.23", port_of("lim"))
    rate6 = [port for host, port in ports["rate"] if host == "::1"][0]
    s6, t6 = tls_from("::1", rate6, certs.client_context(), host="::1")
    t6.do_handshake()
    t6.close()
    for _ in range(3):
        refused_unheard("::1", rate6, host="::1")
    wait_line(r"\[lim\] client=127\.0\.0\.23:\d+: over max_connections_per_ip \(1\)")
    wait_line(r"\[rate\] client=\[::1\]:\d+: over rate_per_ip \(1/m, burst 1\)")
    held.close()


def refused_unheard(src, port, host="127.0.0.1"):
    """A connection portier closes before a byte (over a per-client limit
    on an implicit-TLS listener)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(10 * harness.SLOW)
        s.bind((src, 0))
        s.connect((host, port))
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass


def check_filter(workdir, log, text, json_form):
    assert re.search(r"client=127\.0\.0\.17:\d+: AUTH before STARTTLS refused", text), text
    assert re.search(r"client=127\.0\.0\.20:\d+: bind before STARTTLS refused", text), text
    assert len(failregexes(open(FILTER).read())) == 2 * len(WANT)
    # 1 to 4 for the text lines, 5 to 8 for the same as JSON: each finds
    # its addresses in its form and none in the other.
    n = len(WANT)
    for k in range(2 * n):
        want = WANT[k % n] if (k >= n) == json_form else collections.Counter()
        got = hits(log, one_regex_filter(workdir, k))
        assert got == want, "failregex %d matched %s, want %s; log:\n%s" % (
            k + 1, dict(got), dict(want), text)
    # And the whole filter, as the jail runs it: the sum of the four.
    d = os.path.join(str(workdir), "f2b", "filter.d")
    os.makedirs(d)
    shutil.copy(COMMON, d)
    shutil.copy(FILTER, d)
    assert hits(log, os.path.join(d, "portier.conf")) == sum(WANT, collections.Counter())


def test_jail_example_passes_fail2bans_own_check(workdir):
    """The shipped jail, enabled and pointed at a file, in a copy of the
    machine's /etc/fail2ban without Debian's default sshd jail: fail2ban's
    own configuration test accepts it and reads the filter's six
    regexes; as shipped it is off."""
    assert re.search(r"(?m)^enabled\s*=\s*false$", open(JAIL).read())
    conf = os.path.join(str(workdir), "fail2ban")
    shutil.copytree("/etc/fail2ban", conf)
    for f in os.listdir(os.path.join(conf, "jail.d")):
        os.unlink(os.path.join(conf, "jail.d", f))
    shutil.copy(FILTER, os.path.join(conf, "filter.d"))
    log = os.path.join(str(workdir), "portier.log")
    open(log, "w").close()
    jail = re.sub(r"(?m)^enabled\s*=.*$", "enabled = true", open(JAIL).read())
    jail = re.sub(r"(?m)^logpath\s*=.*$", "logpath = " + log, jail)
    with open(os.path.join(conf, "jail.d", "portier.conf"), "w") as f:
        f.write(jail)
    cp = harness.run(["fail2ban-client", "-c", conf, "--test"], timeout=60)
    assert cp.returncode == 0, cp.out + cp.err
    assert "OK: configuration test is successful" in cp.out + cp.err, cp.out + cp.err
    cp = harness.run(["fail2ban-client", "-c", conf, "-d"], timeout=60)
    assert cp.returncode == 0, cp.out + cp.err
    m = re.search(r"^\['multi-set', 'portier', 'addfailregex', .*\]$", cp.out, re.M)
    assert m, cp.out
    assert len(ast.literal_eval(m.group(0))[3]) == 8, m.group(0)
    assert "['set', 'portier', 'logpath'" in cp.out or "'addlogpath'" in cp.out, cp.out
