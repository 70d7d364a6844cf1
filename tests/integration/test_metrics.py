"""[portier] stats = ADDR:PORT: the Prometheus endpoint. Its output passes
promtool's check; it answers only GET and HEAD of /metrics; a real Prometheus
server scrapes it and sees the counters move by exactly the traffic made
(handshakes, a TLS 1.0 client's failure), summed over two workers and kept
across reloads; clients lose nothing across reloads with stats on; the
shipped alerting rules pass promtool."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request

import pytest

import harness
from harness import listener, tls_items

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "..", "..", "contrib", "prometheus", "portier.rules.yml")

needs_prometheus = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="Debian's prometheus package is not installed (scripts/test installs it)")


def http(port, request, timeout=10):
    """Send request bytes to 127.0.0.1:port; read to EOF. (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * harness.SLOW) as s:
        s.sendall(request)
        data = harness.read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def scrape(port):
    status, headers, body = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200, (status, body[:200])
    return body.decode("utf-8")


LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text):
    """{(name, frozenset of (label, value))}: value, from the exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        assert m, "bad sample line %r" % line
        labels = frozenset((k, v) for k, v in LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(text, name, **labels):
    key = (name, frozenset(labels.items()))
    s = samples(text)
    assert key in s, "no sample %s%r in:\n%s" % (name, labels, text[:3000])
    return s[key]


def web(certs, backend_port):
    return [("tls", tls_items(certs.ec)),
            listener("web", backend_port, protocol="http")]


STATS = [("stats", "127.0.0.1:0")]


def handshake(port, ctx):
    body, _, _ = harness.https_get(port, ctx, "/echo/m")
    assert b"200 OK" in body, body[:200]


def tls10_client(port):
    """openssl s_client offering TLS 1.0 only (with the old suites allowed):
    portier must refuse it."""
    cp = harness.s_client(port, ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"])
    assert cp.returncode == 1 and "Cipher is (NONE)" in cp.out, cp.out + cp.err
    assert "alert protocol version" in cp.err, cp.err


# --------------------------------------------------------------------------
# The endpoint itself

@needs_prometheus
def test_the_exposition_passes_promtool(portier, certs, http_backend, workdir, closed_port):
    p = portier(web(certs, http_backend.port) +
                [listener("down", closed_port, protocol="http")], glob=STATS)
    port = p.port("[stats]")
    handshake(p.port("web"), certs.client_context())
    tls10_client(p.port("web"))
    # Plaintext on the TLS port; a backend that refuses (HTTP 502 to the
    # client, in its protocol's words).
    with socket.create_connection(("127.0.0.1", p.port("web")), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        harness.read_to_eof(s)
    body, _, _ = harness.https_get(p.port("down"), certs.client_context())
    assert b" 502 " in body.split(b"\r\n")[0], body[:100]
    harness.wait_for(lambda: value(scrape(port), "portier_connections_active",
                                   listener="down") == 0, 5, "the refused connection to end")
    text = scrape(port)
    cp = harness.run(["promtool", "check", "metrics"], input=text.encode())
    assert cp.returncode == 0, cp.out + cp.err
    # Every family has its HELP and TYPE, and every sample belongs to one.
    helps = set(re.findall(r"^# HELP (\w+) ", text, re.M))
    types = dict(re.findall(r"^# TYPE (\w+) (\w+)$", text, re.M))
    assert helps == set(types), (helps ^ set(types))
    for (name, _), _v in samples(text).items():
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or (base in types and types[base] == "histogram"), name
    expected = {
        "portier_connections_accepted_total", "portier_connections_active",
        "portier_connections_closed_total", "portier_handshakes_total",
        "portier_handshake_failures_total", "portier_bytes_total",
        "portier_backend_connect_failures_total",
        "portier_backend_connect_duration_seconds", "portier_handshake_duration_seconds",
        "portier_refusals_total", "portier_workers_up", "portier_reloads_total",
        "portier_last_reload_timestamp_seconds", "portier_config_generation",
        "portier_build_info", "portier_certificate_expiry_timestamp_seconds",
        "portier_log_lines_dropped_total",
    }
    assert expected <= set(types), expected - set(types)
    assert value(text, "portier_connections_accepted_total", listener="web") == 3
    assert value(text, "portier_handshake_failures_total", listener="web",
                 reason="plaintext_on_tls_port") == 1
    assert value(text, "portier_backend_connect_failures_total", listener="down",
                 kind="refused") == 1
    assert value(text, "portier_refusals_total", listener="down") == 1
    assert value(text, "portier_refusals_total", listener="web") == 0
    assert value(text, "portier_connections_closed_total", listener="down",
                 reason="backend_down") == 1
    assert value(text, "portier_handshakes_total", listener="web", version="TLSv1.3",
                 resumed="no") == 1
    assert value(text, "portier_handshake_failures_total", listener="web",
                 reason="version_too_old") == 1
    assert value(text, "portier_handshake_duration_seconds_count", listener="web") == 1
    assert value(text, "portier_backend_connect_duration_seconds_count", listener="web") == 1
    # The certificate's not-after, to the second, as openssl reads it.
    cp = harness.run(["openssl", "x509", "-in", certs.ec.leaf, "-noout", "-enddate",
                      "-serial"], check=True)
    end = re.search(r"notAfter=(.*)", cp.out).group(1)
    serial = re.search(r"serial=(\w+)", cp.out).group(1)
    not_after = ssl.cert_time_to_seconds(end)
    assert value(text, "portier_certificate_expiry_timestamp_seconds", listener="web",
                 subject="localhost", serial=serial.upper()) == not_after
    # No secret: no key material, no file paths.
    assert "PRIVATE" not in text and certs.dir not in text and workdir.as_posix() not in text


def test_only_get_and_head_of_metrics(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port), glob=STATS)
    port = p.port("[stats]")
    status, h, body = http(port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert status == 200 and h["content-type"].startswith("text/plain; version=0.0.4")
    assert int(h["content-length"]) == len(body) and b"# TYPE portier_workers_up gauge" in body
    status, h, head_body = http(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and head_body == b"" and int(h["content-length"]) > 1000
    for path in (b"/", b"/metrics/", b"/metricsx", b"/../metrics", b"/favicon.ico"):
        status, _, _ = http(port, b"GET " + path + b" HTTP/1.1\r\n\r\n")
        assert status == 404, path
    for method in (b"POST", b"PUT", b"DELETE", b"OPTIONS", b"get"):
        status, h, _ = http(port, method + b" /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert status == 405 and h["allow"] == "GET, HEAD", method
    status, _, _ = http(port, b"GARBAGE\r\n\r\n")
    assert status == 400
    # A head that never ends is cut at its bound; one that never comes at
    # the deadline; neither keeps the endpoint from answering the next.
    status, _, _ = http(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000)
    assert status == 431
    with socket.create_connection(("127.0.0.1", port), timeout=20) as slow:
        slow.sendall(b"GET /metr")
        t0 = time.monotonic()
        assert scrape(port).startswith("# HELP")
        assert harness.read_to_eof(slow) == b""        # closed at the deadline
        assert time.monotonic() - t0 < 15 * harness.SLOW


def test_a_nul_byte_in_the_request_does_not_hide_its_end(portier, certs, http_backend):
    """The head's end is looked for by length: a NUL the client sent before
    it got no reply at all, only the close at the 5 s deadline."""
    p = portier(web(certs, http_backend.port), glob=STATS)
    port = p.port("[stats]")
    status, _, _ = http(port, b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404
    status, _, body = http(port, b"GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n")
    assert status == 200 and b"# TYPE portier_workers_up gauge" in body


def test_a_scrape_past_the_eight_open_at_once_gets_a_503(portier, certs, http_backend):
    """A worker keeps at most eight scrapes open; the ninth is told so (503
    with Retry-After), not closed without a word, and the endpoint answers
    again once the eight are gone."""
    p = portier(web(certs, http_backend.port), glob=STATS + [("workers", "1")])
    port = p.port("[stats]")
    held = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", port), timeout=10 * harness.SLOW)
            s.sendall(b"GET /metr")             # a head that does not end
            held.append(s)
        # One worker accepts in the order the connections came: the eight
        # are open when it takes this one.
        status, h, body = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503 and h.get("retry-after") == "1", (status, h, body)
        assert int(h["content-length"]) == len(body) and body == b"503 too many scrapes open at once\n"
    finally:
        for s in held:
            s.close()
    harness.wait_for(lambda: http(port, b"GET /metrics HTTP/1.0\r\n\r\n")[0] == 200, 5,
                     "the endpoint to answer once the eight are closed")


def test_bytes_after_the_request_head_do_not_cut_the_reply(portier, certs, http_backend):
    """A scraper that sends more than its head (a body, a pipelined request)
    and reads slowly must still get the whole reply and an orderly end, not
    a reset: the endpoint must not close with bytes of the client unread."""
    tcp_close, tcp_close_wait = 7, 8
    p = portier(web(certs, http_backend.port), glob=STATS)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # a slow reader
    s.settimeout(10 * harness.SLOW)
    try:
        s.connect(("127.0.0.1", p.port("[stats]")))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 8192\r\n\r\n" +
                  b"b" * 8192)
        # Read only once the endpoint has ended its side: its whole reply
        # handed to the kernel and its FIN queued behind (FIN-WAIT-1, the
        # slow reader holds both back), or a reset come.
        me = s.getsockname()[1]
        state = lambda: s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]

        def ended():
            cp = harness.run(["ss", "-tnH", "state", "fin-wait-1", "( sport = :%d and dport = :%d )"
                              % (p.port("[stats]"), me)])
            return state() in (tcp_close, tcp_close_wait) or cp.out.strip() != ""
        harness.wait_for(ended, 10, "the endpoint to end the scrape")
        data, err = harness.read_to_end(s, 1 << 20)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n")
    assert err is None and head.startswith(b"HTTP/1.1 200 ") and m, (err, head[:100])
    assert int(m.group(1)) == len(body) and body.endswith(b"\n"), (m.group(1), len(body))


def test_a_non_loopback_stats_address_is_a_warning(workdir, certs):
    text = harness.ini_text([("portier", [("stats", "0.0.0.0:9120")]),
                             ("tls", tls_items(certs.ec)),
                             listener("web", 8080, listen="127.0.0.1:8443")])
    rc, out, path = harness.portier_check(workdir, text)
    assert rc == 0, out
    assert re.search(r"check\.ini:2: \[portier\] stats: '0\.0\.0\.0:9120' is not a loopback "
                     r"address", out), out
    rc, out, _ = harness.portier_check(workdir, text.replace("0.0.0.0:9120", "127.0.0.1:9120"))
    assert rc == 0 and "warning" not in out, out
    rc, out, _ = harness.portier_check(workdir, text.replace("0.0.0.0:9120", "localhost:x"))
    assert rc == 1 and re.search(r"check\.ini:2: \[portier\] stats: ", out), out


def test_a_reload_moves_the_endpoint_and_lets_a_scrape_finish(portier, certs, http_backend):
    """A scrape begun before a reload is answered whole by the old worker,
    which waits for it as for a connection; a reload that changes `stats`
    moves the endpoint (the old address closes) and the counters go on."""
    p = portier(web(certs, http_backend.port), glob=STATS)
    old_port = p.port("[stats]")
    handshake(p.port("web"), certs.client_context())
    old_worker = p.worker_pid()
    pending = socket.create_connection(("127.0.0.1", old_port), timeout=20)
    pending.sendall(b"GET /metr")
    harness.wait_for(lambda: "portier_workers_up 1" in scrape(old_port), 5, "a scrape")
    p.reload()
    # The old worker no longer accepts, but waits for the scrape under way.
    assert harness.alive(old_worker), "the old worker left with a scrape open"
    pending.sendall(b"ics HTTP/1.1\r\n\r\n")
    reply = harness.read_to_eof(pending)
    pending.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), reply[:200]
    assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) == len(body)
    assert b"portier_config_generation 2" in body
    p.wait_log(r"worker \(pid %d\) of the previous configuration has finished" % old_worker)
    # Now move it.
    p.sections[0] = ("portier", [(k, v) for k, v in p.sections[0][1] if k != "stats"] +
                     [("stats", "127.0.0.1:0")])
    p.rewrite(web(certs, http_backend.port) + [listener("extra", http_backend.port,
                                                        protocol="http")])
    p.reload()
    # The same configured address (port 0) keeps its socket; a listener
    # added beside it does not disturb it.
    assert p.port("[stats]") == old_port
    text = scrape(old_port)
    assert value(text, "portier_connections_accepted_total", listener="web") == 1
    assert value(text, "portier_connections_accepted_total", listener="extra") == 0
    p.sections[0] = ("portier", [(k, v) for k, v in p.sections[0][1] if k != "stats"] +
                     [("stats", "127.0.0.2:0")])
    p.rewrite(web(certs, http_backend.port))
    p.reload()
    host, new_port = p.ports["[stats]"][0]
    assert host == "127.0.0.2"
    with socket.create_connection(("127.0.0.2", new_port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        got = harness.read_to_eof(s)
    assert got.startswith(b"HTTP/1.1 200") and b"portier_config_generation 4" in got
    assert not harness.port_open(old_port), "the old stats address still accepts"


def test_a_starttls_injection_counts_as_a_failed_handshake(portier, certs, closed_port):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("smtp", closed_port, mode="starttls", protocol="smtp",
                          extra=[("hostname", "mx.example.org")])], glob=STATS)
    with socket.create_connection(("127.0.0.1", p.port("smtp")), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        s.sendall(b"EHLO client.example.org\r\n")
        for _ in range(20):
            line = f.readline()
            if not line.startswith(b"250-"):
                break
        assert line.startswith(b"250 "), line
        s.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n")
        rest = f.read()
    assert b"MAIL" not in rest
    p.wait_log(r"\[smtp\] close .*command injection attempt")
    text = scrape(p.port("[stats]"))
    assert value(text, "portier_handshake_failures_total", listener="smtp",
                 reason="starttls_injection") == 1
    assert sum(v for (name, l), v in samples(text).items()
               if name == "portier_handshake_failures_total") == 1
    assert value(text, "portier_connections_closed_total", listener="smtp",
                 reason="injection") == 1
    # The backend was never tried.
    assert sum(v for (name, l), v in samples(text).items()
               if name == "portier_backend_connect_failures_total") == 0


# --------------------------------------------------------------------------
# A real Prometheus server

class Prometheus:
    """prometheus scraping 127.0.0.1:target every second, in its own temp dir,
    on a free loopback port; stopped by its PID."""

    def __init__(self, workdir, target):
        self.dir = os.path.join(str(workdir), "prometheus")
        os.makedirs(self.dir)
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: portier\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % target)

        def cmd(port):
            return ["prometheus", "--config.file=" + cfg,
                    "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                    "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"]
        self.proc, self.port = harness.start_listening(cmd, "prometheus", self.dir,
                                                      timeout=30)
        harness.wait_for(lambda: self._ready(), 30, "prometheus to be ready")

    def _get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                    timeout=5) as r:
            return r.read()

    def _ready(self):
        try:
            return b"Ready" in self._get("/-/ready")
        except OSError:
            return False

    def query(self, expr):
        """The value of an instant query that gives one sample; None if none."""
        out = json.loads(self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert out["status"] == "success", out
        res = out["data"]["result"]
        assert len(res) <= 1, res
        return float(res[0]["value"][1]) if res else None

    def wait_value(self, expr, want, timeout=20):
        """Poll until expr gives want; fail with what it gave."""
        seen = []

        def check():
            v = self.query(expr)
            seen.append(v)
            return v == want
        try:
            harness.wait_for(check, timeout, "%s == %s" % (expr, want), interval=0.25)
        except AssertionError:
            raise AssertionError("%s: wanted %s, Prometheus gave %s" % (expr, want, seen[-5:]))

    def scrapes_seen(self):
        return self.query('count_over_time(up{job="portier"}[1h])') or 0

    def stop(self):
        self.proc.stop()


@pytest.fixture
def prometheus(workdir):
    made = []

    def start(target):
        pm = Prometheus(workdir, target)
        made.append(pm)
        return pm
    yield start
    for pm in made:
        pm.stop()


def hs(listener_name):
    return 'sum(portier_handshakes_total{listener="%s"})' % listener_name


@needs_prometheus
def test_prometheus_sees_the_traffic_summed_over_workers_and_across_reloads(
        portier, certs, http_backend, prometheus):
    p = portier(web(certs, http_backend.port), glob=STATS + [("workers", "2")])
    harness.wait_for(lambda: len(p.workers()) == 2, 5, "two workers")
    pm = prometheus(p.port("[stats]"))
    pm.wait_value('up{job="portier"}', 1, timeout=30)
    pm.wait_value("portier_workers_up", 2)
    pm.wait_value(hs("web"), 0)
    ctx = certs.client_context()
    # N handshakes: the counter goes up by N exactly, whichever worker took
    # each. Both must take some for the sum to mean anything, and the kernel
    # may give every one to the worker that wakes first: the last ones are
    # made while the busier worker is stopped, so the other takes them.
    mark = p.mark()
    n = 10
    for _ in range(n):
        handshake(p.port("web"), ctx)
    harness.wait_for(lambda: len(re.findall(r"worker 1\.[12]: \[web\] close ",
                                            p.log()[mark:])) == n, 10, "ten close lines")
    tags = [int(t) for t in re.findall(r"worker 1\.([12]): \[web\] close ",
                                       p.log()[mark:])]
    busier = p.workers()[max((1, 2), key=tags.count)]
    os.kill(busier, signal.SIGSTOP)
    try:
        for _ in range(3):
            handshake(p.port("web"), ctx)
            n += 1
    finally:
        os.kill(busier, signal.SIGCONT)
    harness.wait_for(lambda: len(re.findall(r"worker 1\.[12]: \[web\] close ",
                                            p.log()[mark:])) == n, 10, "every close line")
    assert set(re.findall(r"worker 1\.([12]): \[web\] close ", p.log()[mark:])) == {"1", "2"}
    pm.wait_value(hs("web"), n)
    pm.wait_value('portier_connections_accepted_total{listener="web"}', n)
    pm.wait_value('portier_handshake_duration_seconds_count{listener="web"}', n)
    # A TLS 1.0 client: that reason, and only that one, goes up by one.
    pm.wait_value('portier_handshake_failures_total{listener="web",reason="version_too_old"}', 0)
    tls10_client(p.port("web"))
    pm.wait_value('portier_handshake_failures_total{listener="web",reason="version_too_old"}', 1)
    pm.wait_value('sum(portier_handshake_failures_total{listener="web"})', 1)
    # A reload: the counters stay (the region outlives the workers), the
    # generation and the reload count move, and new traffic adds on.
    p.rewrite(web(certs, http_backend.port))
    p.reload()
    pm.wait_value("portier_config_generation", 2)
    pm.wait_value('portier_reloads_total{result="ok"}', 1)
    pm.wait_value(hs("web"), n)
    for _ in range(3):
        handshake(p.port("web"), ctx)
    pm.wait_value(hs("web"), n + 3)
    pm.wait_value('portier_handshake_failures_total{listener="web",reason="version_too_old"}', 1)
    # Prometheus saw no counter reset over the whole run.
    pm.wait_value('resets(portier_handshakes_total{listener="web",version="TLSv1.3",'
                  'resumed="no"}[1h])', 0)
    # A reload the config refuses counts as failed.
    with open(p.ini, "a") as f:
        f.write("\n[broken]\nnonsense = 1\n")
    p.reload(expect="reload refused")
    pm.wait_value('portier_reloads_total{result="failed"}', 1)
    assert pm.query("portier_last_reload_timestamp_seconds") > time.time() - 600


def test_no_connection_fails_across_three_reloads_with_stats_on(portier, certs, http_backend):
    p = portier(web(certs, http_backend.port), glob=STATS + [("workers", "2")])
    port, sport = p.port("web"), p.port("[stats]")
    ctx = certs.client_context()
    lock = threading.Lock()
    results = {"ok": 0, "attempts": 0, "bad": [], "scrapes": 0}
    stop = threading.Event()

    def client():
        end = time.monotonic() + 60 * harness.SLOW
        while not stop.is_set() and time.monotonic() < end:
            with lock:
                results["attempts"] += 1
            try:
                out = harness.https_get(port, ctx, "/echo/r")[0]
            except Exception as e:          # noqa: BLE001 - every failure counts
                out = repr(e).encode()
            with lock:
                if b"200 OK" in out:
                    results["ok"] += 1
                else:
                    results["bad"].append(out[:80])

    def scraper():
        end = time.monotonic() + 60 * harness.SLOW
        while not stop.is_set() and time.monotonic() < end:
            try:
                scrape(sport)
                with lock:
                    results["scrapes"] += 1
            except Exception as e:          # noqa: BLE001
                with lock:
                    results["bad"].append(("scrape", repr(e)))
            stop.wait(0.05)

    threads = [threading.Thread(target=client) for _ in range(3)]
    threads.append(threading.Thread(target=scraper))
    for t in threads:
        t.start()
    try:
        for i in range(3):
            before = results["ok"]
            harness.wait_for(lambda: results["ok"] >= before + 10 or results["bad"], 15,
                             "answers before reload %d" % (i + 1))
            p.rewrite(web(certs, http_backend.port))
            p.reload()
        before = results["ok"]
        harness.wait_for(lambda: results["ok"] >= before + 10 or results["bad"], 15,
                         "answers after the last reload")
    finally:
        stop.set()
        for t in threads:
            t.join(30 * harness.SLOW)
    assert not any(t.is_alive() for t in threads), "a client thread hangs"
    assert results["bad"] == [], results["bad"][:5]
    assert results["ok"] == results["attempts"] and results["ok"] >= 40, results
    assert results["scrapes"] > 0
    text = scrape(sport)
    assert value(text, "portier_config_generation") == 4
    # Every handshake made is counted once: the clients' and nothing else.
    assert sum(v for (name, l), v in samples(text).items()
               if name == "portier_handshakes_total") == results["ok"]


@needs_prometheus
def test_the_shipped_alerting_rules_pass_promtool():
    cp = harness.run(["promtool", "check", "rules", RULES])
    assert cp.returncode == 0, cp.out + cp.err
    assert "SUCCESS: 6 rules found" in cp.out, cp.out


def series(name, labels, values):
    return {"series": "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in labels.items())),
            "values": values}


@needs_prometheus
def test_the_shipped_alerting_rules_fire_when_they_should(workdir):
    """promtool's rule unit tests over made-up series: a certificate 10 days
    from its end fires, one 30 days away does not; a listener where a third
    of the handshakes fail fires, one with 5% does not; a backend refusing
    fires, one that does not fails nothing; an instance whose scrape fails
    fires PortierDown, one that answers does not. (JSON is YAML.)"""
    cert = "portier_certificate_expiry_timestamp_seconds"
    hs_ok, hs_bad = "portier_handshakes_total", "portier_handshake_failures_total"
    bf = "portier_backend_connect_failures_total"
    tests = {
        "rule_files": [os.path.abspath(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                series(cert, {"listener": "web", "subject": "soon", "serial": "01"},
                       "864000x180"),
                series(cert, {"listener": "web", "subject": "later", "serial": "02"},
                       "2592000x180"),
                series(hs_ok, {"listener": "web", "version": "TLSv1.3", "resumed": "no"},
                       "0+120x180"),
                series(hs_bad, {"listener": "web", "reason": "version_too_old"}, "0+60x180"),
                series(hs_ok, {"listener": "api", "version": "TLSv1.3", "resumed": "no"},
                       "0+120x180"),
                series(hs_bad, {"listener": "api", "reason": "timeout"}, "0+6x180"),
                series(bf, {"listener": "web", "kind": "refused"}, "0+6x180"),
                series(bf, {"listener": "api", "kind": "refused"}, "0x180"),
                series("up", {"job": "portier", "instance": "a:9120"}, "0x180"),
                series("up", {"job": "portier", "instance": "b:9120"}, "1x180"),
            ],
            "alert_rule_test": [
                {"eval_time": "90m", "alertname": "PortierCertificateExpiresSoon",
                 "exp_alerts": [{
                     "exp_labels": {"severity": "warning", "listener": "web",
                                    "subject": "soon", "serial": "01"},
                     "exp_annotations": {
                         "summary": "portier certificate soon (web) expires within 14 days",
                         "description": "Serial 01 on listener web expires in 9d 22h 30m 0s. "
                                        "Renew it and reload portier (SIGHUP)."}}]},
                {"eval_time": "90m", "alertname": "PortierCertificateExpired",
                 "exp_alerts": []},
                {"eval_time": "40m", "alertname": "PortierHandshakeFailureRatioHigh",
                 "exp_alerts": [{
                     "exp_labels": {"severity": "warning", "listener": "web"},
                     "exp_annotations": {
                         "summary": "portier listener web: 33.33% of TLS handshakes fail",
                         "description": "See portier_handshake_failures_total by reason: "
                                        "version_too_old or no_shared_cipher point at old "
                                        "clients, timeout or plaintext_on_tls_port at "
                                        "scanners or a wrong port."}}]},
                {"eval_time": "30m", "alertname": "PortierBackendConnectFailures",
                 "exp_alerts": [{
                     "exp_labels": {"severity": "critical", "listener": "web",
                                    "kind": "refused"},
                     "exp_annotations": {
                         "summary": "portier listener web cannot reach its backend (refused)",
                         "description": "100m backend connect failures per second of kind "
                                        "refused; clients get the protocol's refusal (HTTP "
                                        "502, SMTP 421, ...)."}}]},
                # Workers all gone: the scrape fails (up 0), which is what
                # can be seen; the instance that answers does not fire.
                {"eval_time": "5m", "alertname": "PortierDown",
                 "exp_alerts": [{
                     "exp_labels": {"severity": "critical", "job": "portier",
                                    "instance": "a:9120"},
                     "exp_annotations": {
                         "summary": "portier on a:9120 does not answer its metrics scrape",
                         "description": "No worker serves there, or portier is stopped: "
                                        "check systemctl status portier and the log."}}]},
            ],
        }],
    }
    path = os.path.join(str(workdir), "rules_test.yml")
    with open(path, "w") as f:
        json.dump(tests, f, indent=1)
    cp = harness.run(["promtool", "test", "rules", path])
    assert cp.returncode == 0 and "SUCCESS" in cp.out, cp.out + cp.err
