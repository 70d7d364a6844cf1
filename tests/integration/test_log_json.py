"""log_format = json: every line a real portier writes is one JSON object
(json.loads takes each), a connection's end carries its facts as fields, a
client-chosen SNI with control bytes comes back byte for byte, and a reload
switches the form both ways."""

import json
import re

import harness
from harness import listener, s_client, tls_items

REQUEST = b"GET /who HTTP/1.0\r\nHost: localhost\r\n\r\n"


def objects(text):
    """Every line of text as a JSON object (AssertionError naming the first
    line that is not one)."""
    out = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError("not a JSON line: %r\nlog:\n%s" % (line, text))
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def test_json_lines_and_their_fields(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http")],
                glob=[("log_format", "json")])
    port = p.port("web")
    out, _, _ = harness.https_get(port, certs.client_context(), "/who")
    assert out.startswith(b"HTTP/1.1 200"), out
    cp = s_client(port, ["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"])
    assert cp.returncode != 0, cp.out
    # An SNI with a line end and a quote in it (s_client sends it as given).
    cp = s_client(port, ["-ign_eof"], stdin=REQUEST, ca=certs.ca,
                  servername='evil\n"x')
    harness.wait_for(lambda: len([o for o in objects(p.log()) if o.get("event")]) >= 3,
                     10 * harness.SLOW, "three connection lines")
    p.stop()
    objs = objects(p.log())
    for o in objs:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]), o
        assert o["level"] in ("info", "notice", "warning", "error"), o
        assert o["process"] == "master" or re.fullmatch(r"worker \d+\.\d+", o["process"]), o
        assert isinstance(o["pid"], int) and o["pid"] > 0, o
        assert ("msg" in o) != ("event" in o), o
    assert any(o.get("msg", "").startswith("portier ") and " started: " in o["msg"]
               for o in objs), objs
    conns = [o for o in objs if "event" in o]
    keys = ["time", "level", "process", "pid", "event", "listener", "client", "control", "sni", "tls",
            "cipher", "resumed", "up", "down", "ms", "reason_code", "reason"]
    assert all(list(o) == keys for o in conns), conns
    ok, old, evil = conns[0], conns[1], conns[2]
    assert ok["event"] == "close" and ok["listener"] == "web" and ok["control"] is None, ok
    assert re.fullmatch(r"127\.0\.0\.1:\d+", ok["client"]), ok
    assert ok["sni"] == "localhost" and ok["tls"] in ("TLSv1.3", "TLSv1.2"), ok
    assert ok["cipher"].startswith("TLS_") and ok["resumed"] is False, ok
    assert ok["up"] > 0 and ok["down"] > 0 and isinstance(ok["ms"], int), ok
    assert old["event"] == "handshake_failed" and old["reason_code"] == "handshake_failed", old
    assert old["tls"] is None and old["resumed"] is None and old["sni"] is None, old
    assert old["reason"].startswith("client's TLS version is too old"), old
    assert evil["sni"] == 'evil\n"x', evil
    # The raw line holds no control byte: the SNI's newline is \u000a.
    raw = [l for l in p.log().splitlines() if '"sni":"evil' in l]
    assert len(raw) == 1 and '"sni":"evil\\u000a\\"x"' in raw[0], raw


def test_reload_switches_the_form(portier, certs, http_backend):
    sections = [("tls", tls_items(certs.ec)),
                listener("web", http_backend.port, protocol="http")]
    p = portier(sections)
    port = p.port("web")

    def one_close(since):
        out, _, _ = harness.https_get(port, certs.client_context(), "/who")
        assert out.startswith(b"HTTP/1.1 200"), out
        harness.wait_for(lambda: "close client=" in p.log()[since:] or
                         '"event":"close"' in p.log()[since:], 10 * harness.SLOW,
                         "a close line")

    one_close(0)
    assert re.search(r"^portier: worker 1\.1: \[web\] close client=", p.log(), re.M), p.log()
    p.sections[0] = ("portier", list(p.sections[0][1]) + [("log_format", "json")])
    p.rewrite(sections)
    mark = p.reload()
    one_close(p.mark())
    after = p.log()[mark:]
    lines = [l for l in after.splitlines() if l.startswith("{")]
    assert any('"msg":"reloaded: ' in l for l in lines), after
    assert any(json.loads(l).get("event") == "close" and json.loads(l)["process"] == "worker 2.1"
               for l in lines), after
    assert not re.search(r"^portier: worker 2\.1: \[web\] close", after, re.M), after
    # And back.
    p.sections[0] = ("portier", [kv for kv in p.sections[0][1] if kv[0] != "log_format"])
    p.rewrite(sections)
    mark = p.reload()
    one_close(p.mark())
    assert re.search(r"^portier: worker 3\.1: \[web\] close client=", p.log()[mark:], re.M), \
        p.log()[mark:]
