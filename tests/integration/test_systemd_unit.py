"""systemd/portier.service and its companions, checked with systemd's own
tools: the exposure `systemd-analyze security` measures, `systemd-analyze
verify`, the sysusers and tmpfiles entries applied to a scratch root, and
(with strace) that portier makes no system call the unit's SystemCallFilter
would refuse."""

import os
import re
import shutil
import signal
import subprocess

import pytest

import harness
from harness import listener, tls_items
from test_notify import Manager

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(ROOT, "systemd", "portier.service")
UNPRIV = os.path.join(ROOT, "systemd", "portier-unprivileged.service")
SYSUSERS = os.path.join(ROOT, "systemd", "portier.sysusers")
TMPFILES = os.path.join(ROOT, "systemd", "portier.tmpfiles")

# The exposure of the shipped unit, and the checks it fails, each for a
# reason portier's design gives: the master keeps root to bind, read keys,
# open the log and start workers as `user` (User=, CAP_SETUID/SETGID and
# the set*id calls of @privileged, CAP_KILL to signal workers of another
# uid), it is a network daemon that talks to any address (PrivateNetwork=,
# IPAddressDeny=, AF_INET, CAP_NET_BIND_SERVICE for ports below 1024) and
# to unix sockets (syslog, the notify socket, unix backends), its workers
# are other users (PrivateUsers= would map them away), ProtectClock=
# implies DeviceAllow=char-rtc, and it runs in the host's root. A new
# failing check, or a higher figure, fails this test.
EXPOSURE_LIMIT = 2.2
EXPECTED_FAILING = {
    "SystemCallFilter=~@privileged", "RootDirectory=/RootImage=", "User=/DynamicUser=",
    "CapabilityBoundingSet=~CAP_KILL", "CapabilityBoundingSet=~CAP_SET(UID|GID|PCAP)",
    "RestrictAddressFamilies=~AF_UNIX", "RestrictAddressFamilies=~AF_(INET|INET6)",
    "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)", "PrivateNetwork=",
    "PrivateUsers=", "DeviceAllow=", "IPAddressDeny=",
}

# portier-unprivileged.service: the whole service as portier, with only
# CAP_NET_BIND_SERVICE (ambient); what is left is the network daemon's
# (PrivateUsers= would take the right to bind below 1024 with it: the
# host's network belongs to the host's user namespace), ProtectClock='s
# device and the host's root.
UNPRIV_LIMIT = 2.0
UNPRIV_FAILING = {
    "RootDirectory=/RootImage=", "AmbientCapabilities=",
    "RestrictAddressFamilies=~AF_UNIX", "RestrictAddressFamilies=~AF_(INET|INET6)",
    "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)", "PrivateNetwork=",
    "DeviceAllow=", "IPAddressDeny=", "PrivateUsers=",
}


def analyze(*args):
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze is missing (Debian package systemd; scripts/test installs it)"
    return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("unit,limit,expected", [
    (UNIT, EXPOSURE_LIMIT, EXPECTED_FAILING), (UNPRIV, UNPRIV_LIMIT, UNPRIV_FAILING)])
def test_exposure_is_at_most_the_limit(unit, limit, expected):
    cp = analyze("security", "--offline=true", "--no-pager", unit)
    out = cp.stdout + cp.stderr
    m = re.search(r"Overall exposure level for %s: (\d+\.\d+)"
                  % re.escape(os.path.basename(unit)), out)
    assert m, out
    assert float(m.group(1)) <= limit, out
    failing = {l.split()[1] for l in out.splitlines() if l.startswith("\u2717")}
    assert failing == expected, \
        "new failing checks: %s; no longer failing: %s\n%s" % (
            sorted(failing - expected), sorted(expected - failing), out)


@pytest.mark.parametrize("path", [UNIT, UNPRIV])
def test_the_unit_verifies(tmp_path, path):
    # verify checks that ExecStart's binary exists: a copy of the unit
    # runs the one just built instead of /usr/sbin/portier.
    with open(path) as f:
        text = f.read()
    assert text.count("/usr/sbin/portier") == 3, text
    unit = tmp_path / "portier.service"
    unit.write_text(text.replace("/usr/sbin/portier", os.path.abspath(harness.PORTIER_BIN)))
    cp = analyze("verify", "--man=no", str(unit))
    assert cp.returncode == 0 and cp.stdout + cp.stderr == "", cp.stdout + cp.stderr


def test_the_unit_says_what_portier_does():
    with open(UNIT) as f:
        keys = {}
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                keys.setdefault(k, []).append(v)
    assert keys["Type"] == ["notify"]
    assert keys["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    assert keys["ExecStart"] == ["/usr/sbin/portier -f -c /etc/portier/portier.ini"]
    caps = set(keys["CapabilityBoundingSet"][0].split())
    assert {"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"} <= caps, caps
    assert keys["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]


def test_sysusers_and_tmpfiles_make_the_account_and_directories(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    # The host's groups, so that the tmpfiles entry's 'adm' resolves.
    for name in ("passwd", "group"):
        shutil.copy("/etc/" + name, str(root / "etc" / name))
    with open(SYSUSERS) as f:
        cp = subprocess.run(["systemd-sysusers", "--root=" + str(root), "-"], stdin=f,
                            capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    passwd = (root / "etc" / "passwd").read_text()
    m = re.search(r"^portier:x:(\d+):(\d+):[^:]*:/nonexistent:/usr/sbin/nologin$", passwd, re.M)
    assert m and int(m.group(1)) != 0, passwd
    assert re.search(r"^portier:x:%s:" % m.group(2), (root / "etc" / "group").read_text(), re.M)
    with open(TMPFILES) as f:
        cp = subprocess.run(["systemd-tmpfiles", "--root=" + str(root), "--create", "-"],
                            stdin=f, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    run = os.stat(str(root / "run" / "portier"))
    log = os.stat(str(root / "var" / "log" / "portier"))
    assert (run.st_uid, run.st_mode & 0o7777) == (0, 0o755)
    assert (log.st_uid, log.st_mode & 0o7777) == (0, 0o750)


def syscall_groups():
    """{"@group": [members, which may be "@other" groups]} from systemd-analyze."""
    cp = analyze("syscall-filter", "--no-pager")
    groups, cur = {}, None
    for raw in cp.stdout.splitlines():
        line = raw.strip()
        if raw.startswith("@"):                 # a group's name, not indented
            cur = line.split()[0]
            groups[cur] = []
        elif cur and line and not line.startswith("#"):
            groups[cur].append(line)
    return groups


def expand(names, groups):
    out = set()
    for n in names:
        out |= expand(groups[n], groups) if n.startswith("@") else {n}
    return out


def unit_syscalls(unit):
    """What the unit's SystemCallFilter= lines allow, in their order."""
    groups = syscall_groups()
    allowed = set()
    with open(unit) as f:
        for line in f:
            if not line.startswith("SystemCallFilter="):
                continue
            v = line.split("=", 1)[1].split()
            if v[0].startswith("~"):
                allowed -= expand([v[0][1:]] + v[1:], groups)
            else:
                allowed |= expand(v, groups)
    return allowed


@pytest.mark.parametrize("unit", [UNIT, UNPRIV])
def test_portier_uses_no_system_call_the_unit_refuses(workdir, certs, http_backend, unit):
    """Under portier.service the master switches its workers to `user`;
    under portier-unprivileged.service nothing switches (no `user`)."""
    if harness.sanitized_build():
        pytest.skip("the sanitizers make system calls of their own; the plain build is checked")
    if shutil.which("strace") is None:
        pytest.fail("strace is missing (Debian package strace; scripts/test installs it)")
    allowed = unit_syscalls(unit)
    switch = unit == UNIT
    assert ("setresuid" in allowed) == switch and "sendmsg" in allowed
    assert "chroot" not in allowed
    d = str(workdir)
    log = os.path.join(d, "portier.log")
    pid_file = os.path.join(d, "portier.pid")
    ports_file = os.path.join(d, "portier.ports")
    ini = os.path.join(d, "portier.ini")
    sections = [("tls", tls_items(certs.ec)), listener("web", http_backend.port, protocol="http")]

    def write(workers):
        with open(ini, "w") as f:
            f.write(harness.ini_text([("portier", [
                ("log", log), ("pid_file", pid_file), ("ports_file", ports_file),
                ("workers", workers)] + ([("user", "nobody")] if switch else []))] + sections))
    write("2")
    trace = os.path.join(d, "trace")
    manager = Manager()
    try:
        check = harness.run(["strace", "-f", "-qq", "-o", trace + ".check",
                             harness.PORTIER_BIN, "-t", "-c", ini], timeout=60)
        assert check.returncode == 0, check.err
        # Detached (strace follows), so that the log is a file to reopen.
        st = harness.Proc(["strace", "-f", "-qq", "-o", trace, harness.PORTIER_BIN,
                           "-c", ini], os.path.join(d, "strace.out"), "strace portier",
                          env=manager.env())
        try:
            # Start (notify READY=1), traffic, a log rotation, a reload to one
            # worker, traffic again, and a stop.
            assert [k for k, _ in manager.next(timeout=30)] == ["READY", "STATUS"]
            master = int(open(pid_file).read())
            port = int(open(ports_file).read().split()[1].rsplit(":", 1)[1])
            ctx = certs.client_context()
            for _ in range(3):
                assert harness.https_get(port, ctx, "/who")[0].startswith(b"HTTP/1.1 200")
            os.kill(master, signal.SIGUSR1)
            harness.wait_for(lambda: open(log).read().count("log reopened") >= 3, 20,
                             "the master and both workers to reopen the log")
            write("1")
            os.kill(master, signal.SIGHUP)
            assert [k for k, _ in manager.next(timeout=30)][0] == "RELOADING"
            assert [k for k, _ in manager.next(timeout=30)][0] == "READY"
            assert harness.https_get(port, ctx, "/who")[0].startswith(b"HTTP/1.1 200")
            os.kill(master, signal.SIGTERM)
            st.p.wait(timeout=60)
        finally:
            st.stop()
    finally:
        manager.close()
    used = set()
    for path in (trace, trace + ".check"):
        with open(path) as f:
            for line in f:
                m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
                if m:
                    used.add(m.group(1))
    assert {"sendmsg", "recvmsg", "signalfd4"} <= used, sorted(used)
    assert ("setresuid" in used) == switch, sorted(used)
    refused = sorted(used - allowed)
    assert refused == [], "portier calls what the unit's SystemCallFilter refuses: %s" % refused
