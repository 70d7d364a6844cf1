"""The deployment of docs/scaling.md, whole, on loopback: HAProxy from
Debian in TCP mode (send-proxy-v2, two servers, health checks) in front of
two portier nodes that share one ticket key file, take the PROXY header
(accept_proxy) and pass it on (send_proxy = v2) to nginx (HTTP) and dovecot
(IMAP). The client comes from 127.0.0.2, HAProxy and the nodes talk from
127.0.0.1: every address a backend logs is told apart."""

import os
import re
import shutil
import signal
import socket
import ssl
import threading

import pytest

import harness
from harness import listener, s_client, tls_items
from test_send_proxy import dovecot_haproxy, dovecot_login_line, imap_session, nginx  # noqa: F401
from test_ticket_keys import new_key, write_keys

CLIENT = "127.0.0.2"

HAPROXY_CONF = """\
global
    log stderr format raw local0 info
    maxconn 200

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1

frontend https
    bind 127.0.0.1:{https}
    default_backend https_nodes

frontend imaps
    bind 127.0.0.1:{imaps}
    default_backend imaps_nodes

backend https_nodes
    balance roundrobin
    server n1 127.0.0.1:{n1_https} send-proxy-v2 check check-send-proxy inter 300ms fall 2 rise 2
    server n2 127.0.0.1:{n2_https} send-proxy-v2 check check-send-proxy inter 300ms fall 2 rise 2

backend imaps_nodes
    balance roundrobin
    server n1 127.0.0.1:{n1_imaps} send-proxy-v2 check check-send-proxy inter 300ms fall 2 rise 2
    server n2 127.0.0.1:{n2_imaps} send-proxy-v2 check check-send-proxy inter 300ms fall 2 rise 2
"""


def portier_node(portier, certs, name, keyfile, http_port, imap_port):
    lb = [("accept_proxy", "yes"), ("accept_proxy_from", "127.0.0.1"), ("send_proxy", "v2")]
    return portier([("tls", tls_items(certs.ec) + [("ticket_keys", keyfile)]),
                    listener("https", http_port, protocol="http", extra=lb),
                    listener("imaps", imap_port, protocol="imap", extra=lb)], name=name)


@pytest.fixture
def haproxy(workdir):
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (scripts/test installs it)")
    started = []

    def start(n1, n2):
        conf = os.path.join(str(workdir), "haproxy.cfg")
        ports = {}

        def cmd(port):
            ports["https"], ports["imaps"] = port, harness.free_port()
            with open(conf, "w") as f:
                f.write(HAPROXY_CONF.format(
                    https=ports["https"], imaps=ports["imaps"],
                    n1_https=n1.port("https"), n2_https=n2.port("https"),
                    n1_imaps=n1.port("imaps"), n2_imaps=n2.port("imaps")))
            return ["haproxy", "-db", "-f", conf]
        proc, _ = harness.start_listening(cmd, "haproxy", str(workdir))
        started.append(proc)
        harness.wait_for(lambda: harness.port_open(ports["imaps"]), 10, "haproxy's imaps port")
        proc.ports = ports
        return proc
    yield start
    for p in started:
        p.stop()


def curl_via(certs, port, path):
    """One HTTPS request from CLIENT through HAProxy; (client port, body)."""
    cp = harness.curl(certs, port, path, args=["--interface", CLIENT, "-w",
                                                "\nlocal=%{local_ip}:%{local_port}"])
    assert cp.returncode == 0, cp.err
    m = re.fullmatch(r"(.*)\nlocal=127\.0\.0\.2:(\d+)", cp.out, re.S)
    assert m, cp.out
    return int(m.group(2)), m.group(1)


def close_lines(p, mark):
    return [l for l in harness.close_lines(p.log()[mark:]) if "[https]" in l]


def test_two_nodes_behind_haproxy(portier, certs, nginx, dovecot_haproxy, haproxy, workdir):  # noqa: F811
    keyfile = os.path.join(str(workdir), "ticket.keys")
    write_keys(keyfile, [new_key(), new_key()])
    n1 = portier_node(portier, certs, "n1", keyfile, nginx.port, dovecot_haproxy.imap_port)
    n2 = portier_node(portier, certs, "n2", keyfile, nginx.port, dovecot_haproxy.imap_port)
    lb = haproxy(n1, n2)
    https, imaps = lb.ports["https"], lb.ports["imaps"]

    # nginx sees the client (127.0.0.2 and its port), and the address it
    # dialled (HAProxy's frontend), through both hops of PROXY v2; each
    # node logs the client too.
    for i in range(2):
        cport, body = curl_via(certs, https, "/who-%d" % i)
        assert body == "pp=%s:%d srv=127.0.0.1:%d\n" % (CLIENT, cport, https), body
        line = harness.wait_for(
            lambda: [l for l in open(nginx.access_log).read().splitlines()
                     if '"GET /who-%d ' % i in l], 10, "nginx's access log line")[0]
        assert line.startswith("pp=%s:%d srv=127.0.0.1:%d peer=127.0.0.1 " % (
            CLIENT, cport, https)), line
        harness.wait_for(lambda: any("close client=%s:%d " % (CLIENT, cport) in l
                                     for l in harness.close_lines(n1.log() + n2.log())),
                         10, "a node's close line for the client")

    # dovecot too, over IMAPS through HAProxy.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10 * harness.SLOW)
    s.bind((CLIENT, 0))
    s.connect(("127.0.0.1", imaps))
    from starttls_support import Client
    c = Client.__new__(Client)
    c.sock, c.buf, c.eof = s, b"", False
    try:
        me = s.getsockname()
        c.tls(certs, server_hostname="localhost")
        assert c.line().startswith(b"* OK")
        imap_session(c, dovecot_haproxy)
    finally:
        c.close()
    kv = dovecot_login_line(dovecot_haproxy, me[1])
    assert (kv["rip"], int(kv["rport"])) == (CLIENT, me[1]), kv
    assert (kv["lip"], int(kv["lport"])) == ("127.0.0.1", imaps), kv

    # A session from one node resumes on the other (round robin sends
    # the two connections to different nodes), TLS 1.2 and 1.3.
    for version, flag in (("1.2", "-tls1_2"), ("1.3", "-tls1_3")):
        marks = (n1.mark(), n2.mark())
        sess = os.path.join(str(workdir), "sess-%s.pem" % version)
        req = b"GET /resume HTTP/1.0\r\nHost: localhost\r\n\r\n"
        first = s_client(https, [flag, "-ign_eof", "-sess_out", sess], stdin=req, ca=certs.ca)
        assert "pp=" in first.out and "\nNew, TLSv%s," % version in first.out, first.out
        again = s_client(https, [flag, "-ign_eof", "-sess_in", sess], stdin=req, ca=certs.ca)
        assert "pp=" in again.out, again.out
        assert "\nReused, TLSv%s," % version in again.out, again.out
        harness.wait_for(lambda: len(close_lines(n1, marks[0]) + close_lines(n2, marks[1])) == 2,
                         10, "both close lines")
        by_node = [close_lines(n1, marks[0]), close_lines(n2, marks[1])]
        assert sorted(len(l) for l in by_node) == [1, 1], by_node   # one on each node
        assert sorted(harness.parse_kv(l[0])["resumed"] for l in by_node) == ["no", "yes"]

    # One node drains (SIGQUIT) while a bounded client loop runs and
    # requests are in flight on it: it closes its listening sockets, so
    # HAProxy's connects to it are refused and redispatched to the other
    # node (then its check takes it out); the requests it holds are
    # answered whole; then it exits 0. No request fails.
    held = [held_request(certs, https, "/held-%d" % i) for i in range(4)]
    got = []
    loop = threading.Thread(target=client_loop, args=(certs, https, got), daemon=True)
    mark = n1.mark()
    loop.start()
    try:
        harness.wait_for(lambda: len(got) >= 2, 20 * harness.SLOW, "the loop's first requests")
        os.kill(n1.proc.pid, signal.SIGQUIT)
        m = n1.wait_log(r"SIGQUIT: no longer accepting; draining (\d+) connection", since=mark)
        assert int(m.group(1)) >= 1, "round robin put none of the held requests on n1"
        loop.join(60 * harness.SLOW)
        assert not loop.is_alive(), "the client loop did not end"
        assert got == [True] * 12, got
        for c, path in held:
            body = finish_held(c)
            assert body.endswith(b"\r\n\r\npp=%s:%d srv=127.0.0.1:%d\n" % (
                CLIENT.encode(), c.getsockname()[1], https)), (path, body)
    finally:
        for c, _ in held:
            c.close()
    n1.proc.p.wait(timeout=10 * harness.SLOW)
    n1.wait_log(r"drained: the last worker has finished; exiting with status 0", since=mark)
    n1.stop()                      # exit 0, no sanitizer report
    harness.wait_for(lambda: re.search(r"Server https_nodes/n1 is DOWN", lb.log()), 10,
                     "HAProxy to take n1 out")
    assert re.search(r"Server https_nodes/n2 is DOWN", lb.log()) is None, lb.log()


def held_request(certs, port, path):
    """A TLS connection from CLIENT through HAProxy with a request sent but
    for its last CRLF: in flight on whichever node HAProxy chose."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(20 * harness.SLOW)
    s.bind((CLIENT, 0))
    s.connect(("127.0.0.1", port))
    c = certs.client_context().wrap_socket(s, server_hostname="localhost")
    c.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % path).encode())
    return c, path


def finish_held(c):
    c.sendall(b"\r\n")
    data = b""
    for _ in range(1000):
        try:
            chunk = c.recv(65536)
        except ssl.SSLEOFError:
            break
        if not chunk:
            break
        data += chunk
    return data


def client_loop(certs, port, got):
    """Twelve requests one after another through HAProxy; each appends
    True if it got its own answer, else what it got."""
    for i in range(12):
        cp = harness.curl(certs, port, "/loop-%d" % i, args=[
            "--interface", CLIENT, "-w", "\nlocal=%{local_ip}:%{local_port}"])
        m = re.fullmatch(r"pp=127\.0\.0\.2:(\d+) srv=127\.0\.0\.1:%d\n\n"
                         r"local=127\.0\.0\.2:(\d+)" % port, cp.out)
        ok = cp.returncode == 0 and m is not None and m.group(1) == m.group(2)
        got.append(True if ok else (cp.returncode, cp.out, cp.err))


def test_loadgen_resumes_every_session_on_the_other_node(portier, certs, http_backend,
                                                          haproxy, workdir, closed_port):
    """The bench's load tool in its resume mode through HAProxy's round
    robin: each new connection offers the newest ticket, issued by the
    other node, and every handshake after the first resumes."""
    keyfile = os.path.join(str(workdir), "ticket.keys")
    write_keys(keyfile, [new_key()])
    lb_in = [("accept_proxy", "yes"), ("accept_proxy_from", "127.0.0.1")]
    nodes = [portier([("tls", tls_items(certs.ec) + [("ticket_keys", keyfile)]),
                      listener("https", http_backend.port, protocol="http", extra=lb_in),
                      listener("imaps", closed_port, protocol="imap", extra=lb_in)], name=n)
             for n in ("n1", "n2")]
    lb = haproxy(*nodes)
    loadgen = os.path.join(harness.PORTIER_BUILD, "bench", "loadgen")
    assert os.access(loadgen, os.X_OK), "no bench/loadgen in " + harness.PORTIER_BUILD
    marks = [n.mark() for n in nodes]
    cp = harness.run([loadgen, "-m", "resume", "-a", "127.0.0.1:%d" % lb.ports["https"],
                      "-c", "1", "-n", "40", "-d", "60", "-p", "/who", "-s", "localhost"],
                     timeout=90)
    assert cp.returncode == 0, cp.out + cp.err
    res = dict(kv.split("=", 1) for kv in cp.out.split() if "=" in kv)
    # conns counts the handshakes after loadgen's first, full one.
    assert int(res["errors"]) == 0 and int(res["conns"]) >= 40, cp.out
    assert int(res["reused"]) == int(res["conns"]), cp.out
    # Both nodes resumed sessions, so each opened the other's tickets.
    for n, mark in zip(nodes, marks):
        harness.wait_for(lambda: len(re.findall(r"\[https\] close client=127\.0\.0\.1:\d+ .* "
                                                r"resumed=yes ", n.log()[mark:])) >= 15,
                         10 * harness.SLOW, "resumed sessions on " + n.proc.name)
