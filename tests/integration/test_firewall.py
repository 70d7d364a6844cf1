"""`portier firewall` (issue 19) applied for real: two network namespaces the
test creates (a server and a client, joined by a veth pair with private
addresses; nothing in the machine's own namespace changes), a server whose
input policy drops by default, portier listening there on its veth address.
The nft output, piped to `nft -f -` in the server's namespace, opens the port
the config lists (v4 and v6) and no other: `portier probe` from the client's
namespace sees implicit TLS on the one and `filtered (timeout)` on a port
where something listens but the config does not. The same for the iptables
output under an iptables policy of DROP, and for the ufw output under ufw's
own default deny (ufw's files are a copy, bind-mounted over /etc/ufw in a
mount namespace of the test's). Each namespace is deleted by name in a
finally."""

import json
import os
import shutil
import subprocess

import pytest

import harness
from harness import tls_items

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nft", "iptables")),
    reason="needs root, ip (iproute2), nft (nftables) and iptables: scripts/test installs them")

V4 = "10.213.0.1"
V4_CLIENT = "10.213.0.2"
V6 = "fd42:213::1"
V6_CLIENT = "fd42:213::2"
LISTED = 993        # the config's port
UNLISTED = 2525     # something listens, the config does not say so
LOOPBACK = 1143     # the config's, on 127.0.0.1: no rule

HOST_NFT = """
table inet host {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iif lo accept
        meta l4proto ipv6-icmp accept
        %s
    }
}
"""
# ICMPv6 (neighbour discovery) passes, as in any ruleset of a v6 host.
# The one rule a host ruleset needs for what portier's table accepted.
MARK_RULE = "meta mark & 0x00100000 == 0x00100000 accept"


def sh(cmd, input=None, check=True, env=None):
    cp = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=30,
                        env=env)
    if check and cp.returncode != 0:
        raise AssertionError("%s exited %d\n%s%s" % (" ".join(cmd), cp.returncode,
                                                     cp.stdout, cp.stderr))
    return cp


def in_ns(ns, *cmd, **kw):
    return sh(["ip", "netns", "exec", ns] + [str(c) for c in cmd], **kw)


@pytest.fixture
def namespaces():
    """(server ns, client ns) joined by a veth pair; deleted by name after."""
    tag = "%d" % (os.getpid() % 100000)
    srv, cli = "pfw-srv-" + tag, "pfw-cli-" + tag
    try:
        sh(["ip", "netns", "add", srv])
        sh(["ip", "netns", "add", cli])
        sh(["ip", "link", "add", "pfws" + tag, "netns", srv, "type", "veth",
            "peer", "name", "pfwc" + tag, "netns", cli])
        for ns, dev, a4, a6 in ((srv, "pfws" + tag, V4, V6), (cli, "pfwc" + tag, V4_CLIENT,
                                                               V6_CLIENT)):
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            sh(["ip", "-n", ns, "addr", "add", a4 + "/24", "dev", dev])
            sh(["ip", "-n", ns, "-6", "addr", "add", a6 + "/64", "dev", dev, "nodad"])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
        yield srv, cli
    finally:
        for ns in (srv, cli):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


@pytest.fixture
def served(namespaces, tmp_path, certs):
    """portier in the server's namespace (LISTED on its v4 and v6 veth
    addresses, LOOPBACK on 127.0.0.1) and a plain listener on UNLISTED; both
    stopped by PID. Yields (srv, cli, config path)."""
    srv, cli = namespaces
    ports_file = str(tmp_path / "portier.ports")
    ini = str(tmp_path / "portier.ini")
    with open(ini, "w") as f:
        f.write(harness.ini_text([
            ("portier", [("log", "stderr"), ("ports_file", ports_file)]),
            ("tls", tls_items(certs.ec)),
            ("imaps", [("listen", "%s:%d" % (V4, LISTED)), ("listen", "[%s]:%d" % (V6, LISTED)),
                       ("protocol", "imap"), ("backend", "127.0.0.1:9")]),
            ("local", [("listen", "127.0.0.1:%d" % LOOPBACK), ("protocol", "imap"),
                       ("backend", "127.0.0.1:9")]),
        ]))
    p = harness.Proc(["ip", "netns", "exec", srv, harness.PORTIER_BIN, "-f", "-c", ini],
                     tmp_path / "portier.log", "portier")
    other = harness.Proc(["ip", "netns", "exec", srv, "/usr/bin/python3", "-c",
                          "import socket, sys, time\n"
                          "s = socket.socket(); s.bind(('%s', %d)); s.listen(8)\n"
                          "open(sys.argv[1], 'w').close(); time.sleep(120)\n" % (V4, UNLISTED),
                          str(tmp_path / "other.ready")],
                         tmp_path / "other.log", "other")
    try:
        harness.wait_for(lambda: os.path.exists(ports_file) or not p.alive(), 10,
                         "portier to write its ports_file")
        assert p.alive(), p.log()
        harness.wait_for(lambda: os.path.exists(str(tmp_path / "other.ready")), 10,
                         "the unlisted listener")
        yield srv, cli, ini
    finally:
        other.stop()
        rc, _ = p.stop()
        assert rc == 0, p.log()


def probe_in_ns(cli, *args):
    """portier probe ARGS in the client's namespace, with the sanitizer
    options every run of portier in the suite has, failing on a report."""
    cp = in_ns(cli, harness.PORTIER_BIN, "probe", *args, check=False,
               env=dict(os.environ, **harness.portier_env()))
    harness.check_sanitizer(cp.returncode, cp.stderr, "portier probe")
    return cp


def probe(cli, host, port, *args):
    """portier probe from the client's namespace: (exit code, output)."""
    target = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    cp = probe_in_ns(cli, target, "--timeout", "1500ms", *args)
    return cp.returncode, cp.stdout + cp.stderr


def answers(cli, certs, host, port):
    rc, out = probe(cli, host, port, "--sni", "mail.example.org", "--cafile", certs.ca)
    assert "model        implicit-tls" in out and rc == 0, out
    return out


def filtered(cli, host, port):
    rc, out = probe(cli, host, port)
    assert rc == 2 and "model        filtered (timeout)" in out, out
    # The likely cause, and the command that opens a config's ports.
    assert ("  - port %d did not answer the connection: most likely a firewall drops it"
            % port) in out, out
    assert "`portier firewall -c /etc/portier/portier.ini` prints the commands" in out, out
    return out


def firewall(ini, fmt):
    cp = harness.run([harness.PORTIER_BIN, "firewall", "-c", ini, "--format", fmt])
    assert cp.returncode == 0 and cp.err == "", cp.out + cp.err
    return cp.out


def test_nft_opens_the_listed_port_and_no_other(served, certs):
    srv, cli, ini = served
    rules = firewall(ini, "nft")
    assert "# [local] listen = 127.0.0.1:%d: loopback, no rule needed" % LOOPBACK in rules
    assert "%d" % UNLISTED not in rules
    # The host drops by default; its own ruleset has not heard of portier.
    in_ns(srv, "nft", "-f", "-", input=HOST_NFT % "")
    filtered(cli, V4, LISTED)
    # Probing the config names the config in the command.
    cp = probe_in_ns(cli, "--config", ini, "--host", V4, "--timeout", "1s", "--json")
    assert cp.returncode == 2, cp.stdout + cp.stderr
    imaps = [o for o in json.loads(cp.stdout)["listeners"] if o["listener"] == "imaps"]
    # Its two listen addresses, both probed on --host.
    assert [o["model"] for o in imaps] == ["filtered", "filtered"], imaps
    for o in imaps:
        assert [f["id"] for f in o["findings"]] == ["filtered"], o
        assert "`portier firewall -c %s`" % ini in o["findings"][0]["message"], o
    # portier's table alone: an accept in one table does not override the
    # host table's drop (what the output's comment says).
    in_ns(srv, "nft", "-f", "-", input=rules)
    filtered(cli, V4, LISTED)
    # With the host's one rule for portier's mark, and the table applied a
    # second time (it replaces itself: the same two rules, not four).
    in_ns(srv, "nft", "-f", "-", input="flush ruleset\n" + HOST_NFT % MARK_RULE)
    in_ns(srv, "nft", "-f", "-", input=rules)
    in_ns(srv, "nft", "-f", "-", input=rules)
    table = in_ns(srv, "nft", "list", "table", "inet", "portier").stdout
    assert table.count("tcp dport %d" % LISTED) == 2, table
    answers(cli, certs, V4, LISTED)
    answers(cli, certs, V6, LISTED)
    # Something listens on UNLISTED (from inside, over lo, it answers) ...
    in_ns(srv, "/usr/bin/python3", "-c", "import socket; socket.create_connection(('%s', %d), "
          "timeout=5).close()" % (V4, UNLISTED))
    # ... and from outside the firewall drops it.
    filtered(cli, V4, UNLISTED)


def test_iptables_opens_the_listed_port_and_no_other(served, certs):
    srv, cli, ini = served
    rules = firewall(ini, "iptables")
    for cmd in ("iptables", "ip6tables"):
        in_ns(srv, cmd, "-P", "INPUT", "DROP")
        in_ns(srv, cmd, "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
              "-j", "ACCEPT")
        in_ns(srv, cmd, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    # IPv6 finds its neighbours with ICMPv6: a v6 host's ruleset lets it in.
    in_ns(srv, "ip6tables", "-A", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT")
    filtered(cli, V4, LISTED)
    in_ns(srv, "sh", "-e", "-c", rules)
    in_ns(srv, "sh", "-e", "-c", rules)     # again: nothing added
    v4 = in_ns(srv, "iptables", "-S", "INPUT").stdout
    v6 = in_ns(srv, "ip6tables", "-S", "INPUT").stdout
    assert v4.count("--dport %d" % LISTED) == 1 and v6.count("--dport %d" % LISTED) == 1, v4 + v6
    answers(cli, certs, V4, LISTED)
    answers(cli, certs, V6, LISTED)
    filtered(cli, V4, UNLISTED)


@pytest.mark.skipif(not shutil.which("ufw"), reason="needs ufw: scripts/test installs it")
def test_ufw_opens_the_listed_port_and_no_other(served, certs, tmp_path):
    srv, cli, ini = served
    rules = firewall(ini, "ufw")
    etc = str(tmp_path / "ufw")
    shutil.copytree("/etc/ufw", etc, symlinks=True)

    def ufw(script):
        # ufw writes its rules under /etc/ufw: the copy, in this mount
        # namespace only; the rules themselves go to the server's netns.
        return sh(["unshare", "--mount", "sh", "-c",
                   'mount --bind "$0" /etc/ufw && exec ip netns exec "$1" sh -e -c "$2"',
                   etc, srv, script])

    ufw("ufw --force enable")     # default: deny incoming
    filtered(cli, V4, LISTED)
    ufw(rules)
    out = ufw(rules).stdout       # again: ufw skips what it has
    assert "Skipping adding existing rule" in out and "Rule added" not in out, out
    status = ufw("ufw status").stdout
    assert "%s %d/tcp" % (V4, LISTED) in status and "%s %d/tcp" % (V6, LISTED) in status, \
        status
    answers(cli, certs, V4, LISTED)
    answers(cli, certs, V6, LISTED)
    filtered(cli, V4, UNLISTED)
