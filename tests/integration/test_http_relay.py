"""TLS termination in front of a plaintext HTTP backend, and the raw relay's
half-close in both directions (mode = tls)."""

import hashlib
import os
import re
import socket

import harness
from harness import curl, listener, tls_items


def start_web(portier, certs, backend_port, listen="127.0.0.1:0"):
    return portier([("tls", tls_items(certs.ec)),
                    listener("web", backend_port, protocol="http", listen=listen)])


def close_line_with(p, key, minimum, timeout=5):
    """Poll for a close line whose integer field key >= minimum; returns its fields."""
    def find():
        for line in harness.close_lines(p.log()):
            kv = harness.parse_kv(line)
            if re.fullmatch(r"\d+", kv.get(key, "")) and int(kv[key]) >= minimum:
                return kv
        return None
    try:
        return harness.wait_for(find, timeout, "close line with %s>=%d" % (key, minimum))
    except AssertionError:
        raise AssertionError("no close line with %s>=%d; log:\n%s" % (key, minimum, p.log()))


def test_download_1mib_byte_exact(portier, certs, http_backend, workdir):
    p = start_web(portier, certs, http_backend.port)
    out = str(workdir / "big.out")
    cp = curl(certs, p.port("web"), "/big", args=["-o", out, "-w", "%{http_code}"])
    assert cp.returncode == 0, cp.err
    assert cp.out == "200"
    with open(out, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == http_backend.big_sha256
    kv = close_line_with(p, "down", 1 << 20)
    assert kv.get("client", "").startswith("127.0.0.1"), kv
    assert kv.get("sni") == "localhost", kv
    assert re.search(r"1\.[23]", kv.get("tls", "")), kv
    assert kv.get("cipher"), kv
    assert "resumed" in kv, kv
    assert 0 < int(kv["up"]) < (1 << 20), kv


def test_upload_1mib_byte_exact(portier, certs, http_backend, workdir):
    p = start_web(portier, certs, http_backend.port)
    body = os.urandom(1 << 20)
    src = workdir / "up.bin"
    src.write_bytes(body)
    cp = curl(certs, p.port("web"), "/sha256",
              args=["--data-binary", "@%s" % src, "-H", "Content-Type: application/octet-stream",
                    "-H", "Expect:"])
    assert cp.returncode == 0, cp.err
    assert cp.out == hashlib.sha256(body).hexdigest()
    kv = close_line_with(p, "up", 1 << 20)
    assert int(kv["down"]) < 4096, kv


def test_upload_chunked_1mib_byte_exact(portier, certs, http_backend, workdir):
    p = start_web(portier, certs, http_backend.port)
    body = os.urandom(1 << 20)
    src = workdir / "up.bin"
    src.write_bytes(body)
    cp = curl(certs, p.port("web"), "/sha256",
              args=["-T", str(src), "-H", "Transfer-Encoding: chunked", "-H", "Expect:"])
    assert cp.returncode == 0, cp.err
    assert cp.out == hashlib.sha256(body).hexdigest()


def test_several_requests_on_one_connection(portier, certs, http_backend, workdir):
    p = start_web(portier, certs, http_backend.port)
    sizes = [1, 1000, 16384, 16385, 100000, 300000]
    urls = ["https://localhost:%d/size/%d" % (p.port("web"), n) for n in sizes]
    out = str(workdir / "many.out")
    args = []
    for i, u in enumerate(urls):
        args += [u, "-o", out + str(i)]
    cp = harness.run(["curl", "-sS", "--max-time", "30", "--cacert", certs.ca, "--resolve",
                      "localhost:%d:127.0.0.1" % p.port("web"), "-w", "%{num_connects}\n"] + args,
                     timeout=40)
    assert cp.returncode == 0, cp.err
    # curl reuses the connection: one connect for the first URL, none after.
    assert cp.out.split() == ["1"] + ["0"] * (len(urls) - 1), cp.out
    got = [open(out + str(i), "rb").read() for i in range(len(urls))]
    assert got == [http_backend.big[:n] for n in sizes]
    harness.wait_for(lambda: len(harness.close_lines(p.log())) >= 1, 5, "close line")
    assert len(harness.close_lines(p.log())) == 1, p.log()


def test_ipv4_and_ipv6_listeners_in_one_section(portier, certs, http_backend):
    p = start_web(portier, certs, http_backend.port, listen=["127.0.0.1:0", "[::1]:0"])
    addrs = sorted(h for h, _ in p.ports["web"])
    assert addrs == ["127.0.0.1", "::1"], p.ports
    for host, port in p.ports["web"]:
        cp = curl(certs, port, "/echo/v?x=1", addr=host)
        assert cp.returncode == 0, cp.err
        assert "method=GET path=/echo/v?x=1 host=localhost:%d" % port in cp.out


def test_client_close_notify_still_gets_response(portier, certs, raw_backend):
    """Client sends 1 MiB then its close_notify; portier must pass that on as
    shutdown(SHUT_WR) to the backend and still relay the backend's answer."""
    def handler(c):
        got = harness.read_to_eof(c)           # needs the backend-side EOF
        c.sendall(hashlib.sha256(got).hexdigest().encode())
        return got
    b = raw_backend(handler)
    p = portier([("tls", tls_items(certs.ec)), listener("raw", b.port)])
    payload = os.urandom(1 << 20)
    cli = harness.TLSClient(p.port("raw"), certs.client_context(), "localhost")
    try:
        cli.send(payload)
        cli.close_notify()
        answer = cli.recv_all()
        assert answer == hashlib.sha256(payload).hexdigest().encode()
        assert cli.got_close_notify, "backend's close was not passed on as close_notify"
    finally:
        cli.close()
    assert b.wait_result() == payload
    close_line_with(p, "up", 1 << 20)


def test_backend_shut_wr_while_still_reading(portier, certs, raw_backend):
    """Backend sends, shuts down its write side and keeps reading: the client
    gets the data and a close_notify, and what it sends afterwards still arrives."""
    blob = os.urandom(300000)

    def handler(c):
        c.sendall(blob)
        c.shutdown(socket.SHUT_WR)
        return harness.read_to_eof(c)
    b = raw_backend(handler)
    p = portier([("tls", tls_items(certs.ec)), listener("raw", b.port)])
    cli = harness.TLSClient(p.port("raw"), certs.client_context(), "localhost")
    try:
        got = cli.recv_all()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(blob).hexdigest()
        assert cli.got_close_notify, "backend's SHUT_WR did not become a close_notify"
        late = os.urandom(200000)
        cli.send(late)
        cli.close_notify()
        assert b.wait_result() == late
    finally:
        cli.close()
    kv = close_line_with(p, "up", 200000)
    assert int(kv["down"]) >= len(blob), kv


def test_plain_mode_relays_untouched(portier, raw_backend):
    """mode = plain: bytes go through unchanged in both directions."""
    def handler(c):
        got = harness.read_to_eof(c)
        c.sendall(got[::-1])
        return got
    b = raw_backend(handler)
    p = portier([listener("plain", b.port, mode="plain")])
    payload = os.urandom(500000)
    with socket.create_connection(("127.0.0.1", p.port("plain")), timeout=20) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        assert harness.read_to_eof(s) == payload[::-1]
    assert b.wait_result() == payload


def test_client_reset_reaches_the_backend_as_a_reset(portier, certs, raw_backend):
    """A client that aborts (RST) mid-upload must not look to the backend like
    one that finished: the backend sees a reset, not an orderly end of stream
    that would pass a cut-off upload for a complete one."""
    import struct
    import threading
    part = os.urandom(100000)
    arrived = threading.Event()

    def handler(c):
        got = b""
        while len(got) < len(part):
            d = c.recv(65536)
            if not d:
                return ("eof before the data", len(got))
            got += d
        arrived.set()
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return ("eof", got == part)
        except ConnectionResetError:
            return ("reset", got == part)
    b = raw_backend(handler)
    p = portier([("tls", tls_items(certs.ec)), listener("raw", b.port)])
    s = socket.create_connection(("127.0.0.1", p.port("raw")), timeout=10 * harness.SLOW)
    t = certs.client_context().wrap_socket(s, server_hostname="localhost")
    try:
        t.sendall(part)
        assert arrived.wait(10 * harness.SLOW), "the upload did not reach the backend"
        t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        t.close()                  # no close_notify, and linger 0: a reset
    assert b.wait_result() == ("reset", True)
    p.wait_log(r"\[raw\] close .*: client reset")


def test_late_client_bytes_do_not_cost_the_client_a_reply_the_backend_ended_in_order(
        portier, raw_backend):
    """The backend answers, waits until portier has taken every byte of its
    reply (nothing left in its send queue), and closes in order. The client,
    which reads slowly, sends more before it reads: the backend's kernel
    answers those bytes with a reset, but the reply was whole and ended with a
    FIN, so the client must still get all of it and an orderly end."""
    import fcntl
    import struct
    import termios
    import threading
    reply = os.urandom(96 * 1024)
    closed = threading.Event()

    def unsent(c):
        return struct.unpack("i", fcntl.ioctl(c.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]

    def handler(c):
        assert c.recv(1) == b"x"
        c.sendall(reply)
        harness.wait_for(lambda: unsent(c) == 0, 10, "portier to take the whole reply")
        c.close()
        closed.set()
        return "closed"
    b = raw_backend(handler)
    p = portier([listener("plain", b.port, mode="plain")])
    s = socket.socket()
    # A slow reader: most of the reply waits in portier, not in our socket.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10 * harness.SLOW)
    try:
        s.connect(("127.0.0.1", p.port("plain")))
        s.sendall(b"x")
        assert closed.wait(10 * harness.SLOW), "the backend did not close"
        assert b.wait_result() == "closed"
        # Sent before reading, up to 4 MiB: more than one push to the
        # backend, and the relay has met the reset before we read (a send
        # fails once portier has closed; one that would block ends the loop
        # at the socket's timeout).
        for _ in range(64):
            try:
                s.send(b"u" * 65536)
            except OSError:
                break
        got, err = harness.read_to_end(s, len(reply) + 1)
    finally:
        s.close()
    assert err is None and got == reply, (err, len(got), p.log()[-400:])
    # An orderly end, said as one.
    line = p.wait_log(r"\[plain\] close .*").group(0)
    assert line.endswith(": backend closed"), line


def test_a_client_streaming_to_a_backend_that_is_gone_is_closed_after_the_linger(
        portier, raw_backend):
    """Once the backend has ended in order and refused the client's late bytes,
    and its reply is out, nothing the client sends can go anywhere. A client
    that keeps sending must not hold the connection for as long as it likes
    (each dropped byte renewed idle_timeout): it is read out for portier's
    fixed linger of 2 s, then closed, and the line says the backend closed."""
    import time
    def handler(c):
        assert c.recv(1) == b"x"
        c.sendall(b"reply")
        c.close()
        return "closed"
    b = raw_backend(handler)
    p = portier([listener("plain", b.port, mode="plain", extra=[("idle_timeout", "60s")])])
    s = socket.create_connection(("127.0.0.1", p.port("plain")), timeout=10 * harness.SLOW)
    try:
        s.sendall(b"x")
        assert harness.read_to_eof(s) == b"reply"
        assert b.wait_result() == "closed"
        # Drip for at most 20 s (a third of idle_timeout): the close must
        # come from the linger, well before idle_timeout could end it.
        end, line = time.monotonic() + 20, None
        while line is None and time.monotonic() < end:
            try:
                s.send(b"u" * 100)
            except OSError:
                pass          # portier has closed: the log line is due
            time.sleep(0.05)
            lines = [ln for ln in harness.close_lines(p.log()) if "[plain]" in ln]
            line = lines[0] if lines else None
    finally:
        s.close()
    assert line is not None, "still open after 20 s of client bytes: " + p.log()[-300:]
    assert line.endswith(": backend closed"), line
