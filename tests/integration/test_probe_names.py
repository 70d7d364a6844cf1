"""`portier probe HOST:PORT` with a name (issue 19): every address the name
resolves to is tried in turn and the report says what became of each; the
resolution has a deadline of its own. The names come from an /etc/hosts or
an /etc/resolv.conf of the test's, bind-mounted in a mount namespace of the
probe's own (`unshare --mount`): the machine's files are never touched. The
dead resolver listens on 127.0.0.1:53 of a network namespace of its own
(`unshare --net`), and never answers."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import harness

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root and unshare (util-linux) for a mount namespace of its own")

NAME = "multi.portier.test"


def in_private_files(workdir, files, cmd, net=False, timeout=60):
    """Run cmd with files ({"/etc/hosts": text, ...}) bind-mounted over the
    machine's in a new mount namespace (and a new network namespace with
    loopback up and a silent UDP 127.0.0.1:53 when net). Returns (rc,
    stdout, stderr, seconds cmd took)."""
    binds = []
    for i, (target, text) in enumerate(sorted(files.items())):
        src = os.path.join(str(workdir), "bind%d" % i)
        with open(src, "w") as f:
            f.write(text)
        binds.append((src, target))
    # The runner, inside the namespaces: mounts, the silent resolver (a
    # bound socket nobody reads: queries wait in it), then cmd, timed.
    script = r"""
import json, socket, subprocess, sys, time
binds, cmd, net, timeout = json.loads(sys.argv[1])
if net:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", 53))
for src, target in binds:
    subprocess.run(["mount", "--bind", src, target], check=True)
t = time.monotonic()
cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
took = time.monotonic() - t
print(json.dumps([cp.returncode, cp.stdout, cp.stderr, took]))
"""
    argv = ["unshare", "--mount"] + (["--net"] if net else []) + \
        [sys.executable, "-c", script, json.dumps([binds, [str(c) for c in cmd], net, timeout])]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30,
                        env=dict(os.environ, **harness.portier_env()))
    assert cp.returncode == 0, cp.stdout + cp.stderr
    rc, out, err, took = json.loads(cp.stdout)
    harness.check_sanitizer(rc, out + err, "portier probe")
    return rc, out, err, took


def test_every_address_of_a_name(workdir, http_backend):
    """::1 first (nothing listens there), then 127.0.0.1 (a server), then
    127.0.0.7 (never needed): the report names all three, and the refusal."""
    backend = http_backend
    hosts = ("127.0.0.1 localhost\n::1 %s\n127.0.0.1 %s\n127.0.0.7 %s\n" % (NAME, NAME, NAME))
    target = "%s:%d" % (NAME, backend.port)
    rc, out, err, _ = in_private_files(workdir, {"/etc/hosts": hosts}, [
        harness.PORTIER_BIN, "probe", target, "--protocol", "http", "--timeout", "3s"])
    assert rc == 1, out + err
    assert out.startswith("%s (127.0.0.1)  http (from the option)\n" % target), out
    assert "  addresses    ::1 refused, 127.0.0.1 probed, 127.0.0.7 not tried\n" in out, out
    assert ("  - %s resolves to 3 addresses, and ::1 refuses the connection (127.0.0.1 "
            "answered): clients that try it first fail unless they try the next address "
            "[address-unreachable]" % NAME) in out, out

    rc, out, err, _ = in_private_files(workdir, {"/etc/hosts": hosts}, [
        harness.PORTIER_BIN, "probe", "--json", target, "--protocol", "http", "--timeout", "3s"])
    obj = json.loads(out)
    assert obj["addresses"] == [{"address": "::1", "result": "refused"},
                                {"address": "127.0.0.1", "result": "probed"},
                                {"address": "127.0.0.7", "result": "not tried"}], obj
    assert obj["addresses_total"] == 3 and obj["address"] == "127.0.0.1"
    # ::1 refused, then 127.0.0.1 twice: TLS first (the port promises
    # nothing), then plaintext HTTP.
    assert obj["connections"] == 3, obj
    assert "address-unreachable" in [f["id"] for f in obj["findings"]]


def test_every_address_refused(workdir):
    """No address listens: closed, and each address says refused."""
    port = harness.free_port()
    hosts = "127.0.0.1 localhost\n127.0.0.1 %s\n127.0.0.7 %s\n" % (NAME, NAME)
    rc, out, err, _ = in_private_files(workdir, {"/etc/hosts": hosts}, [
        harness.PORTIER_BIN, "probe", "%s:%d" % (NAME, port), "--timeout", "2s"])
    assert rc == 2, out + err
    assert "  addresses    127.0.0.1 refused, 127.0.0.7 refused\n" in out, out
    assert "  model        closed\n" in out, out


def test_a_dead_resolver_meets_the_deadline(workdir):
    """A resolver that never answers: resolv.conf's own patience would be
    2 x 5 s; the probe gives it half its --timeout (1 s of 2 s)."""
    resolv = "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n"
    hosts = "127.0.0.1 localhost\n"
    rc, out, err, took = in_private_files(workdir, {"/etc/resolv.conf": resolv,
                                                    "/etc/hosts": hosts},
                                          [harness.PORTIER_BIN, "probe",
                                           "slow.portier.test:993", "--timeout", "2s"],
                                          net=True)
    assert rc == 2, out + err
    assert ("  error        slow.portier.test: the resolver did not answer within 1000 ms "
            "(half the --timeout): check /etc/resolv.conf, or probe an address\n") in out, out
    assert took < 4, (took, out)
    # --json says the same.
    rc, out, err, took = in_private_files(workdir, {"/etc/resolv.conf": resolv,
                                                    "/etc/hosts": hosts},
                                          [harness.PORTIER_BIN, "probe", "--json",
                                           "slow.portier.test:993", "--timeout", "2s"],
                                          net=True)
    obj = json.loads(out)
    assert rc == 2 and obj["model"] == "error" and obj["addresses"] == [], obj
    assert "the resolver did not answer within 1000 ms" in obj["error"]
    assert took < 4, took
