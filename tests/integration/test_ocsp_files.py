"""ocsp = FILE when the file, or the cert file it pairs with, is not what
it should be, and when a stapled response grows old under a running
portier: a cert file without the issuer the response is checked against,
an empty file (a fetch that truncated it and failed), a response past its
nextUpdate at a reload and at a start, and one without a nextUpdate, which
is stapled for a day after its thisUpdate. At start and on -t each is an error at the ocsp line, but
for the response that is only out of date, a warning; on a reload each is a
warning, and the certificate is served without a staple.
test_ocsp.py has the responses that fit and the lapse itself."""

import os
import re

import harness
from harness import listener
from test_ocsp import FAKETIME, respond, status, web


def config(workdir, sections, name="check.ini"):
    """The config file of sections (with log = stderr) and its text."""
    text = harness.ini_text([("portier", [("log", "stderr")])] + list(sections))
    ini = os.path.join(str(workdir), name)
    with open(ini, "w") as f:
        f.write(text)
    return ini, text


def refused_at_start(workdir, sections, ocsp, why, env=None):
    """-t and a start both exit 1 with INI:LINE: [web] ocsp: OCSP: why, at
    the ocsp line; the start also says it is not starting."""
    ini, text = config(workdir, sections)
    line = text.splitlines().index("ocsp = %s" % ocsp) + 1
    want = "%s:%d: [web] ocsp: %s: %s" % (ini, line, ocsp, why)
    for args in (["-t"], ["-f"]):
        cp = harness.run([harness.PORTIER_BIN] + args + ["-c", ini], timeout=30, env=env)
        assert cp.returncode == 1, cp.out + cp.err
        # Every line at a line of the file: this one alone.
        at = [l for l in cp.err.splitlines() if re.match(r"(error: )?%s:\d+:" % re.escape(ini), l)]
        assert at == [want], (want, cp.err)
    assert "configuration refused, not starting" in cp.err, cp.err


def warned_at_start(workdir, portier, sections, ocsp, why, env=None):
    """-t exits 0 and a start goes on, each with the one warning
    INI:LINE: [web] ocsp: OCSP: why; this certificate goes without a
    staple, at the ocsp line; [web] serves without a staple."""
    ini, text = config(workdir, sections)
    line = text.splitlines().index("ocsp = %s" % ocsp) + 1
    tail = "; this certificate goes without a staple"
    cp = harness.run([harness.PORTIER_BIN, "-t", "-c", ini], timeout=30, env=env)
    assert cp.returncode == 0, cp.out + cp.err
    at = [l for l in (cp.out + cp.err).splitlines() if "%s:" % ini in l]
    assert at == ["warning: %s:%d: [web] ocsp: %s: %s%s" % (ini, line, ocsp, why, tail),
                  "%s: configuration OK (1 listeners, with warnings)" % ini], cp.out + cp.err
    p = portier(sections, env=env)
    assert re.search(r"%s:\d+: \[web\] ocsp: %s: %s%s$" % (re.escape(p.ini), re.escape(ocsp),
                                                          re.escape(why), re.escape(tail)),
                     p.log(), re.M), p.log()
    for v in ("-tls1_2", "-tls1_3"):
        assert status(p, "web", v) is None
    return p


def reload_warns(p, ocsp, why):
    """A reload goes on; it warns ocsp: OCSP: why; this certificate goes
    without a staple, and [web] staples nothing after it."""
    mark = p.reload()
    said = p.log()[mark:]
    assert re.search(r"\[web\] ocsp: %s: %s; this certificate goes without a staple$"
                     % (re.escape(ocsp), why), said, re.M), said
    assert status(p, "web") is None
    assert status(p, "web", "-tls1_2") is None
    return mark


def leaf_only(certs, workdir):
    """certs.ec's leaf alone in a cert file, as a renewal may leave it
    (certbot's cert.pem rather than fullchain.pem)."""
    path = os.path.join(str(workdir), "leaf-only.pem")
    with open(certs.ec.leaf) as f, open(path, "w") as out:
        out.write(f.read())
    return path


def test_a_cert_file_without_its_issuer_cannot_be_stapled(workdir, portier, certs,
                                                         http_backend):
    """The response is checked against the certificate after the leaf: a
    cert file with the leaf only is an error at the ocsp line that names
    the cert file and says what to do, and on a reload a warning."""
    ocsp = respond(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"), "-ndays", "2")
    lone = leaf_only(certs, workdir)
    why = ("%s holds no issuer certificate after the leaf, and the response cannot be "
           "checked without it; append the issuer" % lone)
    alone = listener("web", http_backend.port, protocol="http",
                     extra=[("cert", lone), ("key", certs.ec.key), ("ocsp", ocsp)])
    refused_at_start(workdir, [alone], ocsp, why)
    # The same leaf alone without ocsp is a good configuration: the
    # refusal is the staple's.
    ini, _ = config(workdir, [listener("web", http_backend.port, protocol="http",
                                       extra=[("cert", lone), ("key", certs.ec.key)])],
                    name="nostaple.ini")
    cp = harness.run([harness.PORTIER_BIN, "-t", "-c", ini], timeout=30)
    assert cp.returncode == 0, cp.err

    p = portier([web(certs, http_backend, ocsp)])
    assert status(p, "web")[:2] == ("successful", "good")
    p.rewrite([alone])
    reload_warns(p, ocsp, re.escape(why))
    p.stop()


def test_an_empty_ocsp_file(workdir, portier, certs, http_backend):
    """A fetch that truncated the file and then failed leaves it empty."""
    ocsp = os.path.join(str(workdir), "ec.ocsp")
    open(ocsp, "w").close()
    refused_at_start(workdir, [web(certs, http_backend, ocsp)], ocsp, "empty")

    respond(certs, certs.ec, ocsp, "-ndays", "2")
    p = portier([web(certs, http_backend, ocsp)])
    assert status(p, "web")[:2] == ("successful", "good")
    open(ocsp, "w").close()
    reload_warns(p, ocsp, "empty")
    p.stop()


def faked_clock(workdir, offset):
    """The environment that runs portier on a clock moved by offset
    ("+2d"), the file that moves it, as test_ocsp.py's lapse does. File
    times stay true (NO_FAKE_STAT): a moved clock would move the ocsp
    file's mtime too, and the master would reload for a file that did not
    change."""
    assert os.path.exists(FAKETIME), "libfaketime is not installed (package faketime)"
    clock = os.path.join(str(workdir), "faketime")
    with open(clock, "w") as f:
        f.write(offset + "\n")
    return clock, {"LD_PRELOAD": FAKETIME, "FAKETIME_TIMESTAMP_FILE": clock,
                   "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                   "NO_FAKE_STAT": "1", "ASAN_OPTIONS": "verify_asan_link_order=0",
                   "PORTIER_TEST_EXPIRY_S": "0.5"}


def test_a_lapsed_staple_at_the_next_reload_and_the_next_start(workdir, portier, certs,
                                                               http_backend):
    """A staple past its nextUpdate is no longer sent (test_ocsp.py). The
    next reload with the same file warns, says why, and goes on; the
    master's lapse line is not said again. A start (a reboot, a restart
    after a crash) with that file warns the same and serves without the
    staple: it was refused, which kept the whole service down for want of
    an optional staple until a new response was fetched."""
    clock, env = faked_clock(workdir, "+0d")
    ocsp = respond(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"), "-ndays", "1")
    p = portier([web(certs, http_backend, ocsp)], env=env)
    assert status(p, "web")[:2] == ("successful", "good")
    mark = p.mark()
    with open(clock, "w") as f:
        f.write("+2d\n")
    p.wait_log(r"\[web\] OCSP response %s .* passed its nextUpdate" % re.escape(ocsp),
               timeout=10 * harness.SLOW, since=mark)
    expired = (r"expired: its nextUpdate \d{4}-\d\d-\d\d \d\d:\d\d UTC has passed; "
               r"fetch a new one")
    after = reload_warns(p, ocsp, expired)
    assert "passed its nextUpdate" not in p.log()[after:], p.log()[after:]
    p.stop()
    m = re.search(expired, p.log()[after:])
    warned_at_start(workdir, portier, [web(certs, http_backend, ocsp)], ocsp, m.group(0),
                    env=env)


def test_a_response_without_next_update_is_stapled_for_a_day(workdir, portier, certs,
                                                            http_backend):
    """A response without nextUpdate (the responder's way of saying newer
    information is always there) is stapled for a day after its thisUpdate,
    which is as long as clients hold it good (NSS, and so Firefox, takes it
    as too old after that and fails the handshake); it was stapled for as
    long as portier ran. Past the day the master says so once, handshakes
    get no staple, and a reload and a start warn of it and go on without."""
    clock, env = faked_clock(workdir, "+0d")
    ocsp = respond(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"))
    p = portier([web(certs, http_backend, ocsp)], env=env)
    assert status(p, "web") == ("successful", "good", None)
    mark = p.mark()
    # Twenty hours on: still within the day.
    with open(clock, "w") as f:
        f.write("+20h\n")
    for v in ("-tls1_2", "-tls1_3"):
        assert status(p, "web", v) == ("successful", "good", None)
    assert "out of date" not in p.log()[mark:], p.log()[mark:]
    with open(clock, "w") as f:
        f.write("+2d\n")
    lapsed = (r"\[web\] OCSP response %s \(certificate %s\) went out of date on "
              r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, a day after its thisUpdate \(it has no "
              r"nextUpdate\) and is no longer stapled; fetch a new one and reload"
              % (re.escape(ocsp), re.escape(certs.ec.cert)))
    p.wait_log(lapsed, timeout=10 * harness.SLOW, since=mark)
    for v in ("-tls1_2", "-tls1_3"):
        assert status(p, "web", v) is None
    stale = (r"out of date: it has no nextUpdate and its thisUpdate "
             r"\d{4}-\d\d-\d\d \d\d:\d\d UTC is more than a day old; fetch a new one")
    after = reload_warns(p, ocsp, stale)
    assert not re.search(lapsed, p.log()[after:]), p.log()[after:]
    p.stop()
    m = re.search(stale, p.log()[after:])
    warned_at_start(workdir, portier, [web(certs, http_backend, ocsp)], ocsp, m.group(0),
                    env=env)
