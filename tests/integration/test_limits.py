"""Limits and timeouts: handshake, idle, max_connections, running out of
file descriptors. Each test sets a short limit and watches portier keep it."""

import socket
import ssl
import subprocess

import harness
from hostile_support import cpu_finding


def https_listener(certs, backend_port, **extra):
    items = [("listen", "127.0.0.1:0"), ("protocol", "http"),
             ("backend", "127.0.0.1:%d" % backend_port)]
    items += list(extra.items())
    return [("tls", harness.tls_items(certs.ec)), ("web", items)]


def tls_connect(port, certs, timeout=5):
    ctx = certs.client_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def get(conn, path="/hello"):
    conn.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(4096)
        assert chunk, "connection closed inside the body"
        body += chunk
    return head


def test_handshake_timeout_names_the_silent_plaintext_client(portier, certs, http_backend):
    p = portier(https_listener(certs, http_backend.port, handshake_timeout="1s"))
    mark = p.mark()
    s = socket.create_connection(("127.0.0.1", p.port("web")), timeout=5)
    # A plaintext client waiting for a greeting sends nothing; portier must
    # give up on it and say why.
    assert s.recv(1) == b""
    s.close()
    m = p.wait_log(r"\[web\] handshake failed client=127\.0\.0\.1:\d+: TLS handshake timed "
                   r"out after 1s with no ClientHello", since=mark)
    assert m


def test_idle_timeout_closes_a_quiet_relay(portier, certs, http_backend):
    p = portier(https_listener(certs, http_backend.port, idle_timeout="1s"))
    c = tls_connect(p.port("web"), certs)
    assert b"200" in get(c).split(b"\r\n")[0]
    c.settimeout(5)
    # Nothing either way: after a second portier closes with close_notify.
    try:
        assert c.recv(1) == b""
    except (ssl.SSLEOFError, ConnectionResetError):
        pass
    line = p.wait_log(r"\[web\] close .* idle for 1s").group(0)
    assert "up=" in line and "tls=TLSv1.3" in line


def accept_queue(port):
    """Connections the kernel holds for 127.0.0.1:port's listening socket
    that no one has accepted yet (/proc/net/tcp: rx_queue of a LISTEN socket
    is its accept backlog); None if no such socket."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return int(queues.split(":")[1], 16)
    return None


def test_max_connections_pauses_and_resumes_accepting(portier, certs, http_backend):
    p = portier(https_listener(certs, http_backend.port, max_connections="2"))
    port = p.port("web")
    a, b = tls_connect(port, certs), tls_connect(port, certs)
    get(a)
    get(b)
    p.wait_log(r"\[web\] max_connections \(2\) reached; not accepting until one closes")
    assert accept_queue(port) == 0
    # A third client: the kernel completes its TCP handshake, and its
    # ClientHello goes out, but portier does not accept it.
    raw = socket.create_connection(("127.0.0.1", port), timeout=5 * harness.SLOW)
    ctx = certs.client_context()
    third = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
    third.setblocking(False)
    try:
        third.do_handshake()
        raise AssertionError("handshake completed without portier's answer")
    except ssl.SSLWantReadError:
        pass
    harness.wait_for(lambda: accept_queue(port) == 1, 5, "the third connection in the accept queue")
    # A full request on b is an event portier's one worker serves after the
    # third client became acceptable: an accepting listener would have
    # been taken in that same loop. It is still queued, and unanswered.
    assert b"200" in get(b).split(b"\r\n")[0]
    assert accept_queue(port) == 1, "portier accepted beyond max_connections"
    try:
        third.do_handshake()
        raise AssertionError("third connection was served beyond max_connections")
    except ssl.SSLWantReadError:
        pass
    # Paused means the listener's watcher is off, not a loop that sees the
    # waiting client and declines it again and again: the worker idles.
    spin = cpu_finding(p.worker_pid(), "a client waited beyond max_connections")
    assert spin is None, spin
    # When one closes, the waiting client is taken and served.
    a.close()
    third.setblocking(True)
    third.settimeout(5 * harness.SLOW)
    third.do_handshake()
    assert accept_queue(port) == 0
    assert b"200" in get(third).split(b"\r\n")[0]
    third.close()
    b.close()


def test_out_of_fds_pauses_accepting_and_keeps_serving(portier, certs, http_backend):
    p = portier(https_listener(certs, http_backend.port))
    port = p.port("web")
    first = tls_connect(port, certs)
    get(first)
    # Leave portier few descriptors: each client costs two (client + backend).
    # The worker accepts; the master only starts it.
    worker = p.worker_pid()
    subprocess.run(["prlimit", "--pid", str(worker), "--nofile=12:"], check=True)
    extra = []
    try:
        for _ in range(12):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            extra.append(s)
        m = p.wait_log(r"cannot accept, pausing all listeners for 1s: Too many open files")
        assert m
        # Paused, with clients still in the queue: no loop retrying accept.
        spin = cpu_finding(worker, "descriptors ran out with clients queued")
        assert spin is None, spin
        # The connection made before is still relayed.
        assert b"200" in get(first).split(b"\r\n")[0]
    finally:
        for s in extra:
            s.close()
    subprocess.run(["prlimit", "--pid", str(worker), "--nofile=1024:"], check=True)
    # Accepting resumes on its own; a new client is served.
    harness.wait_for(lambda: _served(port, certs), 10, "portier to accept again")
    assert p.log().count("cannot accept, pausing") <= 3   # once per 1 s episode
    first.close()


def _served(port, certs):
    try:
        c = tls_connect(port, certs, timeout=2)
        ok = b"200" in get(c).split(b"\r\n")[0]
        c.close()
        return ok
    except (OSError, ssl.SSLError, AssertionError):
        return False
