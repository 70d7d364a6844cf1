"""ticket_keys = FILE: nodes that share a key file resume each other's
session tickets (TLS 1.2 and 1.3), keep resuming tickets of a key that
rotation moved down the file (and issue new ones under the first), and a
node with another file falls back to a full handshake. The client is
openssl s_client with -sess_out / -sess_in, as an admin would check it."""

import base64
import os
import re

import pytest

import harness
from harness import listener, s_client, tls_items

REQUEST = b"GET /echo/get HTTP/1.0\r\nHost: localhost\r\n\r\n"
VERSIONS = {"1.2": "-tls1_2", "1.3": "-tls1_3"}


def new_key():
    return os.urandom(80)


def write_keys(path, keys):
    with open(path + ".tmp", "w") as f:
        for k in keys:
            f.write(base64.b64encode(k).decode() + "\n")
    os.chmod(path + ".tmp", 0o600)
    os.rename(path + ".tmp", path)


def node(portier, certs, backend, keyfile, name):
    tls = tls_items(certs.ec)
    if keyfile:
        tls.append(("ticket_keys", keyfile))
    return portier([("tls", tls), listener("web", backend.port, protocol="http")], name=name)


def connect(p, certs, version, sess_in=None, sess_out=None, name="web"):
    """One request through p's listener name; returns (reused, s_client
    output)."""
    args = [VERSIONS[version], "-ign_eof"]
    if sess_in:
        args += ["-sess_in", sess_in]
    if sess_out:
        args += ["-sess_out", sess_out]
    cp = s_client(p.port(name), args, stdin=REQUEST, ca=certs.ca)
    assert "method=GET" in cp.out, cp.out + cp.err
    m = re.search(r"(?m)^(New|Reused), (TLSv1\.[23]),", cp.out)
    assert m, cp.out
    assert m.group(2) == "TLSv" + version, m.group(0)
    return m.group(1) == "Reused", cp.out


def key_name_in(text):
    """The first 16 bytes of the ticket in a printed session: the name of
    the key that sealed it."""
    text = text.split("TLS session ticket:", 1)
    assert len(text) == 2, text
    hexbytes = re.findall(r"(?m)^\s*[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]+)+)", text[1])
    raw = bytes.fromhex("".join(h.replace("-", " ") for h in hexbytes).replace(" ", ""))
    assert len(raw) >= 16, text
    return raw[:16]


def ticket_key_name(sess):
    """The key name of the ticket in a -sess_out file."""
    cp = harness.run(["openssl", "sess_id", "-in", sess, "-noout", "-text"], check=True)
    return key_name_in(cp.out)


def renewed_key_name(version, out, sess_out):
    """The key name of the ticket a resumed connection got. TLS 1.3 sends
    it after the handshake (s_client writes it to -sess_out); a renewed TLS
    1.2 ticket comes within the handshake, and s_client prints that
    session (it writes -sess_out only after a full handshake)."""
    if version == "1.3":
        return ticket_key_name(sess_out)
    return key_name_in(out)


@pytest.fixture
def keydir(workdir):
    d = os.path.join(str(workdir), "keys")
    os.mkdir(d, 0o700)
    return d


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_two_nodes_with_one_file_resume_each_others_tickets(portier, certs, http_backend,
                                                             keydir, version):
    keyfile = os.path.join(keydir, "ticket.keys")
    k1 = new_key()
    write_keys(keyfile, [k1])
    a = node(portier, certs, http_backend, keyfile, "a")
    b = node(portier, certs, http_backend, keyfile, "b")
    sess = os.path.join(keydir, "sess.pem")
    reused, _ = connect(a, certs, version, sess_out=sess)
    assert not reused
    assert ticket_key_name(sess) == k1[:16]
    reused, out = connect(b, certs, version, sess_in=sess)
    assert reused, "node b did not resume node a's ticket:\n" + out
    b.wait_log(r"close client=\S+ sni=localhost tls=TLSv%s .*resumed=yes" % re.escape(version))
    # And the other way round.
    sess2 = os.path.join(keydir, "sess2.pem")
    assert not connect(b, certs, version, sess_out=sess2)[0]
    reused, out = connect(a, certs, version, sess_in=sess2)
    assert reused, out


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_ticket_resumes_only_on_the_listener_that_issued_it(portier, certs, http_backend,
                                                              keydir, version):
    """Two listeners that share [tls] ticket_keys can open each other's
    tickets; a session of [web] offered to [other] (a client sent there by
    someone on the path, SNI and all) must not resume: it would skip the
    certificate, which [other]'s does not match, and reach [other]'s
    backend. It did, on both versions. [web] itself resumes it."""
    keyfile = os.path.join(keydir, "ticket.keys")
    write_keys(keyfile, [new_key()])
    p = portier([("tls", tls_items(certs.ec) + [("ticket_keys", keyfile)]),
                 listener("web", http_backend.port, protocol="http"),
                 listener("other", http_backend.port, protocol="http")])
    sess = os.path.join(keydir, "sess.pem")
    assert not connect(p, certs, version, sess_out=sess)[0]
    mark = p.mark()
    reused, out = connect(p, certs, version, sess_in=sess, name="other")
    assert not reused, "[other] resumed [web]'s session:\n" + out
    p.wait_log(r"\[other\] close client=\S+ sni=localhost tls=TLSv%s .*resumed=no"
               % re.escape(version), since=mark)
    reused, out = connect(p, certs, version, sess_in=sess)
    assert reused, out


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_rotation_keeps_old_tickets_and_issues_new_ones(portier, certs, http_backend,
                                                         keydir, version):
    keyfile = os.path.join(keydir, "ticket.keys")
    k1, k2, k3 = new_key(), new_key(), new_key()
    write_keys(keyfile, [k1])
    a = node(portier, certs, http_backend, keyfile, "a")
    old = os.path.join(keydir, "old.pem")
    connect(a, certs, version, sess_out=old)
    assert ticket_key_name(old) == k1[:16]

    # A new key on top, the old one second: reload.
    write_keys(keyfile, [k2, k1])
    a.reload()
    renewed = os.path.join(keydir, "renewed.pem")
    reused, out = connect(a, certs, version, sess_in=old, sess_out=renewed)
    assert reused, "a ticket of the second key did not resume:\n" + out
    assert renewed_key_name(version, out, renewed) == k2[:16], \
        "the new ticket is not under the first key:\n" + out

    # The oldest key dropped: its tickets no longer resume, the handshake
    # still succeeds; the renewed one still does.
    write_keys(keyfile, [k3, k2])
    a.reload()
    reused, out = connect(a, certs, version, sess_in=old)
    assert not reused, out
    if version == "1.3":
        reused, out = connect(a, certs, version, sess_in=renewed)
        assert reused, out


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_node_with_another_file_does_not_resume(portier, certs, http_backend, keydir,
                                                  version):
    f1, f2 = os.path.join(keydir, "one.keys"), os.path.join(keydir, "two.keys")
    write_keys(f1, [new_key()])
    write_keys(f2, [new_key()])
    a = node(portier, certs, http_backend, f1, "a")
    b = node(portier, certs, http_backend, f2, "b")
    c = node(portier, certs, http_backend, None, "c")      # the per-node ratchet
    sess = os.path.join(keydir, "sess.pem")
    connect(a, certs, version, sess_out=sess)
    for other in (b, c):
        reused, out = connect(other, certs, version, sess_in=sess)
        assert not reused, out


def check(workdir, certs, keyfile_line):
    text = harness.ini_text([("tls", tls_items(certs.ec) + [("ticket_keys", keyfile_line)]),
                             listener("web", 8080, protocol="http")])
    return harness.portier_check(workdir, text)


def test_bad_key_files_are_refused(workdir, certs, keydir):
    path = os.path.join(keydir, "t.keys")
    write_keys(path, [new_key()])
    rc, out, _ = check(workdir, certs, path)
    assert rc == 0, out

    os.chmod(path, 0o644)
    rc, out, ini = check(workdir, certs, path)
    assert rc == 1, out
    assert re.search(r"%s:\d+: \[tls\] ticket_keys: %s is readable by everyone" % (
        re.escape(ini), re.escape(path)), out), out

    with open(path, "w") as f:
        f.write(base64.b64encode(new_key()).decode() + "\n" + "bm90IGEga2V5\n")
    os.chmod(path, 0o600)
    rc, out, _ = check(workdir, certs, path)
    assert rc == 1 and "%s:2: not a key: expected base64 of 80 (or 48) bytes" % path in out, out

    open(path, "w").close()
    rc, out, _ = check(workdir, certs, path)
    assert rc == 1 and "%s is empty" % path in out, out


def test_a_broken_file_refuses_the_reload_and_keeps_the_keys(portier, certs, http_backend,
                                                             keydir):
    keyfile = os.path.join(keydir, "ticket.keys")
    write_keys(keyfile, [new_key()])
    a = node(portier, certs, http_backend, keyfile, "a")
    sess = os.path.join(keydir, "sess.pem")
    connect(a, certs, "1.3", sess_out=sess)
    with open(keyfile, "w") as f:
        f.write("garbage\n")
    a.reload(expect="reload refused")
    assert re.search(r"%s:1: not a key" % re.escape(keyfile), a.log()), a.log()
    reused, out = connect(a, certs, "1.3", sess_in=sess)
    assert reused, out


ROTATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                      "ticket-keys", "rotate")


def key_lines(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def test_rotate_script(workdir, certs, keydir):
    path = os.path.join(keydir, "ticket.keys")
    harness.run([ROTATE, path], check=True)            # a missing file: one key
    first = key_lines(path)
    assert len(first) == 1 and len(base64.b64decode(first[0], validate=True)) == 80
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    seen = list(first)
    for i in range(4):
        harness.run([ROTATE, path], check=True)
        now = key_lines(path)
        assert now[1:] == seen[:2], (now, seen)         # KEEP 3: newest two stay
        assert now[0] not in seen
        seen = now
    assert len(seen) == 3
    assert os.stat(path).st_mode & 0o777 == 0o640       # mode kept
    harness.run([ROTATE, path, "2"], check=True)
    assert len(key_lines(path)) == 2
    assert harness.run([ROTATE, path, "1"]).returncode == 2
    # portier reads at most 64 keys from the file: a KEEP above that would
    # one day make a file the reload that needs it refuses.
    for keep in ("65", "100", "007"):
        cp = harness.run([ROTATE, path, keep])
        assert cp.returncode == 2 and "KEEP must be a number from 2 to 64" in cp.err, cp.err
    assert len(key_lines(path)) == 2
    assert [f for f in os.listdir(keydir) if f.startswith(".ticket-keys")] == []
    rc, out, _ = check(workdir, certs, path)            # portier takes it
    assert rc == 0, out
