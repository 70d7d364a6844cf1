"""The exposition's label values are whole UTF-8: a served certificate whose
common name is 64 characters of four bytes each (within the X.509 upper
bound of 64 characters) must not cut its last character in half, which
makes Prometheus's parser refuse the whole scrape ("invalid UTF-8 label
value"). Fails at 8276e48: the subject is cut at 255 bytes."""

import os
import shutil

import pytest

import harness
from test_metrics import http

CN = "\U0001F600" * 64   # 256 bytes of UTF-8


def long_cn_leaf(workdir):
    key = os.path.join(str(workdir), "cn.key")
    cert = os.path.join(str(workdir), "cn.pem")
    harness.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                 "-days", "30", "-utf8", "-subj", "/CN=" + CN],
                env={"OPENSSL_CONF": "/dev/null"}, check=True)
    return cert, key


def test_a_long_multibyte_common_name_keeps_the_scrape_valid_utf8(portier, workdir,
                                                                 closed_port):
    cert, key = long_cn_leaf(workdir)
    p = portier([("tls", [("cert", cert), ("key", key)]),
                 harness.listener("web", closed_port)],
                glob=[("stats", "127.0.0.1:0")])
    status, _, body = http(p.port("[stats]"), b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    lines = [l for l in body.split(b"\n")
             if l.startswith(b"portier_certificate_expiry_timestamp_seconds{")]
    assert len(lines) == 1, lines
    # The name may be shortened, but only by whole characters.
    text = lines[0].decode("utf-8")
    subject = text.split('subject="', 1)[1].split('"', 1)[0]
    assert subject and CN.startswith(subject), subject
    # Cut at 255 bytes, only the half character goes: 63 of the 64 stay.
    assert len(subject) == 63, subject
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed: the UTF-8 check above is the test")
    cp = harness.run(["promtool", "check", "metrics"], input=body)
    assert cp.returncode == 0, cp.out + cp.err
