"""A throwaway Cyrus IMAP and POP3 server, and its test clients.

Cyrus is here for what dovecot does not do: SASL mechanisms with a security
layer (DIGEST-MD5 with integrity or confidentiality). After such an
authentication both sides wrap every byte, and portier's IMAP and POP3
filters must step aside. The clients are Cyrus's own imtest and pop3test,
which negotiate a layer when allowed more than TLS's strength (-l).
"""
import base64
import binascii
import os
import re
import shutil
import time

import harness

# master, ctl_cyrusdb (cyrus-common) and the clients (cyrus-clients) are
# installed; imapd and pop3d conflict with dovecot's packages, so scripts/test
# unpacks them into build-cyrus/ (PORTIER_CYRUS).
CYRUS_BIN = "/usr/lib/cyrus/bin"
SERVERS = os.path.join(
    os.environ.get("PORTIER_CYRUS") or
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build-cyrus"),
    "usr/lib/cyrus/bin")

IMAPD_CONF = """\
configdirectory: {d}/config
partition-default: {d}/spool
servername: localhost
admins: cyrus
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {d}/sasldb2
sasl_mech_list: DIGEST-MD5 PLAIN
autocreate_quota: 0
idlesocket: {d}/idle
notifysocket: {d}/notify
lmtpsocket: {d}/lmtp
statuscache: 0
syslog_prefix: portier-test-cyrus
"""

# ctl_cyrusdb -r sets the databases up at start; prefork=0: no idle children.
CYRUS_CONF = """\
START {{
  recover cmd="ctl_cyrusdb -r -C {d}/imapd.conf"
}}
SERVICES {{
  imap cmd="{d}/bin/imapd -C {d}/imapd.conf" listen="127.0.0.1:{imap}" prefork=0
  pop3 cmd="{d}/bin/pop3d -C {d}/imapd.conf" listen="127.0.0.1:{pop3}" prefork=0
}}
EVENTS {{
}}
"""


class Cyrus:
    """Cyrus master -D with IMAP on .imap_port and POP3 on .pop3_port (plaintext:
    TLS is portier's). User .user / .password from a sasldb, by DIGEST-MD5 or
    PLAIN; the INBOX is made at the first login."""

    user = "alice"
    password = "Cyrus.alicepw"

    def __init__(self):
        for server in ("imapd", "pop3d"):
            if not os.access(os.path.join(SERVERS, server), os.X_OK):
                raise AssertionError("no Cyrus %s in %s: scripts/test unpacks it there"
                                     % (server, SERVERS))
        self.dir = harness.world_dir("cyrus")
        for sub in ("config", "spool", "bin"):
            os.makedirs(os.path.join(self.dir, sub))
        # Copied where the cyrus user surely reaches them (a checkout under
        # /root would not do).
        for server in ("imapd", "pop3d"):
            shutil.copy2(os.path.join(SERVERS, server), os.path.join(self.dir, "bin"))
        with open(os.path.join(self.dir, "imapd.conf"), "w") as f:
            f.write(IMAPD_CONF.format(d=self.dir))
        harness.run(["saslpasswd2", "-p", "-c", "-f", os.path.join(self.dir, "sasldb2"),
                     "-u", "localhost", self.user], input=self.password.encode(),
                    check=True)
        harness.run(["chown", "-R", "cyrus:mail", self.dir], check=True)
        self.proc = None
        out = ""
        for _ in range(3):
            self.imap_port, self.pop3_port = harness.free_port(), harness.free_port()
            with open(os.path.join(self.dir, "cyrus.conf"), "w") as f:
                f.write(CYRUS_CONF.format(d=self.dir, imap=self.imap_port,
                                          pop3=self.pop3_port))
            pid = os.path.join(self.dir, "master.pid")
            self.proc = harness.Proc(
                [os.path.join(CYRUS_BIN, "master"), "-C",
                 os.path.join(self.dir, "imapd.conf"), "-M",
                 os.path.join(self.dir, "cyrus.conf"), "-D", "-p", pid],
                os.path.join(self.dir, "master.log"), "cyrus master")
            end = harness.deadline(20)
            while time.monotonic() < end and self.proc.alive():
                if harness.port_open(self.imap_port) and harness.port_open(self.pop3_port):
                    return
                time.sleep(0.05)
            out = self.proc.log()
            self.proc.stop()
        raise AssertionError("cyrus master did not start:\n" + out)

    def stop(self):
        if self.proc:
            self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def sasl_session(tool, port, commands, tls, layer, timeout=30):
    """Run Cyrus's imtest or pop3test (tool) against 127.0.0.1:port as Cyrus.user
    by DIGEST-MD5, sending the lines of commands after the login. tls: "implicit"
    (-s) or "starttls" (-t). layer: allow a SASL security layer stronger than
    TLS (-l 100000: DIGEST-MD5 then protects every later byte) or none (-l 0).
    Returns its output (stdout and stderr)."""
    cmdfile = os.path.join(harness.world_dir("sasl-cmds"), "cmds")
    with open(cmdfile, "w") as f:
        f.write("".join(c + "\r\n" for c in commands))
    argv = [os.path.join(CYRUS_BIN, tool)] + (["-s"] if tls == "implicit" else ["-t", ""]) + [
            "-l", "100000" if layer else "0", "-m", "DIGEST-MD5",
            "-a", Cyrus.user, "-u", Cyrus.user, "-w", Cyrus.password, "-r", "localhost",
            "-f", cmdfile, "-p", str(port), "127.0.0.1"]
    try:
        r = harness.run(argv, timeout=timeout)
        return r.out + r.err
    finally:
        shutil.rmtree(os.path.dirname(cmdfile), ignore_errors=True)


def digest_qop(output):
    """The quality of protection the DIGEST-MD5 client chose (its response,
    base64 on a "C: " line): "auth" (none), "auth-int" or "auth-conf" (a
    layer with integrity, or confidentiality too), None if no response."""
    for line in output.splitlines():
        if not line.startswith("C: "):
            continue
        try:
            text = base64.b64decode(line[3:].strip(), validate=True).decode("ascii", "replace")
        except (binascii.Error, ValueError):
            continue
        m = re.search(r'(?:^|,)qop="?([a-z-]+)', text)
        if m:
            return m.group(1)
    return None

