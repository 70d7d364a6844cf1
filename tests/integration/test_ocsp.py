"""ocsp = FILE: the OCSP response of a certificate, stapled. The responses
come from `openssl ocsp` as the test CA's responder (over HTTP, fetched the
way docs/operations.md tells an admin to, or answered locally), and
`openssl s_client -status` shows what portier staples: the response on the
listener with `ocsp`, none without, the new one after a reload; a response
that does not fit refuses the start (file:line), and only warns on a
reload; one that passes its nextUpdate under a running portier is no longer
stapled, and the log says so once."""

import os
import re
import shutil
import signal
import subprocess
import time

import fileopens
import harness
from harness import listener, s_client, tls_items

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
NO_CONF = {"OPENSSL_CONF": "/dev/null"}


def respond(certs, leaf, out, *opts):
    """A response for leaf, answered by the CA from its database."""
    harness.run(["openssl", "ocsp", "-index", os.path.join(certs.dir, "index.txt"),
                 "-CA", certs.ca, "-rsigner", certs.ca,
                 "-rkey", os.path.join(certs.dir, "ca.key"), "-issuer", certs.ca,
                 "-cert", leaf.leaf, "-no_nonce", "-respout", out] + list(opts),
                env=NO_CONF, check=True)
    return out


def fetch(certs, leaf, out, workdir):
    """The admin's way: ask the CA's responder over HTTP (openssl ocsp
    -port; it binds every address, the client uses
    127.0.0.1) with -url, keep the answer with -respout."""
    log = os.path.join(str(workdir), "responder.log")
    port = harness.free_port()
    with open(log, "wb") as errf:
        resp = subprocess.Popen(
            ["openssl", "ocsp", "-index", os.path.join(certs.dir, "index.txt"),
             "-CA", certs.ca, "-rsigner", certs.ca, "-rkey", os.path.join(certs.dir, "ca.key"),
             "-port", str(port), "-ndays", "2"],
            env=dict(os.environ, **NO_CONF), stdout=subprocess.DEVNULL, stderr=errf)

    def said():
        with open(log) as f:
            return f.read()
    try:
        # Not a probe connection: the responder serves one at a time and
        # would wait for a request on it.
        harness.wait_for(lambda: "waiting for OCSP client connections" in said() or
                         resp.poll() is not None, 10, "openssl ocsp to listen")
        assert resp.poll() is None, said()
        cp = harness.run(["openssl", "ocsp", "-issuer", certs.ca, "-cert", leaf.leaf,
                          "-url", "http://127.0.0.1:%d" % port, "-CAfile", certs.ca,
                          "-respout", out], env=NO_CONF)
        assert cp.returncode == 0 and ": good" in cp.out, cp.out + cp.err + said()
    finally:
        if resp.poll() is None:
            os.kill(resp.pid, signal.SIGTERM)
        resp.wait(timeout=10)
    return out


def next_update(der):
    cp = harness.run(["openssl", "ocsp", "-respin", der, "-resp_text", "-noverify"],
                     env=NO_CONF, check=True)
    m = re.search(r"Next Update: (.+)", cp.out)
    assert m, cp.out
    return m.group(1).strip()


def replace_response(certs, path, days, before):
    """A new response for certs.ec renamed over path, as a cron job's fetch
    leaves it; its nextUpdate, which differs from before."""
    respond(certs, certs.ec, path + ".new", "-ndays", days)
    os.rename(path + ".new", path)
    after = next_update(path)
    assert after != before
    return after


def with_web2(certs, http_backend, path, cert):
    """[web] stapling path, and [web2] serving cert (other's name and key)."""
    return [web(certs, http_backend, path),
            listener("web2", http_backend.port, protocol="http",
                     extra=[("cert", cert), ("key", certs.other.key)])]


def status(p, name, version="-tls1_3"):
    """What s_client -status says of the staple: None when none was sent,
    else (response status, cert status, next update)."""
    cp = s_client(p.port(name), ["-status", version])
    out = cp.out
    assert "CONNECTED" in out and "Cipher is" in out, out + cp.err
    if "OCSP response: no response sent" in out:
        return None
    m = re.search(r"OCSP Response Status: (\w+)", out)
    c = re.search(r"Cert Status: (\w+)", out)
    n = re.search(r"Next Update: (.+)", out)
    assert m and c, out
    return m.group(1), c.group(1), n.group(1).strip() if n else None


def web(certs, backend, ocsp=None, name="web"):
    tls = tls_items(certs.ec)
    if ocsp:
        tls.append(("ocsp", ocsp))
    return listener(name, backend.port, protocol="http", extra=tls)


def test_stapled_then_reloaded(workdir, portier, certs, http_backend):
    path = fetch(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"), workdir)
    first = next_update(path)
    p = portier([web(certs, http_backend, path), web(certs, http_backend, name="bare")])
    for v in ("-tls1_2", "-tls1_3"):
        assert status(p, "web", v) == ("successful", "good", first)
        assert status(p, "bare", v) is None
    # portier's own client (probe) asks for the status too.
    for name, said in (("web", ", OCSP stapled"), ("bare", ", no OCSP staple")):
        cp = harness.run([harness.PORTIER_BIN, "probe", "127.0.0.1:%d" % p.port(name),
                          "--json"], timeout=30)
        assert '"ocsp_stapled":%s' % ("true" if name == "web" else "false") in cp.out, cp.out
        cp = harness.run([harness.PORTIER_BIN, "probe", "127.0.0.1:%d" % p.port(name)],
                         timeout=30)
        assert said in cp.out, cp.out + cp.err
    # A new response in the same file: the reload staples it.
    second = replace_response(certs, path, "5", first)
    p.reload()
    assert status(p, "web") == ("successful", "good", second)
    assert status(p, "bare") is None
    p.stop()


def test_replaced_file_is_stapled_without_a_signal(workdir, portier, certs, http_backend):
    """The admin's cron job only replaces the file: the master sees it on its
    next wake-up (PORTIER_TEST_EXPIRY_S makes those come twice a second)
    and reloads by itself, once."""
    path = respond(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"), "-ndays", "2")
    first = next_update(path)
    p = portier([web(certs, http_backend, path)], env={"PORTIER_TEST_EXPIRY_S": "0.5"})
    assert status(p, "web") == ("successful", "good", first)
    mark = p.mark()
    second = replace_response(certs, path, "6", first)
    p.wait_log(r"an ocsp file changed: reloading to staple it", timeout=10 * harness.SLOW,
               since=mark)
    p.wait_log(r"reloaded: ", timeout=10 * harness.SLOW, since=mark)
    harness.wait_for(lambda: status(p, "web") == ("successful", "good", second),
                     10 * harness.SLOW, "the new staple")
    # The new generation's files are its own baseline: no second reload.
    # An absence only time can show: six of the master's wake-ups pass.
    time.sleep(3)
    assert p.log()[mark:].count("an ocsp file changed") == 1, p.log()[mark:]
    assert p.log()[mark:].count("reloaded: ") == 1, p.log()[mark:]
    p.stop()


def test_a_file_replaced_during_a_reload_is_stapled_by_the_next(workdir, portier, certs,
                                                                http_backend):
    """The master compares the files with what the reload read, not with
    what is there once it commits: a response replaced after the reload
    read the old one (here while it waits on the next listener's
    certificate, held open) is stapled by the reload it then starts. (It took
    the files at the commit as its baseline, and the new response waited
    for a change that might never come.)"""
    path = respond(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"), "-ndays", "2")
    first = next_update(path)
    p = portier(with_web2(certs, http_backend, path, certs.other.cert),
                env={"PORTIER_TEST_EXPIRY_S": "0.5"})
    assert status(p, "web") == ("successful", "good", first)
    held = os.path.join(str(workdir), "other.pem")
    shutil.copy(certs.other.cert, held)
    hold = fileopens.HeldOpen(held)
    try:
        p.rewrite(with_web2(certs, http_backend, path, held))
        mark = p.mark()
        os.kill(p.proc.pid, signal.SIGHUP)
        # The master opens web2's certificate once it has read [web]'s
        # response: it is held there while the response is replaced.
        hold.wait_opening(p.proc.pid, 10)
        second = replace_response(certs, path, "6", first)
    finally:
        hold.release()
    p.wait_log(r"reloaded: ", timeout=10 * harness.SLOW, since=mark)
    p.wait_log(r"an ocsp file changed: reloading to staple it", timeout=10 * harness.SLOW,
               since=mark)
    harness.wait_for(lambda: status(p, "web") == ("successful", "good", second),
                     10 * harness.SLOW, "the new staple")
    p.stop()


def test_a_file_replaced_while_the_start_reads_is_stapled(workdir, portier, certs,
                                                          http_backend):
    """At start too the master compares the files with what it read: a
    response replaced after the start read the old one (here while it is
    held opening the next listener's certificate) is stapled by a reload
    at its first wake-up. (The first wake-up took the files as they were
    then as its baseline.)"""
    path = respond(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"), "-ndays", "2")
    first = next_update(path)
    held = os.path.join(str(workdir), "other.pem")
    shutil.copy(certs.other.cert, held)
    second = []
    p = fileopens.start_held(
        held, lambda: portier(with_web2(certs, http_backend, path, held),
                              env={"PORTIER_TEST_EXPIRY_S": "0.5"}),
        lambda pid: second.append(replace_response(certs, path, "6", first)))
    second = second[0]
    p.wait_log(r"an ocsp file changed: reloading to staple it", timeout=10)
    p.wait_log(r"reloaded: ", timeout=10)
    harness.wait_for(lambda: status(p, "web") == ("successful", "good", second),
                     10, "the new staple")
    p.stop()


def test_bad_file_refuses_start(workdir, certs, http_backend):
    wrong = respond(certs, certs.rsa, os.path.join(str(workdir), "rsa.ocsp"), "-ndays", "1")
    text = harness.ini_text([("portier", [("log", "stderr")]),
                             web(certs, http_backend, wrong)])
    ini = os.path.join(str(workdir), "bad.ini")
    with open(ini, "w") as f:
        f.write(text)
    line = text.splitlines().index("ocsp = %s" % wrong) + 1
    want = ("%s:%d: [web] ocsp: %s: the response is not about this certificate"
            % (ini, line, wrong))
    for args in (["-t"], ["-f"]):
        cp = harness.run([harness.PORTIER_BIN] + args + ["-c", ini], timeout=30)
        assert cp.returncode == 1, cp.out + cp.err
        assert want in cp.err, cp.err
    cp = harness.run([harness.PORTIER_BIN, "-f", "-c", ini], timeout=30)
    assert "configuration refused, not starting" in cp.err, cp.err


def test_bad_file_on_reload_warns(workdir, portier, certs, http_backend):
    path = respond(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"), "-ndays", "1")
    p = portier([web(certs, http_backend, path)])
    assert status(p, "web")[:2] == ("successful", "good")
    with open(path, "wb") as f:
        f.write(b"<html>503 Service Unavailable</html>\n")
    mark = p.reload()
    assert re.search(r"ocsp: %s: not a DER OCSP response .*; this certificate goes "
                     r"without a staple" % re.escape(path), p.log()[mark:]), p.log()[mark:]
    assert status(p, "web") is None
    p.stop()


def test_lapsed_response_no_longer_stapled(workdir, portier, certs, http_backend):
    assert os.path.exists(FAKETIME), "libfaketime is not installed (package faketime)"
    clock = os.path.join(str(workdir), "faketime")
    with open(clock, "w") as f:
        f.write("+0d\n")
    # File times stay true (NO_FAKE_STAT): libfaketime moves stat()'s
    # mtimes with the clock, the master took that for a new ocsp file and
    # reloaded, and the reload, refusing the lapsed response, took the
    # staple away whether or not the workers declined it.
    env = {"LD_PRELOAD": FAKETIME, "FAKETIME_TIMESTAMP_FILE": clock,
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "NO_FAKE_STAT": "1", "ASAN_OPTIONS": "verify_asan_link_order=0",
           "PORTIER_TEST_EXPIRY_S": "0.5"}
    path = respond(certs, certs.ec, os.path.join(str(workdir), "ec.ocsp"), "-ndays", "1")
    # "soon" expires within 30 days: the master warns about it on each of
    # its checks, which tells this test how often it has looked.
    p = portier([web(certs, http_backend, path),
                 listener("soon", http_backend.port, protocol="http",
                          extra=tls_items(certs.expiring))], env=env)
    assert status(p, "web")[:2] == ("successful", "good")
    mark = p.mark()
    with open(clock, "w") as f:
        f.write("+2d\n")
    lapsed = (r"\[web\] OCSP response %s \(certificate %s\) passed its nextUpdate on "
              r"\d{4}-\d\d-\d\d \d\d:\d\d UTC and is no longer stapled; fetch a new one "
              r"and reload$" % (re.escape(path), re.escape(certs.ec.cert)))
    p.wait_log(lapsed, timeout=10 * harness.SLOW, since=mark, flags=re.M)
    assert status(p, "web") is None
    assert status(p, "web", "-tls1_2") is None
    # Said once, however often the master looks: three more checks.
    after = p.log().index("passed its nextUpdate", mark)
    harness.wait_for(lambda: len(re.findall(r"\[soon\] certificate .* expires in",
                                            p.log()[after:])) >= 3,
                     10 * harness.SLOW, "three more checks of the master")
    assert len(re.findall(lapsed, p.log()[mark:], re.M)) == 1, p.log()[mark:]
    # The workers that stopped stapling are the ones started with it.
    assert "SIGHUP" not in p.log() and "reloading" not in p.log(), p.log()
    p.stop()
