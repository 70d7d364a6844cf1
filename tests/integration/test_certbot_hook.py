"""contrib/certbot/portier-reload, run as certbot runs a deploy hook
(RENEWED_LINEAGE and RENEWED_DOMAINS set) against a detached portier whose
certificate lives in that lineage: a good renewal is served after the hook,
a broken one is refused by `portier -t` with the reason on stderr and
portier keeps serving what it had, and a lineage the config does not use
changes nothing."""

import os
import shutil
import socket
import ssl

import harness
from harness import listener
from test_keys import Detached

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOOK = os.path.join(ROOT, "contrib", "certbot", "portier-reload")


def served(port):
    """The DER of the certificate portier serves to a client that checks
    nothing (the hook's job is to make portier serve the new one)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10 * harness.SLOW) as s:
        with ctx.wrap_socket(s, server_hostname="mail.example.org") as t:
            return t.getpeercert(binary_form=True)


def renew(lineage, leaf, key=None):
    """What certbot does to a lineage: new files at the same paths."""
    shutil.copy(leaf.cert, os.path.join(lineage, "fullchain.pem.new"))
    shutil.copy(key or leaf.key, os.path.join(lineage, "privkey.pem.new"))
    for n in ("fullchain.pem", "privkey.pem"):
        os.replace(os.path.join(lineage, n + ".new"), os.path.join(lineage, n))


def hook(d, lineage, workdir):
    """Run the hook as certbot would; returns (rc, stdout, stderr). A
    sanitizer report of the `portier -t` it runs lands in workdir."""
    asan = os.path.join(str(workdir), "hook-asan")
    env = {"RENEWED_LINEAGE": lineage, "RENEWED_DOMAINS": "mail.example.org",
           "PORTIER": harness.PORTIER_BIN, "PORTIER_CONFIG": d.ini,
           "PORTIER_PID_FILE": d.pid_file,
           "ASAN_OPTIONS": "log_path=" + asan, "UBSAN_OPTIONS": "log_path=" + asan}
    cp = harness.run([HOOK], env=env, timeout=60)
    reports = [n for n in os.listdir(str(workdir)) if n.startswith("hook-asan")]
    assert not reports, "".join(open(os.path.join(str(workdir), n)).read() for n in reports)
    return cp.returncode, cp.out, cp.err


def test_deploy_hook_reloads_good_renewals_only(workdir, certs, http_backend):
    lineage = os.path.join(str(workdir), "live", "mail.example.org")
    os.makedirs(lineage)
    renew(lineage, certs.ec)
    log = os.path.join(str(workdir), "file.log")
    d = Detached(workdir, [("tls", [("cert", os.path.join(lineage, "fullchain.pem")),
                                    ("key", os.path.join(lineage, "privkey.pem"))]),
                           listener("web", http_backend.port, protocol="http")],
                 [("log", log)])

    def reloads():
        return open(log).read().count("reloaded")

    try:
        assert served(d.port) == certs.ec.der

        # A renewal (here to an RSA key): checked, then reloaded.
        renew(lineage, certs.rsa)
        rc, out, err = hook(d, lineage, workdir)
        assert rc == 0, out + err
        assert "portier (pid %d) reloads for mail.example.org" % d.master in out, out
        harness.wait_for(lambda: reloads() == 1, 10 * harness.SLOW, "the reload")
        harness.wait_for(lambda: harness.old_workers_left(open(log).read()), 10,
                         "the old workers to stop accepting")
        assert served(d.port) == certs.rsa.der

        # A renewal whose key does not match: -t refuses it, the reason
        # (file, line, key) is on stderr, and portier is not touched.
        renew(lineage, certs.ec, key=certs.wrongkey)
        rc, out, err = hook(d, lineage, workdir)
        assert rc == 1, out + err
        assert "portier -t refused %s after the renewal of mail.example.org" % d.ini in err, err
        assert "%s:" % d.ini in err and "key" in err, err
        assert "private key does not match the certificate" in err, err
        assert reloads() == 1 and "reload refused" not in open(log).read()
        assert served(d.port) == certs.rsa.der

        # A lineage portier does not use: nothing happens.
        renew(lineage, certs.ec)
        rc, out, err = hook(d, os.path.join(str(workdir), "live", "other.example.org"),
                            workdir)
        assert rc == 0, out + err
        assert "uses nothing from" in out, out
        assert reloads() == 1
        assert served(d.port) == certs.rsa.der
    finally:
        d.stop()


def test_deploy_hook_without_a_running_portier_says_so(workdir, certs):
    lineage = os.path.join(str(workdir), "live", "mail.example.org")
    os.makedirs(lineage)
    renew(lineage, certs.ec)
    ini = os.path.join(str(workdir), "portier.ini")
    with open(ini, "w") as f:
        f.write(harness.ini_text([("tls", [("cert", os.path.join(lineage, "fullchain.pem")),
                                           ("key", os.path.join(lineage, "privkey.pem"))]),
                                  listener("web", 1, protocol="http")]))

    class D:
        pass
    d = D()
    d.ini, d.pid_file = ini, os.path.join(str(workdir), "none.pid")
    rc, out, err = hook(d, lineage, workdir)
    assert rc == 1, out + err
    assert "no pid in %s: is portier running" % d.pid_file in err, err


def test_deploy_hook_with_a_config_it_cannot_read_fails(workdir, certs):
    """A wrong PORTIER_CONFIG (a missing file, a directory) fails the hook
    with the reason; it passed as a config naming nothing of the lineage
    ("portier not reloaded", exit 0), so a renewal was never served and
    certbot said nothing."""
    lineage = os.path.join(str(workdir), "live", "mail.example.org")
    os.makedirs(lineage)
    renew(lineage, certs.ec)

    class D:
        pass
    d = D()
    d.pid_file = os.path.join(str(workdir), "none.pid")
    for ini in (os.path.join(str(workdir), "missing.ini"), str(workdir)):
        d.ini = ini
        rc, out, err = hook(d, lineage, workdir)
        assert rc == 1, out + err
        assert err == ("portier-reload: cannot read %s (set PORTIER_CONFIG); portier not "
                       "reloaded after the renewal of mail.example.org\n" % ini), err
        assert out == "", out
