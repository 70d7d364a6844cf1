"""SASL security layers through portier's IMAP and POP3 filters, with real
Cyrus IMAP/POP3 behind and Cyrus's imtest and pop3test in front.

DIGEST-MD5 with a layer (the clients allowed more than TLS's strength) wraps
every byte after the authentication's success in 4-byte-length buffers: the
filters must step aside, or sessions stall (IMAP) or break (POP3). Without a
layer the filters must stay on: Cyrus offers COMPRESS=DEFLATE, which the IMAP
filter hides from the client."""

import re

import pytest

import cyrus
import harness
from harness import listener, tls_items
from starttls_support import starttls_listener

# A stall costs the session's whole timeout; enough sessions that the old
# filters (a third to a half of IMAP sessions stalled, every POP3 one failed)
# cannot pass by luck.
SESSIONS = 8
TIMEOUT = 15


@pytest.fixture(scope="module")
def cyrus_server():
    c = cyrus.Cyrus()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def layer_portier(tmp_path_factory, certs, cyrus_server):
    p = harness.Portier(tmp_path_factory.mktemp("sasl-layers"), [
        ("tls", tls_items(certs.ec, certs.rsa)),
        starttls_listener("imap", "imap", cyrus_server.imap_port),
        listener("imaps", cyrus_server.imap_port, protocol="imap"),
        starttls_listener("pop3", "pop3", cyrus_server.pop3_port),
        listener("pop3s", cyrus_server.pop3_port, protocol="pop3"),
    ])
    yield p
    p.stop()


def imap_session(port, tls, layer):
    return cyrus.sasl_session("imtest", port, ["a1 SELECT INBOX", "a2 LOGOUT"], tls,
                              layer, timeout=TIMEOUT)


def pop3_session(port, tls, layer):
    return cyrus.sasl_session("pop3test", port, ["STAT", "QUIT"], tls, layer,
                              timeout=TIMEOUT)


def capability_line(out):
    """The capabilities after the login: in the authentication's OK (Cyrus
    without a layer), or the CAPABILITY response imtest then asks for."""
    m = (re.search(r"^S: A01 OK \[CAPABILITY .*$", out, re.M) or
         re.search(r"^S: \* CAPABILITY .*$", out.split("Authenticated.", 1)[-1], re.M))
    assert m, out
    return m.group(0)


@pytest.mark.parametrize("tls,name", [("implicit", "imaps"), ("starttls", "imap")])
def test_imap_layer_passes(layer_portier, tls, name):
    port = layer_portier.port(name)
    for i in range(SESSIONS):
        out = imap_session(port, tls, layer=True)
        assert "Success (privacy protection)" in out, out
        assert cyrus.digest_qop(out) == "auth-conf", out
        assert re.search(r"^a1 OK \[READ-WRITE\] Completed", out, re.M), (i, out)
        assert re.search(r"^a2 OK Completed", out, re.M), (i, out)
        # Inside the layer nothing is read, so nothing is hidden either.
        assert " COMPRESS=DEFLATE" in capability_line(out), out


@pytest.mark.parametrize("tls,name", [("implicit", "imaps"), ("starttls", "imap")])
def test_imap_no_layer_keeps_filter(layer_portier, tls, name):
    out = imap_session(layer_portier.port(name), tls, layer=False)
    assert "Success (no protection)" in out, out
    assert cyrus.digest_qop(out) == "auth", out
    assert re.search(r"^a1 OK \[READ-WRITE\] Completed", out, re.M), out
    cap = capability_line(out)
    assert " IDLE" in cap, cap
    assert "COMPRESS" not in cap and "STARTTLS" not in cap, cap


@pytest.mark.parametrize("tls,name", [("implicit", "pop3s"), ("starttls", "pop3")])
def test_pop3_layer_passes(layer_portier, tls, name):
    port = layer_portier.port(name)
    for i in range(SESSIONS):
        out = pop3_session(port, tls, layer=True)
        assert cyrus.digest_qop(out) == "auth-conf", out
        assert re.search(r"^\+OK Mailbox locked and ready", out.replace("S: ", ""), re.M), out
        assert re.search(r"^\+OK \d+ \d+\r?$", out, re.M), (i, out)   # STAT
        assert out.rstrip().endswith("Connection closed."), (i, out)


@pytest.mark.parametrize("tls,name", [("implicit", "pop3s"), ("starttls", "pop3")])
def test_pop3_no_layer(layer_portier, tls, name):
    out = pop3_session(layer_portier.port(name), tls, layer=False)
    assert cyrus.digest_qop(out) == "auth", out
    assert re.search(r"^\+OK \d+ \d+\r?$", out, re.M), out

