"""Helpers for the STARTTLS tests (issue 10): listener sections, a recording
fake backend per protocol, a plaintext client that upgrades in place, and a
small BER codec for LDAP.

Same rules as harness.py: loopback only, every wait bounded, every thread and
socket closed at teardown.
"""

import contextlib
import re
import socket
import threading
import time

import pytest

import harness
from harness import listener, tls_items

HOSTNAME = "mail.example.org"
PROTOCOLS = ("smtp", "imap", "pop3", "ldap")


def starttls_listener(name, protocol, backend_port=None, extra=(), backend=None,
                      hostname=HOSTNAME):
    """A `mode = starttls` listener section with a fixed hostname."""
    items = [("hostname", hostname)] + list(extra)
    return listener(name, backend_port, mode="starttls", protocol=protocol, extra=items,
                    backend=backend)


def both_models_portier(tmp_path_factory, certs, protocol, backend_port):
    """portier in front of one backend port twice: `mode = starttls` as
    listener `protocol` and implicit TLS as `protocol + "s"` (imaps, pop3s)."""
    return harness.Portier(tmp_path_factory.mktemp(protocol + "-both"), [
        ("tls", tls_items(certs.ec, certs.rsa)),
        starttls_listener(protocol, protocol, backend_port),
        listener(protocol + "s", backend_port, protocol=protocol),
    ])


# --------------------------------------------------------------------------
# LDAP BER, just enough for StartTLS, bind, search and their responses

OID_STARTTLS = b"1.3.6.1.4.1.1466.20037"
OID_NOTICE = b"1.3.6.1.4.1.1466.20036"


def ber_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + ber_len(len(content)) + content


def ber_int(v, tag=0x02):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)
    return tlv(tag, b)


def ldap_msg(msgid, op):
    return tlv(0x30, ber_int(msgid) + op)


def ldap_starttls(msgid=1):
    return ldap_msg(msgid, tlv(0x77, tlv(0x80, OID_STARTTLS)))


def ldap_bind(msgid, dn, pw):
    return ldap_msg(msgid, tlv(0x60, ber_int(3) + tlv(0x04, dn.encode()) +
                               tlv(0x80, pw.encode())))


def ldap_search(msgid, base, attr="objectClass", value=None, attrs=()):
    """A search under base (scope sub) with (attr=*) or (attr=value)."""
    if value is None:
        flt = tlv(0x87, attr.encode())
    else:
        flt = tlv(0xa3, tlv(0x04, attr.encode()) + tlv(0x04, value.encode()))
    body = (tlv(0x04, base.encode()) + ber_int(2, 0x0a) + ber_int(0, 0x0a) + ber_int(0) +
            ber_int(0) + tlv(0x01, b"\x00") + flt +
            tlv(0x30, b"".join(tlv(0x04, a.encode()) for a in attrs)))
    return ldap_msg(msgid, tlv(0x63, body))


def ldap_unbind(msgid):
    return ldap_msg(msgid, b"\x42\x00")


def ldap_simple(msgid, op_tag, body=b""):
    """Any request as [APPLICATION op_tag] with raw body (for 'every op is refused')."""
    return ldap_msg(msgid, tlv(op_tag, body))


def ber_read(data, off=0):
    """(tag, content, next offset) of the TLV at data[off:], or None if incomplete."""
    if len(data) < off + 2:
        return None
    tag = data[off]
    n = data[off + 1]
    p = off + 2
    if n & 0x80:
        k = n & 0x7f
        if len(data) < p + k:
            return None
        n = int.from_bytes(data[p:p + k], "big")
        p += k
    if len(data) < p + n:
        return None
    return tag, data[p:p + n], p + n


class LDAPResult:
    """A parsed LDAPMessage: msgid, op (tag), and for LDAPResult-shaped ops
    code, diag and (ExtendedResponse) name."""

    def __init__(self, raw):
        self.raw = raw
        tag, body, _ = ber_read(raw)
        assert tag == 0x30, raw
        t, idb, p = ber_read(body)
        assert t == 0x02, raw
        self.msgid = int.from_bytes(idb, "big", signed=True)
        self.op, opb, _ = ber_read(body, p)
        self.code = self.diag = self.name = None
        self.body = opb
        if self.op in (0x61, 0x65, 0x67, 0x69, 0x6b, 0x6d, 0x6f, 0x78):
            t, code, q = ber_read(opb)
            assert t == 0x0a, raw
            self.code = int.from_bytes(code, "big")
            _, _, q = ber_read(opb, q)              # matchedDN
            _, diag, q = ber_read(opb, q)
            self.diag = diag
            while q < len(opb):
                t, v, q = ber_read(opb, q)
                if t == 0x8a:
                    self.name = v

    def __repr__(self):
        return "LDAPResult(id=%d op=0x%02x code=%s diag=%r name=%r)" % (
            self.msgid, self.op, self.code, self.diag, self.name)


def ldap_split(data):
    """Complete LDAPMessages at the start of data, and the rest."""
    out = []
    off = 0
    while True:
        r = ber_read(data, off)
        if r is None:
            return out, data[off:]
        out.append(data[off:r[2]])
        off = r[2]


# --------------------------------------------------------------------------
# A plaintext client that can upgrade its socket to TLS

class Client:
    """A socket to 127.0.0.1:port with bounded reads. .tls() upgrades it in
    place with the test CA. Reads that the peer answers with EOF return what
    came so far."""

    def __init__(self, port, timeout=10, rcvbuf=None):
        if rcvbuf is None:
            self.sock = socket.create_connection(("127.0.0.1", port),
                                                 timeout=timeout * harness.SLOW)
        else:
            # A small receive buffer, set before connecting so the window
            # is small from the start: a client that reads slowly.
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout * harness.SLOW)
            self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _more(self, end):
        left = end - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def until(self, pattern, timeout=10):
        """Read until regex pattern (bytes) matches the buffered input; return
        and consume everything up to the end of the match."""
        rx = re.compile(pattern)
        end = harness.deadline(timeout)
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            if self.eof or not self._more(end):
                raise AssertionError("no %r in time (eof=%s); got %r"
                                     % (pattern, self.eof, self.buf))

    def line(self, timeout=10):
        return self.until(rb"\n", timeout)

    def smtp_reply(self, timeout=10):
        """One whole SMTP reply (all its lines)."""
        return self.until(rb"(?m)^\d{3}(?: [^\r\n]*)?\r?\n", timeout)

    def ldap(self, timeout=10):
        end = harness.deadline(timeout)
        while True:
            msgs, rest = ldap_split(self.buf)
            if msgs:
                self.buf = self.buf[len(msgs[0]):]
                return LDAPResult(msgs[0])
            if self.eof or not self._more(end):
                raise AssertionError("no LDAP message in time (eof=%s); got %r"
                                     % (self.eof, self.buf))

    def read_to_eof(self, timeout=10):
        """Everything until the peer closes; AssertionError if it does not in time."""
        end = harness.deadline(timeout)
        while not self.eof:
            if not self._more(end) and not self.eof:
                raise AssertionError("peer did not close in time; got %r" % self.buf)
        out, self.buf = self.buf, b""
        return out

    def tls(self, certs, server_hostname="localhost", ctx=None):
        assert self.buf == b"", "bytes before the TLS handshake: %r" % self.buf
        ctx = ctx or certs.client_context()
        self.sock.settimeout(10 * harness.SLOW)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.eof = False
        return self.sock

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


def smtp_upgrade(c, certs):
    c.smtp_reply()
    c.send(b"EHLO client.example.net\r\n")
    c.smtp_reply()
    c.send(b"STARTTLS\r\n")
    assert c.smtp_reply().startswith(b"220 ")
    c.tls(certs)


def imap_upgrade(c, certs):
    c.line()
    c.send(b"a1 STARTTLS\r\n")
    assert c.line().startswith(b"a1 OK")
    c.tls(certs)


def pop3_upgrade(c, certs):
    c.line()
    c.send(b"STLS\r\n")
    assert c.line().startswith(b"+OK")
    c.tls(certs)


def ldap_upgrade(c, certs):
    c.send(ldap_starttls(1))
    r = c.ldap()
    assert r.op == 0x78 and r.code == 0 and r.name == OID_STARTTLS, r
    c.tls(certs)


UPGRADE = {"smtp": smtp_upgrade, "imap": imap_upgrade, "pop3": pop3_upgrade,
           "ldap": ldap_upgrade}


def connect_and_upgrade(port, protocol, certs, rcvbuf=None):
    c = Client(port, rcvbuf=rcvbuf)
    UPGRADE[protocol](c, certs)
    return c


# --------------------------------------------------------------------------
# A second LDAP StartTLS while a large search result is flowing

HUGE_SN = "Huge"
PRE_READ = 50000    # what the client reads before its StartTLS


def ldap_add_huge(slapd, count=8, size=500000):
    """Add count entries (sn=Huge) of about size bytes each to slapd, as its
    rootdn; returns their description values, each one distinct, so that a
    byte spliced into one shows. 4 MB in all: more than the socket buffers
    between slapd, portier and a slow client take in, so that a StartTLS
    sent once 50 KB came meets the result in the middle of an entry."""
    values, ldif = [], []
    for i in range(count):
        v = ("huge%d-" % i) * (size // 6)
        values.append(v.encode())
        ldif.append("dn: cn=Huge %d,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\n"
                    "cn: Huge %d\nsn: %s\ndescription: %s\n" % (i, i, HUGE_SN, v))
    cp = harness.run(["ldapadd", "-x", "-o", "nettimeout=10", "-H",
                      "ldap://127.0.0.1:%d/" % slapd.port, "-D", slapd.ROOTDN, "-w", slapd.rootpw],
                     input="\n".join(ldif).encode(), timeout=60)
    assert cp.returncode == 0, cp.err
    return values


def starttls_mid_search(c, values, base="dc=example,dc=org"):
    """Through c (TLS, a small receive buffer): a search (msgid 2) for the
    huge entries; once 50 KB of its result came, and portier's buffers
    toward the client are full in the middle of an entry, a StartTLS (msgid
    3). Everything the client gets must frame as LDAPMessages: every entry
    whole, the search's end, and portier's operationsError for msgid 3 once,
    between two messages; nothing else, and the session goes on."""
    c.send(ldap_search(2, base, "sn", HUGE_SN, attrs=["description"]))
    end = harness.deadline(20)
    while len(c.buf) < PRE_READ:
        assert c._more(end), "the search's result did not come (%d bytes)" % len(c.buf)
    c.send(ldap_starttls(3))
    msgs, at, done, answered = [], 0, False, False
    while not (done and answered):
        got, rest = ldap_split(c.buf)
        for raw in got:
            assert raw[0] == 0x30, "not an LDAPMessage at byte %d: %r" % (at, raw[:16])
            r = LDAPResult(raw)
            msgs.append((at, r))
            at += len(raw)
            done = done or (r.msgid, r.op) == (2, 0x65)
            answered = answered or r.msgid == 3
        c.buf = rest
        # A spliced answer shows as a frame that is not a SEQUENCE.
        assert not rest or rest[0] == 0x30, "not an LDAPMessage at byte %d: %r" % (at, rest[:16])
        if not (done and answered):
            assert c._more(end), ("stream stopped at byte %d: search done %s, StartTLS "
                                  "answered %s" % (at, done, answered))
    entries = [r for _, r in msgs if (r.msgid, r.op) == (2, 0x64)]
    assert len(entries) == len(values), [r for _, r in msgs]
    for v in values:
        assert sum(v in r.raw for r in entries) == 1, "an entry is not whole: %r" % v[:10]
    ours = [(a, r) for a, r in msgs if r.msgid == 3]
    assert len(ours) == 1, ours
    assert (ours[0][1].op, ours[0][1].code, ours[0][1].diag) == (
        0x78, 1, b"TLS is already active"), ours
    assert [r for _, r in msgs if r.msgid == 2][-1].code == 0
    assert len(msgs) == len(values) + 2, [r for _, r in msgs]
    # Never ahead of what the backend had sent before it.
    assert ours[0][0] >= PRE_READ, ours
    if ours[0][0] > [a for a, r in msgs if r.msgid == 2][-1]:
        # The whole result sat in socket buffers (portier read 1.5 to
        # 3.5 MB of the 4 MB ahead of this client, measured) before the
        # StartTLS came: nothing was tested. Say so rather than pass.
        pytest.skip("the search's result was all through portier before the StartTLS")
    return msgs


# --------------------------------------------------------------------------
# A fake plaintext backend per protocol that records every byte it receives

GREETING = {"smtp": b"220 fake.backend ESMTP\r\n", "imap": b"* OK fake backend ready\r\n",
            "pop3": b"+OK fake backend ready\r\n", "ldap": b""}


def _smtp_answer(line):
    w = line.split(b" ")[0].upper().strip()
    if w in (b"EHLO",):
        # Advertises STARTTLS on purpose: portier must drop it after the upgrade.
        return b"250-fake.backend\r\n250-STARTTLS\r\n250-8BITMIME\r\n250 SIZE 1000\r\n"
    if w == b"HELO":
        return b"250 fake.backend\r\n"
    if w == b"STARTTLS":
        return b"454 4.7.0 backend-marker TLS not available\r\n"
    if w == b"QUIT":
        return None
    if w == b"DATA":
        return b"354 go\r\n"
    return b"250 2.0.0 backend-marker ok\r\n"


def _imap_answer(line):
    parts = line.strip().split(b" ")
    tag = parts[0]
    cmd = parts[1].upper() if len(parts) > 1 else b""
    if cmd == b"CAPABILITY":
        return b"* CAPABILITY IMAP4rev1 AUTH=PLAIN backend-marker\r\n" + tag + b" OK done\r\n"
    if cmd == b"STARTTLS":
        return tag + b" BAD backend-marker TLS not available\r\n"
    if cmd == b"LOGOUT":
        return None
    return tag + b" OK backend-marker " + cmd + b" done\r\n"


def _pop3_answer(line):
    cmd = line.strip().split(b" ")[0].upper()
    if cmd == b"CAPA":
        return b"+OK\r\nUSER\r\nbackend-marker\r\n.\r\n"
    if cmd == b"STLS":
        return b"-ERR backend-marker TLS not available\r\n"
    if cmd == b"QUIT":
        return None
    return b"+OK backend-marker\r\n"


def _ldap_answer(msg):
    r = ber_read(msg)
    _, body, _ = r
    _, idb, p = ber_read(body)
    msgid = int.from_bytes(idb, "big")
    op = body[p]
    res = {0x60: 0x61, 0x63: 0x65, 0x66: 0x67, 0x68: 0x69, 0x4a: 0x6b, 0x6c: 0x6d,
           0x6e: 0x6f, 0x77: 0x78}
    if op == 0x42:
        return None
    if op not in res:
        return b""
    code = 1 if op == 0x77 else 0     # StartTLS: operationsError, from the backend
    return ldap_msg(msgid, tlv(res[op], ber_int(code, 0x0a) + tlv(0x04, b"") +
                               tlv(0x04, b"backend-marker")))


ANSWER = {"smtp": _smtp_answer, "imap": _imap_answer, "pop3": _pop3_answer,
          "ldap": _ldap_answer}


class FakeBackend:
    """A plaintext server for protocol on 127.0.0.1:.port: greets with
    greeting (default: a positive one), answers commands like a tiny server
    (every reply carries "backend-marker") and records what each connection
    sent. .accepted counts connections as they are accepted; .sessions holds
    the received bytes of every finished connection. answer(line) replaces
    the protocol's answers (None: the goodbye)."""

    def __init__(self, protocol, greeting=None, answer=None):
        self.protocol = protocol
        self.greeting = GREETING[protocol] if greeting is None else greeting
        self.answer = answer or ANSWER[protocol]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sessions = []
        self.cond = threading.Condition()
        self.done = threading.Event()
        self.threads = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.accepted += 1
            t = threading.Thread(target=self._one, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _frames(self, data):
        """Complete commands at the start of data, and the rest."""
        if self.protocol == "ldap":
            return ldap_split(data)
        out = []
        while b"\n" in data:
            line, data = data.split(b"\n", 1)
            out.append(line + b"\n")
        return out, data

    def _one(self, c):
        got = b""
        pending = b""
        in_data = False
        c.settimeout(15 * harness.SLOW)
        try:
            if self.greeting:
                c.sendall(self.greeting)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got += d
                pending += d
                frames, pending = self._frames(pending)
                for f in frames:
                    if in_data:     # SMTP DATA: swallow until the lone dot
                        if f.rstrip(b"\r\n") == b".":
                            in_data = False
                            c.sendall(b"250 2.0.0 backend-marker queued\r\n")
                        continue
                    a = self.answer(f)
                    if a is None:
                        if self.protocol == "smtp":
                            c.sendall(b"221 2.0.0 backend-marker bye\r\n")
                        elif self.protocol == "imap":
                            tag = f.split(b" ")[0]
                            c.sendall(b"* BYE backend-marker\r\n" + tag + b" OK bye\r\n")
                        elif self.protocol == "pop3":
                            c.sendall(b"+OK backend-marker bye\r\n")
                        raise EOFError
                    if a.startswith(b"354"):
                        in_data = True
                    c.sendall(a)
        except (EOFError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                c.close()
            with self.cond:
                self.sessions.append(got)
                self.cond.notify_all()

    def wait_sessions(self, n=1, timeout=10):
        """Wait until n connections have finished; returns .sessions."""
        end = harness.deadline(timeout)
        with self.cond:
            while len(self.sessions) < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("backend saw %d finished sessions, wanted %d"
                                         % (len(self.sessions), n))
                self.cond.wait(left)
            return list(self.sessions)

    def stop(self):
        self.done.set()
        self.sock.close()
        self.thread.join(timeout=5)
        for t in self.threads:
            t.join(timeout=5)


# --------------------------------------------------------------------------
# openssl s_client -starttls driven line by line

class SClient:
    """`openssl s_client -starttls PROTO` as a child process: .expect(regex)
    waits (bounded) for its output, .send(bytes) writes to its stdin. Stopped
    by PID in .close()."""

    def __init__(self, port, proto, ca, args=(), servername="localhost"):
        cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-starttls", proto,
               "-CAfile", ca, "-verify_return_error", "-ign_eof", "-nocommands",
               "-servername", servername] + list(args)
        self.out = b""
        self.cond = threading.Condition()
        self.closed = False
        import os
        import subprocess
        env = dict(os.environ, OPENSSL_CONF="/dev/null")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, env=env)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.pos = 0

    def _read(self):
        while True:
            d = self.p.stdout.read1(65536)
            with self.cond:
                if not d:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.out += d
                self.cond.notify_all()

    def expect(self, pattern, timeout=15):
        """Wait for regex pattern (bytes) in the output after the last match."""
        rx = re.compile(pattern)
        end = harness.deadline(timeout)
        with self.cond:
            while True:
                m = rx.search(self.out, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                left = end - time.monotonic()
                if self.closed or left <= 0:
                    raise AssertionError("s_client: no %r (exited=%s); output:\n%s"
                                         % (pattern, self.closed,
                                            self.out.decode("utf-8", "replace")))
                self.cond.wait(left)

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait_exit(self, timeout=15):
        """Wait until s_client exits by itself (the server closed)."""
        try:
            return self.p.wait(timeout=timeout * harness.SLOW)
        finally:
            self.t.join(timeout=5)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=10)
        self.t.join(timeout=5)
        for f in (self.p.stdin, self.p.stdout):
            with contextlib.suppress(OSError):
                f.close()

    def text(self):
        return self.out.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# A leaf that names a CRL and an OCSP responder, as public certificates do;
# testssl rates a certificate without either HIGH (a property of the test
# certificate, not of portier). The URIs are never fetched: testssl does not
# phone out unless told to.

def revocable_leaf(certs, name="revocable", names=("localhost", HOSTNAME, "IP:127.0.0.1")):
    import os
    d = certs.dir
    alt = []
    for i, n in enumerate(names, 1):
        alt.append(("IP.%d = %s" % (i, n[3:])) if n.startswith("IP:") else "DNS.%d = %s" % (i, n))
    conf = os.path.join(d, name + ".cnf")
    with open(conf, "w") as f:
        f.write(harness.CA_CONF.format(d=d, alt="\n".join(alt)))
        f.write("[leaf_rev]\nbasicConstraints = critical, CA:false\n"
                "keyUsage = critical, digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = serverAuth\nsubjectAltName = @alt\n"
                "crlDistributionPoints = URI:http://127.0.0.1:9/portier-test.crl\n"
                "authorityInfoAccess = OCSP;URI:http://127.0.0.1:9/ocsp\n")

    class Leaf:
        pass
    leaf = Leaf()
    leaf.key = os.path.join(d, name + ".key")
    leaf.leaf = os.path.join(d, name + ".leaf.pem")
    leaf.cert = os.path.join(d, name + ".pem")
    if os.path.exists(leaf.cert):
        return leaf
    csr = os.path.join(d, name + ".csr")
    env = {"OPENSSL_CONF": "/dev/null"}
    harness.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", leaf.key], env=env, check=True)
    harness.run(["openssl", "req", "-new", "-key", leaf.key, "-out", csr, "-subj",
                 "/CN=" + names[0]], env=env, check=True)
    harness.run(["openssl", "ca", "-batch", "-notext", "-config", conf, "-extensions", "leaf_rev",
                 "-in", csr, "-out", leaf.leaf, "-days", "365"], env=env, check=True)
    with open(leaf.leaf) as f, open(certs.ca) as g, open(leaf.cert, "w") as o:
        o.write(f.read() + g.read())
    return leaf
