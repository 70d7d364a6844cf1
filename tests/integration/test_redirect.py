"""mode = redirect: the plain-HTTP listener that sends everyone to https://,
except the ACME http-01 path, which goes to acme_backend."""

import re
import select
import socket
import struct
import time

import pytest

import harness
from harness import listener


def redirector(portier, redirect_port=None, acme=None):
    extra = []
    if redirect_port is not None:
        extra.append(("redirect_port", str(redirect_port)))
    if acme is not None:
        extra.append(("acme_backend", "127.0.0.1:%d" % acme))
    return portier([listener("http", mode="redirect", protocol="http", extra=extra)])


def exchange(port, request, timeout=10):
    """Send request bytes, read the whole answer (portier closes or we stop at a
    complete head+body); returns (status, headers dict lower-case, body, raw)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * harness.SLOW) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_response(s)


def read_response(s):
    raw = b""
    try:
        for _ in range(10000):
            head_end = raw.find(b"\r\n\r\n")
            if head_end >= 0:
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", raw[:head_end], re.I)
                if m and len(raw) >= head_end + 4 + int(m.group(1)):
                    break
            d = s.recv(65536)
            if not d:
                break
            raw += d
    except ConnectionResetError:
        pass
    return parse(raw)


def parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ", lines[0] + " ")
    assert m, "not an HTTP response: %r" % raw[:200]
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body, raw


def req(method, target, host="example.org", extra=b"", version=b"HTTP/1.1"):
    r = b"%s %s %s\r\n" % (method.encode(), target.encode(), version)
    if host is not None:
        r += b"Host: %s\r\n" % host.encode()
    return r + extra + b"Connection: close\r\n\r\n"


@pytest.mark.parametrize("method,status", [("GET", 301), ("HEAD", 301), ("POST", 308),
                                           ("PUT", 308), ("DELETE", 308), ("OPTIONS", 308)])
def test_status_by_method(portier, method, status):
    p = redirector(portier)
    extra = b"Content-Length: 0\r\n" if method in ("POST", "PUT") else b""
    code, h, body, raw = exchange(p.port("http"), req(method, "/a/b?x=1", extra=extra))
    assert code == status, raw
    assert h.get("location") == "https://example.org/a/b?x=1", raw
    if method == "HEAD":
        assert body == b"", raw


@pytest.mark.parametrize("target,host,location", [
    ("/", "example.org", "https://example.org/"),
    ("/path/to/page.html", "www.example.org", "https://www.example.org/path/to/page.html"),
    ("/search?q=a+b&lang=en&empty=", "example.org", "https://example.org/search?q=a+b&lang=en&empty="),
    ("/p%20q?x=%2F", "example.org", "https://example.org/p%20q?x=%2F"),
    ("/x", "example.org:80", "https://example.org/x"),
    ("/x", "Example.ORG", None),   # host case: kept or lowered, both fine
    ("/v6", "[::1]", "https://[::1]/v6"),
])
def test_location_keeps_host_path_and_query(portier, target, host, location):
    p = redirector(portier)
    code, h, _, raw = exchange(p.port("http"), req("GET", target, host=host))
    assert code == 301, raw
    if location is None:
        assert h.get("location", "").lower() == "https://example.org/x", raw
    else:
        assert h.get("location") == location, raw


def test_redirect_port(portier):
    p = redirector(portier, redirect_port=8443)
    code, h, _, raw = exchange(p.port("http"), req("GET", "/a?b=c", host="example.org"))
    assert code == 301, raw
    assert h.get("location") == "https://example.org:8443/a?b=c", raw
    code, h, _, raw = exchange(p.port("http"), req("GET", "/a", host="example.org:8080"))
    assert h.get("location") == "https://example.org:8443/a", raw


def test_redirect_port_443_is_omitted(portier):
    p = redirector(portier, redirect_port=443)
    code, h, _, raw = exchange(p.port("http"), req("GET", "/z"))
    assert h.get("location") == "https://example.org/z", raw


def test_curl_follows_nothing_but_sees_redirect(portier):
    p = redirector(portier)
    cp = harness.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "-w",
                      "%{http_code} %{redirect_url}", "-H", "Host: example.org",
                      "http://127.0.0.1:%d/c?d=e" % p.port("http")])
    assert cp.returncode == 0, cp.err
    assert cp.out == "301 https://example.org/c?d=e"


@pytest.mark.parametrize("request_bytes", [
    b"GET /a HTTP/1.0\r\n\r\n",
    b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n",
])
def test_missing_host_is_400(portier, request_bytes):
    p = redirector(portier)
    code, h, _, raw = exchange(p.port("http"), request_bytes)
    assert code == 400, raw
    assert "location" not in h, raw


def test_garbage_gets_400_never_a_redirect(portier):
    """A head that is no HTTP request line is a malformed request: documented
    as 400 Bad Request (docs/configuration.md), so a silent close fails too."""
    p = redirector(portier)
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"\x16\x03\x01\x02\x00hello\r\n\r\n")
        raw = read_until_closed(s)
    assert raw, "closed without the documented 400"
    code, h, _, _ = parse(raw)
    assert code == 400, raw
    assert "location" not in h, raw


def test_oversized_head_is_refused(portier):
    p = redirector(portier)
    big = b"X-Fill: " + b"a" * (64 * 1024) + b"\r\n"
    code, h, _, raw = exchange(p.port("http"), req("GET", "/", extra=big))
    # docs/configuration.md: "at most 8192 bytes, else 431".
    assert code == 431, raw
    assert "location" not in h


def test_oversized_head_never_ending_is_refused(portier):
    """A head that never ends (no blank line): refused once the bound is passed,
    not buffered forever."""
    p = redirector(portier)
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: example.org\r\n")
        t0 = time.monotonic()
        try:
            for _ in range(2048):     # up to 2 MiB, stopping when portier answers
                if select.select([s], [], [], 0)[0] or time.monotonic() - t0 > 20:
                    break
                s.sendall(b"X-More: " + b"b" * 1014 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            code, _, _, raw = read_response(s)
        except socket.timeout:
            raise AssertionError("no answer to a 2 MiB head that never ends")
    assert code == 431, raw


def test_request_one_byte_at_a_time(portier):
    p = redirector(portier)
    request = req("GET", "/slow/path?q=1", host="example.org")
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            s.sendall(request[i:i + 1])
            time.sleep(0.002)   # pacing, so that portier sees separate reads
        code, h, _, raw = read_response(s)
    assert code == 301, raw
    assert h.get("location") == "https://example.org/slow/path?q=1", raw


@pytest.mark.parametrize("before", [b"\r\n", b"\n", b"\r\n\r\n\n"])
def test_empty_lines_before_the_request_line_are_skipped(portier, before):
    """RFC 9112 2.2: a server SHOULD ignore at least one empty line before the
    request line (a client's stray CRLF after a previous request), as nginx
    and HAProxy do; it was a 400."""
    p = redirector(portier)
    mark = p.mark()
    code, h, body, raw = exchange(p.port("http"), before + req("GET", "/a?b=c"))
    assert code == 301, raw
    assert h["location"] == "https://example.org/a?b=c", raw
    line = p.wait_log(r"\[http\] close .*", since=mark).group(0)
    assert "Bad Request" not in line and "malformed" not in line, line


def test_empty_lines_before_a_challenge_never_reach_the_acme_backend(portier, raw_backend):
    """The ACME backend gets the challenge's head from its request line on:
    what came before it was no part of the request."""
    def record(c):
        got = b""
        while b"\r\n\r\n" not in got and len(got) < 65536:
            d = c.recv(4096)
            if not d:
                break
            got += d
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        return got
    b = raw_backend(record)
    p = redirector(portier, acme=b.port)
    head = b"GET %s HTTP/1.1\r\nHost: example.org\r\n\r\n" % (ACME + TOKEN).encode()
    code, h, body, raw = exchange(p.port("http"), b"\r\n\n" + head)
    assert (code, body) == (200, b"ok"), raw
    assert b.wait_result() == head


def test_pipelined_or_keepalive_second_request(portier):
    """Two requests on one connection: each gets its own redirect, or portier
    closes after the first with Connection: close; never a mixed-up answer."""
    p = redirector(portier)
    two = (b"GET /one HTTP/1.1\r\nHost: example.org\r\n\r\n"
           b"GET /two HTTP/1.1\r\nHost: example.org\r\n\r\n")
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10) as s:
        s.sendall(two)
        s.settimeout(5 * harness.SLOW)
        raw = b""
        try:
            for _ in range(100):
                d = s.recv(65536)
                if not d:
                    break
                raw += d
                if raw.count(b"https://example.org/two"):
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    locs = re.findall(rb"(?i)\r\nlocation:\s*(\S+)", raw)
    assert locs[:1] == [b"https://example.org/one"], raw
    if len(locs) == 1:
        assert re.search(rb"(?i)\r\nconnection:\s*close", raw), raw
    else:
        assert locs == [b"https://example.org/one", b"https://example.org/two"], raw


def test_acme_challenge_reaches_acme_backend(portier, http_backend):
    p = redirector(portier, acme=http_backend.port)
    path = "/.well-known/acme-challenge/TokEn_-123"
    code, h, body, raw = exchange(p.port("http"), req("GET", path, host="example.org"))
    assert code == 200, raw
    assert body == ("backend http GET %s\n" % path).encode(), raw
    assert [(m, pth) for m, pth, _ in http_backend.requests] == [("GET", path)]
    assert http_backend.requests[0][2].get("Host") == "example.org"


def test_acme_backend_with_curl(portier, http_backend):
    p = redirector(portier, acme=http_backend.port)
    cp = harness.run(["curl", "-sS", "--max-time", "10", "-H", "Host: example.org",
                      "http://127.0.0.1:%d/.well-known/acme-challenge/abc" % p.port("http")])
    assert cp.returncode == 0, cp.err
    assert cp.out == "backend http GET /.well-known/acme-challenge/abc\n"


def test_other_well_known_paths_are_redirected(portier, http_backend):
    p = redirector(portier, acme=http_backend.port)
    for path in ("/.well-known/security.txt", "/.well-known/acme-challengeX/t", "/acme-challenge/t"):
        code, h, _, raw = exchange(p.port("http"), req("GET", path))
        assert code == 301, raw
        assert h.get("location") == "https://example.org" + path
    assert http_backend.requests == []


def test_acme_path_without_acme_backend_is_redirected(portier):
    p = redirector(portier)
    path = "/.well-known/acme-challenge/t"
    code, h, _, raw = exchange(p.port("http"), req("GET", path))
    assert code == 301, raw
    assert h.get("location") == "https://example.org" + path


# The ACME pass-through forwards one strict http-01 request and nothing else:
# not a second request on the same connection, not a path that only starts
# with the challenge prefix.

ACME = "/.well-known/acme-challenge/"
TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"


def read_until_closed(s, timeout=10):
    """Everything the peer sends until it closes (a reset counts as closed);
    a connection still open after timeout fails the test."""
    s.settimeout(timeout * harness.SLOW)
    raw = b""
    try:
        for _ in range(10000):
            d = s.recv(65536)
            if not d:
                return raw
            raw += d
    except ConnectionResetError:
        return raw
    except socket.timeout:
        raise AssertionError("connection still open after %r" % raw[:300])
    raise AssertionError("endless data: %r" % raw[:300])


def test_acme_keepalive_second_request_never_reaches_backend(portier, http_backend):
    p = redirector(portier, acme=http_backend.port)
    path = ACME + TOKEN
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: example.org\r\n\r\n" % path.encode())
        code, h, body, raw = read_response(s)
        assert code == 200, raw
        assert body == b"backend http GET %s\n" % path.encode(), raw
        try:
            s.sendall(b"GET /admin HTTP/1.1\r\nHost: example.org\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        rest = read_until_closed(s)
    assert rest == b"", rest
    assert [(m, pth) for m, pth, _ in http_backend.requests] == [("GET", path)]


def test_acme_pipelined_second_request_never_reaches_backend(portier, http_backend):
    p = redirector(portier, acme=http_backend.port)
    path = ACME + TOKEN
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: example.org\r\n\r\n"
                  b"GET /admin HTTP/1.1\r\nHost: example.org\r\n\r\n" % path.encode())
        raw = read_until_closed(s)
    code, h, body, _ = parse(raw)
    assert code == 200, raw
    assert body == b"backend http GET %s\n" % path.encode(), raw
    assert [(m, pth) for m, pth, _ in http_backend.requests] == [("GET", path)]


@pytest.mark.parametrize("method,token", [("GET", "a" * 255), ("HEAD", TOKEN), ("GET", "-_09azAZ")])
def test_acme_strict_challenge_reaches_backend(portier, http_backend, method, token):
    p = redirector(portier, acme=http_backend.port)
    path = ACME + token
    code, h, body, raw = exchange(p.port("http"), req(method, path))
    assert code == 200, raw
    assert body == (b"" if method == "HEAD" else b"backend http GET %s\n" % path.encode()), raw
    assert [(m, pth) for m, pth, _ in http_backend.requests] == [(method, path)]


@pytest.mark.parametrize("method,target,extra,why", [
    ("GET", ACME + "../../admin", b"", b"base64url"),
    ("GET", ACME + "%2e%2e/%2e%2e/admin", b"", b"base64url"),
    ("GET", ACME + "%2E%2e/admin", b"", b"base64url"),
    ("GET", ACME + "..%2fadmin", b"", b"base64url"),
    ("GET", ACME + "..%2Fadmin", b"", b"base64url"),
    ("GET", ACME + "..\\..\\admin", b"", b"base64url"),
    ("GET", ACME + TOKEN + "/x", b"", b"base64url"),
    ("GET", ACME + TOKEN + "%41", b"", b"base64url"),
    ("GET", "http://example.org" + ACME + "../admin", b"", b"base64url"),
    ("GET", ACME, b"", b"1 to 255"),
    ("GET", ACME + "a" * 256, b"", b"1 to 255"),
    ("GET", ACME + TOKEN + "?x=1", b"", b"no query"),
    ("POST", ACME + TOKEN, b"Content-Length: 0\r\n", b"GET or HEAD"),
    ("GET", ACME + TOKEN, b"Content-Length: 5\r\n", b"no request body"),
    ("GET", ACME + TOKEN, b"Transfer-Encoding: chunked\r\n", b"no request body"),
    ("GET", "http://example.org" + ACME + TOKEN, b"Host: other\r\n", b"more than one Host"),
])
def test_acme_malformed_challenge_is_400(portier, http_backend, method, target, extra, why):
    p = redirector(portier, acme=http_backend.port)
    body_bytes = b"hello" if b"Content-Length: 5" in extra else (
        b"0\r\n\r\n" if b"chunked" in extra else b"")
    code, h, body, raw = exchange(p.port("http"), req(method, target, extra=extra) + body_bytes)
    assert code == 400, raw
    assert "location" not in h, raw
    assert body.startswith(b"Bad Request: ACME challenge: ") and why in body, raw
    assert http_backend.requests == []


def read_head(c, limit=65536):
    """A backend's read of one request head: True once its blank line came,
    False at an end before it (or past limit bytes)."""
    got = b""
    while b"\r\n\r\n" not in got and len(got) < limit:
        d = c.recv(4096)
        if not d:
            return False
        got += d
    return b"\r\n\r\n" in got


def test_sub_second_deadlines_are_logged_as_configured(portier, raw_backend):
    """handshake_timeout (the request head's deadline) and idle_timeout (the
    ACME relay's) below or between whole seconds: the close line says the
    deadline that passed, not one rounded to whole seconds ("within 0s")."""
    import threading
    done = threading.Event()

    def silent(c):
        if not read_head(c):
            return "eof before the head"
        # Holds the connection without a reply (portier's FIN came after
        # the head) until the test saw the idle close.
        return done.wait(10 * harness.SLOW)
    b = raw_backend(silent)
    p = portier([listener("http", mode="redirect", protocol="http",
                          extra=[("handshake_timeout", "300ms"), ("idle_timeout", "1500ms"),
                                 ("acme_backend", "127.0.0.1:%d" % b.port)])])
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        assert read_until_closed(s) == b""
    p.wait_log(r"\[http\] close .*: no complete request within 300ms$")
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: example.org\r\n\r\n" % (ACME + TOKEN).encode())
        assert read_until_closed(s).startswith(b"HTTP/1.1 504 ")
    p.wait_log(r"\[http\] client=\S+: acme_backend \S+ sent no reply within 1500ms; ")
    done.set()
    assert b.wait_result() is True


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_acme_backend_that_never_replies_gets_the_client_a_504(portier, raw_backend, method):
    """The ACME backend takes the challenge and says nothing: after
    idle_timeout the client gets 504 Gateway Timeout (what nginx or HAProxy
    say when their upstream times out; a HEAD gets the head alone), and the
    log says which backend and how long. It was a bare close, which a CA's
    validator reports as a connection error of the host's."""
    import threading
    answered = threading.Event()

    def silent(c):
        if not read_head(c):
            return "eof before the head"
        return answered.wait(10 * harness.SLOW)   # no reply until the 504 came
    b = raw_backend(silent)
    p = portier([listener("http", mode="redirect", protocol="http",
                          extra=[("idle_timeout", "1s"),
                                 ("acme_backend", "127.0.0.1:%d" % b.port)])],
                glob=[("stats", "127.0.0.1:0")])
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: example.org\r\n\r\n"
                  % (method.encode(), (ACME + TOKEN).encode()))
        raw = read_until_closed(s)
    answered.set()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 504 Gateway Timeout\r\n"), raw
    assert b"\r\nContent-Length: 23\r\n" in head + b"\r\n", raw
    assert body == (b"" if method == "HEAD" else b"Backend did not answer\n"), raw
    assert b.wait_result() is True
    p.wait_log(r"\[http\] client=127\.0\.0\.1:\d+: acme_backend 127\.0\.0\.1:%d sent no "
               r"reply within 1s; refusing in http$" % b.port)
    line = p.wait_log(r"\[http\] close .*").group(0)
    assert line.endswith(": acme_backend sent no reply, refused in protocol"), line
    # Counted as the refusal it is, and as a backend that failed the client.
    from test_metrics import scrape, value
    text = scrape(p.port("[stats]"))
    assert value(text, "portier_refusals_total", listener="http") == 1
    assert value(text, "portier_connections_closed_total", listener="http",
                 reason="backend_down") == 1


def test_an_acme_backend_that_closes_without_a_reply_gets_the_client_a_502(
        portier, raw_backend):
    """The ACME backend reads the challenge and closes without a byte: the
    client gets the 502 a backend that is down gets, and the log says why;
    not a bare close logged (and counted) as "acme reply"."""
    def mute(c):
        return "closed" if read_head(c) else "eof before the head"
    b = raw_backend(mute)
    p = redirector(portier, acme=b.port)
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: example.org\r\n\r\n" % (ACME + TOKEN).encode())
        raw = read_until_closed(s)
    assert b.wait_result() == "closed"
    assert raw.startswith(b"HTTP/1.1 502 Bad Gateway\r\n") and raw.endswith(b"\r\n\r\nBackend is down\n"), raw
    p.wait_log(r"\[http\] client=127\.0\.0\.1:\d+: acme_backend closed without a reply; "
               r"refusing in http$")
    line = p.wait_log(r"\[http\] close .*").group(0)
    assert line.endswith(": backend unavailable, refused in protocol"), line


def test_an_acme_refusal_ends_in_order_after_bytes_past_the_head(portier, closed_port):
    """A client that sends more after its challenge head (a body, a second
    request): portier reads those bytes out before it closes, as after any
    reply. Closed with them unread, the kernel sends a reset, which throws
    away whatever of the 502 the client has not yet received. Seen here as
    the client's socket error once it has read to the end: a reset that
    came after the FIN leaves EPIPE there, an orderly end nothing."""
    import errno
    p = redirector(portier, acme=closed_port)
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: example.org\r\n\r\n" % (ACME + TOKEN).encode()
                  + b"x" * 200000)
        s.shutdown(socket.SHUT_WR)
        p.wait_log(r"\[http\] close .*: backend unavailable, refused in protocol$")
        raw = read_until_closed(s)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    assert raw.startswith(b"HTTP/1.1 502 Bad Gateway\r\n") and raw.endswith(b"\r\n\r\nBackend is down\n"), raw
    assert err == 0, errno.errorcode.get(err, err)


def test_an_acme_backend_that_is_down_gets_the_client_a_502(portier, closed_port):
    p = redirector(portier, acme=closed_port)
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: example.org\r\n\r\n" % (ACME + TOKEN).encode())
        raw = read_until_closed(s)
    assert raw.startswith(b"HTTP/1.1 502 Bad Gateway\r\n") and raw.endswith(b"\r\n\r\nBackend is down\n"), raw
    line = p.wait_log(r"\[http\] close .*").group(0)
    assert line.endswith(": backend unavailable, refused in protocol"), line


def refused_as_redirect_and_challenge(portier, http_backend, request):
    """request (its target a %s) gets a 400, neither redirected nor passed
    to acme_backend, for a plain path and for a challenge."""
    p = redirector(portier, acme=http_backend.port)
    for target in (b"/x", (ACME + TOKEN).encode()):
        code, h, _, raw = exchange(p.port("http"), request.replace(b"%s", target, 1))
        assert code == 400, raw
        assert "location" not in h, raw
    assert http_backend.requests == []


@pytest.mark.parametrize("field", [
    b"X-A: a\0b\r\n",                           # NUL inside a value
    b"X-A: a\rContent-Length: 5\r\n",           # a bare CR inside a value
    b"X-A: a\r\r\n",                            # a CR before the line's CRLF
    b"Host2: x\rHost: evil.example\r\n",
])
def test_nul_or_bare_cr_in_a_field_is_400_and_never_forwarded(portier, http_backend, field):
    """RFC 9110 §5.5: a recipient of CR, LF or NUL within a field value MUST
    reject the message or replace them with SP before forwarding it. They
    were passed on to acme_backend as sent, where a parser that takes a bare
    CR for a line end sees a header portier never saw; nginx answers 400."""
    refused_as_redirect_and_challenge(portier, http_backend,
                                      b"GET %s HTTP/1.1\r\nHost: example.org\r\n" + field + b"\r\n")


@pytest.mark.parametrize("request_bytes,status", [
    (b"HEAD /x HTTP/1.1\r\n\r\n", 400),                                  # no Host
    (b"HEAD %s../x HTTP/1.1\r\nHost: example.org\r\n\r\n" % ACME.encode(), 400),
    (b"HEAD /x HTTP/1.1\r\nHost: example.org\r\nX-Fill: %s\r\n\r\n" % (b"a" * 9000), 431),
], ids=["no-host", "acme-token", "too-large"])
def test_an_error_answering_head_has_no_body(portier, http_backend, request_bytes, status):
    """RFC 9110 §9.3.2: the response to HEAD carries no content. The 400 and
    431 did (their reason in a text/plain body), bytes a client that keeps
    the connection reads as the start of the next response."""
    p = redirector(portier, acme=http_backend.port)
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(request_bytes)
        raw = read_until_closed(s)
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw
    assert raw.endswith(b"\r\n\r\n") and raw.count(b"\r\n\r\n") == 1, raw
    assert http_backend.requests == []


def test_a_502_answering_a_head_challenge_has_no_body(portier, closed_port):
    """The 502 that stands for a down acme_backend follows RFC 9110 §9.3.2
    too: a HEAD of a challenge got "Backend is down\\n" after the head."""
    p = redirector(portier, acme=closed_port)
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        s.sendall(b"HEAD %s HTTP/1.1\r\nHost: example.org\r\n\r\n" % (ACME + TOKEN).encode())
        raw = read_until_closed(s)
    assert raw.startswith(b"HTTP/1.1 502 Bad Gateway\r\n"), raw
    assert raw.endswith(b"\r\nContent-Length: 16\r\nConnection: close\r\n\r\n"), raw
    line = p.wait_log(r"\[http\] close .*").group(0)
    assert line.endswith(": backend unavailable, refused in protocol"), line


@pytest.mark.parametrize("version", [b"HTTP/1.x", b"HTTP/1. ", b"HTTP/1.\x7f"])
def test_a_version_without_a_minor_digit_is_400(portier, http_backend, version):
    """HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3): "HTTP/1.x" was
    taken for HTTP/1.1, redirected and passed on to acme_backend."""
    refused_as_redirect_and_challenge(portier, http_backend,
                                      b"GET %s " + version + b"\r\nHost: example.org\r\n\r\n")


@pytest.mark.parametrize("request_bytes,reason", [
    (b"GET /x HTTP/1.1\r\nHost: example.org\r\n\r\n", "replied"),
    (b"GET /x HTTP/1.1\r\n\r\n", "no Host header"),
    (b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host header"),
    (b"GET %s?x=1 HTTP/1.1\r\nHost: example.org\r\n\r\n" % (ACME + TOKEN).encode(),
     "ACME challenge: no query allowed"),
    (b"\x16\x03\x01\x02\x00hello\r\n\r\n", "malformed request"),
    (b"GET /x HTTP/1.1\r\nX-Fill: %s\r\n\r\n" % (b"a" * 9000), "request head over 8192 bytes"),
], ids=["redirect", "no-host", "two-hosts", "acme-query", "garbage", "too-large"])
def test_the_close_line_says_why_a_request_was_refused(portier, http_backend, request_bytes,
                                                       reason):
    """A 400 or 431 was logged as "replied", like a redirect: an admin could
    not tell a refused ACME challenge (a failing renewal) from a served
    redirect. The reason is a constant: no byte of the client's is logged."""
    p = redirector(portier, acme=http_backend.port)
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        me = s.getsockname()[1]
        s.sendall(request_bytes)
        read_until_closed(s)
    p.wait_log(r"\[http\] close client=127\.0\.0\.1:%d .* time=\S+: %s$" % (me, re.escape(reason)))
    assert http_backend.requests == []


def closed_line(p, me):
    """The close line of the connection from local port me."""
    return p.wait_log(r"\[http\] close client=127\.0\.0\.1:%d .*" % me).group(0)


def closed_count(p, reason, name="http"):
    """Waits until listener name's portier_connections_closed_total for
    reason is 1 (a connection is counted as it is freed, a moment after its
    close line); every other reason must be 0. p has stats on."""
    from test_metrics import samples, scrape

    def counts():
        s = samples(scrape(p.port("[stats]")))
        return {dict(k[1])["reason"]: v for k, v in s.items()
                if k[0] == "portier_connections_closed_total" and
                dict(k[1]).get("listener") == name and v}
    harness.wait_for(lambda: counts().get(reason) == 1, 5,
                     "portier_connections_closed_total{reason=%s} to be 1" % reason)
    assert counts() == {reason: 1}, counts()


def test_a_client_that_closes_without_a_byte_is_logged_as_closed(portier):
    """A connection that ends before its first byte (a port scan, a TCP
    health check): no answer can be owed, and the close line says the client
    closed, not a malformed or timed-out request."""
    p = portier([listener("http", mode="redirect", protocol="http")],
                glob=[("stats", "127.0.0.1:0")])
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        me = s.getsockname()[1]
    line = closed_line(p, me)
    assert re.search(r" up=0 down=0 time=\d+\.\d{3}s: client closed$", line), line
    closed_count(p, "client_closed")


def test_a_partial_head_then_fin_gets_nothing_and_is_logged_mid_request(portier):
    """A client that sends part of a request head and then shuts down its
    side: there is no request to answer, so it gets no byte back (not a
    redirect of half a head, not a 400), only portier's orderly end; the
    close line says it closed mid-request, counted as a protocol error."""
    p = portier([listener("http", mode="redirect", protocol="http")],
                glob=[("stats", "127.0.0.1:0")])
    with socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW) as s:
        me = s.getsockname()[1]
        s.sendall(b"GET /a HTTP/1.1\r\nHost: exam")
        s.shutdown(socket.SHUT_WR)
        got, err = harness.read_to_end(s)
    assert (got, err) == (b"", None), (got, err)
    line = closed_line(p, me)
    assert re.search(r" up=0 down=0 time=\d+\.\d{3}s: client closed mid-request$", line), line
    closed_count(p, "protocol_error")


def test_a_partial_head_then_reset_is_logged_as_a_reset(portier):
    """A client that sends part of a request head and then resets (close
    with SO_LINGER 0): the close line says "client reset", the reason the
    metrics count as client_reset."""
    p = portier([listener("http", mode="redirect", protocol="http")],
                glob=[("stats", "127.0.0.1:0")])
    s = socket.create_connection(("127.0.0.1", p.port("http")), timeout=10 * harness.SLOW)
    me = s.getsockname()[1]
    s.sendall(b"GET /a HTTP/1.1\r\nHost: exam")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    line = closed_line(p, me)
    assert re.search(r" up=0 down=0 time=\d+\.\d{3}s: client reset$", line), line
    closed_count(p, "client_reset")
