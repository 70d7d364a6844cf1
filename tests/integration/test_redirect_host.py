"""mode = redirect and the Host header of an absolute-form request
(RFC 9112 §3.2 and §3.2.2), against the real portier over a raw socket:
an HTTP/1.1 request needs one valid Host whatever the form of its target,
the target's host names the redirect, and a Host that disagrees is
ignored."""

import re
import socket

import pytest

import harness
from test_redirect import redirector




def exchange(port, request):
    """Sends request, reads until portier closes (it always does after its
    answer); returns (status, headers with lower-case names, body, raw). No
    HTTP response at all, a silent close included, fails the test."""
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10 * harness.SLOW) as s:
        s.sendall(request)
        while True:
            d = s.recv(65536)
            if not d:
                break
            raw += d
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    assert m, "not an HTTP response: %r" % raw[:200]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    assert int(headers.get("content-length", -1)) == len(body), raw
    return int(m.group(1)), headers, body, raw


def test_absolute_form_without_host_is_400(portier):
    p = redirector(portier)
    code, h, body, raw = exchange(
        p.port("http"), b"GET http://abs.example/p HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert code == 400, raw
    assert body == b"Bad Request: no Host header\n", raw
    assert "location" not in h, raw
    assert h.get("connection") == "close", raw


@pytest.mark.parametrize("request_bytes,why", [
    (b"GET http://abs.example/p HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
     b"more than one Host header"),
    (b"GET http://abs.example/p HTTP/1.1\r\nHost: a/b\r\n\r\n", b"invalid Host"),
    (b"GET http://user@abs.example/p HTTP/1.1\r\nHost: abs.example\r\n\r\n", b"invalid Host"),
])
def test_absolute_form_with_bad_host_is_400(portier, request_bytes, why):
    p = redirector(portier)
    code, h, body, raw = exchange(p.port("http"), request_bytes)
    assert code == 400, raw
    assert body == b"Bad Request: " + why + b"\n", raw
    assert "location" not in h, raw


def test_absolute_form_host_that_disagrees_is_ignored(portier):
    p = redirector(portier, redirect_port=8443)
    code, h, _, raw = exchange(
        p.port("http"),
        b"GET http://abs.example:80/p?q=1 HTTP/1.1\r\nHost: other.example\r\n"
        b"Connection: close\r\n\r\n")
    assert code == 301, raw
    assert h.get("location") == "https://abs.example:8443/p?q=1", raw


def test_absolute_form_http10_may_leave_host_out(portier):
    p = redirector(portier)
    code, h, _, raw = exchange(p.port("http"), b"POST http://abs.example/f HTTP/1.0\r\n\r\n")
    assert code == 308, raw
    assert h.get("location") == "https://abs.example/f", raw


def test_absolute_form_challenge_without_host_never_reaches_acme(portier, http_backend):
    p = redirector(portier, acme=http_backend.port)
    code, h, body, raw = exchange(
        p.port("http"),
        b"GET http://abs.example/.well-known/acme-challenge/tok HTTP/1.1\r\n\r\n")
    assert code == 400, raw
    assert body == b"Bad Request: ACME challenge: no Host header\n", raw
    assert http_backend.requests == []


@pytest.mark.parametrize("host", [
    b":80",            # no name before the port: "Location: https:///x"
    b":",
    b"[]",             # an empty IP literal: "https://[]/x"
    b"[::1",           # an unclosed one: "https://[::1/x"
    b"[::1]x",         # something else after it
    b"[example.org]",  # a name is no IP literal
    b"a:b:c",          # a port that is no number: "https://a/x"
    b"example.org:8o",
    b"exa\0mple.org",  # NUL: "https://exa/x", the rest cut off
])
def test_a_host_without_a_name_or_with_a_bad_port_is_400(portier, http_backend, host):
    """Host = uri-host [":" port] (RFC 9110 §7.2): a Host that is not one
    got a redirect to a Location with no host, a cut one or an unclosed
    IP literal; nginx refuses an empty host after its port with 400 too.
    In a challenge it reached acme_backend as it was."""
    p = redirector(portier, acme=http_backend.port)
    for target in (b"/x", b"/.well-known/acme-challenge/tok"):
        code, h, body, raw = exchange(
            p.port("http"), b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host))
        assert code == 400, raw
        # A NUL is refused with every field value's (test_redirect.py).
        assert body.endswith(b"invalid Host\n") or b"\0" in host, raw
        assert "location" not in h, raw
    assert http_backend.requests == []


@pytest.mark.parametrize("host,location", [
    (b"example.org:", "https://example.org/x"),       # port = *DIGIT
    (b"example.org:8080", "https://example.org/x"),
    (b"[2001:db8::1]:8080", "https://[2001:db8::1]/x"),
    (b"[::ffff:192.0.2.1]", "https://[::ffff:192.0.2.1]/x"),
    (b"192.0.2.1:80", "https://192.0.2.1/x"),
    (b"my_host-1.example", "https://my_host-1.example/x"),
])
def test_a_host_with_a_port_or_an_ip_literal_is_redirected(portier, host, location):
    p = redirector(portier)
    code, h, _, raw = exchange(p.port("http"), b"GET /x HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
    assert code == 301, raw
    assert h.get("location") == location, raw


@pytest.mark.parametrize("target,location", [
    (b"http://abs.example?q=1", "https://abs.example/?q=1"),
    (b"http://abs.example:80?q=1&r", "https://abs.example/?q=1&r"),
    (b"http://abs.example", "https://abs.example/"),
])
def test_absolute_form_with_a_query_and_no_path_is_redirected(portier, target, location):
    """absolute-URI (RFC 9112 §3.2.2) lets the authority end at "?": an empty
    path with a query. Its query was taken for part of the host, and the
    request refused as "invalid Host"; nginx redirects it. The empty path
    becomes "/" (RFC 9110 §4.2.3)."""
    p = redirector(portier)
    code, h, _, raw = exchange(
        p.port("http"), b"GET %s HTTP/1.1\r\nHost: abs.example\r\n\r\n" % target)
    assert code == 301, raw
    assert h.get("location") == location, raw
