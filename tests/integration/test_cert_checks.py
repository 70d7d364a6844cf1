"""What portier says of a cert file that cannot serve, at -t and at start
(the load checks of tlsctx_cert.c, docs/configuration.md "Certificates and
SNI"): a file holding only a private key, a certificate not valid yet, one
that names no DNS host; each an error at its cert line, and the start
refused. A certificate named by its subject CN alone is served, and chosen
by SNI under that name."""

import os
import random
import re
import time

import harness
from harness import listener, s_client
from test_config_check import base, check_error

NO_CONF = {"OPENSSL_CONF": "/dev/null"}


def signed(certs, workdir, name, subj, ext=None):
    """A leaf of the test CA for subj with the extension lines ext (none:
    no extensions at all), then the CA, in one file; and its key. 90 days
    keep it clear of the expiry warning."""
    d = str(workdir)
    key, csr, leaf = (os.path.join(d, name + s) for s in (".key", ".csr", ".leaf.pem"))
    harness.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-out", key], env=NO_CONF, check=True)
    harness.run(["openssl", "req", "-new", "-key", key, "-subj", subj, "-out", csr],
                env=NO_CONF, check=True)
    cmd = ["openssl", "x509", "-req", "-in", csr, "-CA", certs.ca,
           "-CAkey", os.path.join(certs.dir, "ca.key"),
           "-set_serial", str(random.randrange(1 << 32, 1 << 62)), "-days", "90", "-out", leaf]
    if ext is not None:
        extfile = os.path.join(d, name + ".ext")
        with open(extfile, "w") as f:
            f.write("\n".join(ext) + "\n")
        cmd += ["-extfile", extfile]
    harness.run(cmd, env=NO_CONF, check=True)
    path = os.path.join(d, name + ".pem")
    with open(leaf) as f, open(certs.ca) as ca, open(path, "w") as out:
        out.write(f.read() + ca.read())
    return path, key


def refused(workdir, text, needle, key, said):
    """-t: exactly one error, at the line of needle, [tls] key: said; a
    start with the same file is refused with the same line."""
    found, out = check_error(workdir, text, needle, "tls", key, [re.escape(said) + "$"])
    errors = [l for l in out.splitlines() if re.search(r"\.ini:\d+: ", l) and
              not l.startswith("warning: ")]
    assert errors == found and len(found) == 1, out
    cp = harness.run([harness.PORTIER_BIN, "-f", "-c", os.path.join(str(workdir), "check.ini")],
                     timeout=30)
    assert cp.returncode == 1, cp.err
    assert found[0] in cp.err and "configuration refused, not starting" in cp.err, cp.err


def test_a_cert_file_holding_only_a_private_key(workdir, certs):
    """The key named on the cert line (with or without its key line): the
    cert line says what it should have held, and nothing else is said."""
    said = "%s: no PEM certificate in it; expected -----BEGIN CERTIFICATE-----" % certs.ec.key
    for tls in (["cert = " + certs.ec.key], ["cert = " + certs.ec.key, "key = " + certs.ec.key]):
        refused(workdir, base(certs, tls_lines=tls), "cert = ", "cert", said)


def test_a_certificate_not_valid_yet(workdir, portier, certs, http_backend):
    """notBefore tomorrow (a clock behind, or a certificate issued ahead):
    an error at start, and a reload to it is refused, the running
    certificate still served."""
    start = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 86400))
    leaf = certs._leaf("future", "ec", ["localhost"],
                       dates=["-startdate", start, "-days", "90"])
    future, key = leaf.cert, leaf.key
    refused(workdir, base(certs, tls_lines=["cert = " + future, "key = " + key]), "cert = ",
            "cert", "%s: certificate 1 is not valid yet; check the clock or the certificate"
            % future)

    p = portier([listener("web", http_backend.port, protocol="http",
                          extra=[("cert", certs.ec.cert), ("key", certs.ec.key)])])
    p.rewrite([listener("web", http_backend.port, protocol="http",
                        extra=[("cert", future), ("key", key)])])
    mark = p.reload(expect="reload refused")
    assert "%s: certificate 1 is not valid yet" % future in p.log()[mark:], p.log()[mark:]
    cp = s_client(p.port("web"), ["-showcerts"])
    assert harness.first_pem_der(cp.out) == certs.ec.der, cp.out + cp.err
    p.stop()


def test_a_certificate_that_names_no_host(workdir, certs):
    """Neither subjectAltName nor CN: a certificate no client can check
    against a name is an error, not a certificate that SNI silently never
    picks."""
    nameless, key = signed(certs, workdir, "nameless", "/O=portier test")
    refused(workdir, base(certs, tls_lines=["cert = " + nameless, "key = " + key]), "cert = ",
            "cert", "%s: the certificate names no DNS host (no subjectAltName, no CN); "
            "clients cannot verify it" % nameless)


def test_a_subject_alt_name_without_a_dns_entry(workdir, certs):
    """A subjectAltName of addresses only, beside a CN: the CN does not
    count (configuration.md), so no DNS host is named, and the error says
    why rather than that there is no subjectAltName and no CN."""
    iponly, key = signed(certs, workdir, "iponly", "/CN=ip.example.org",
                         ["subjectAltName = IP:127.0.0.1"])
    refused(workdir, base(certs, tls_lines=["cert = " + iponly, "key = " + key]), "cert = ",
            "cert", "%s: the certificate names no DNS host: its subjectAltName has no DNS "
            "entry, and a CN does not count beside one" % iponly)


def test_a_certificate_named_by_its_cn_alone(workdir, portier, certs, http_backend):
    """No subjectAltName: the subject CN is its name. -t passes it with a
    warning (browsers refuse such a certificate), and SNI for that name
    picks it over the certificate listed first."""
    cn_only, key = signed(certs, workdir, "cnonly", "/CN=cn.example.org")
    rc, out, _ = harness.portier_check(
        workdir, base(certs, tls_lines=["cert = " + cn_only, "key = " + key]))
    assert rc == 0 and "error" not in out, out
    warns = [l for l in out.splitlines() if l.startswith("warning: ")]
    assert len(warns) == 1, out
    assert warns[0].endswith(
        "%s: the certificate names cn.example.org by its subject CN alone (no "
        "subjectAltName): browsers refuse it, clients built on OpenSSL still accept "
        "it; reissue it with a subjectAltName" % cn_only), out
    p = portier([listener("web", http_backend.port, protocol="http",
                          extra=[("cert", certs.ec.cert), ("key", certs.ec.key),
                                 ("cert", cn_only), ("key", key)])])
    with open(cn_only) as f:
        want = harness.first_pem_der(f.read())
    for name, der in (("cn.example.org", want), ("localhost", certs.ec.der)):
        cp = s_client(p.port("web"), servername=name)
        assert harness.first_pem_der(cp.out) == der, (name, cp.out + cp.err)
    p.stop()

