"""Certificate expiry while portier runs: the master repeats its warning
once a day (PORTIER_TEST_EXPIRY_S shortens the day), for the certificates
within 30 days of their end only, and says so when one has expired under a
running portier. The clock moves forward with Debian's libfaketime (the
wall clock only: the monotonic clock that paces the master stays true)."""

import calendar
import os
import re
import time

import harness
from harness import listener, tls_items

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def not_after(pem):
    cp = harness.run(["openssl", "x509", "-noout", "-enddate", "-in", pem], check=True)
    text = cp.out.strip().split("=", 1)[1]     # "Dec 15 02:00:00 2026 GMT"
    return calendar.timegm(time.strptime(text, "%b %d %H:%M:%S %Y %Z"))


def test_daily_warning_then_expired(workdir, portier, certs, http_backend):
    assert os.path.exists(FAKETIME), "libfaketime is not installed (package faketime)"
    clock = os.path.join(str(workdir), "faketime")
    with open(clock, "w") as f:
        f.write("+0d\n")
    env = {"LD_PRELOAD": FAKETIME, "FAKETIME_TIMESTAMP_FILE": clock,
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "ASAN_OPTIONS": "verify_asan_link_order=0",
           "PORTIER_TEST_EXPIRY_S": "0.5"}
    t0 = time.time()
    p = portier([listener("soon", http_backend.port, protocol="http",
                          extra=tls_items(certs.expiring)),
                 listener("fresh", http_backend.port, protocol="http",
                          extra=tls_items(certs.ec))], env=env)
    end = not_after(certs.expiring.leaf)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
    daily = re.compile(r"\[soon\] certificate %s \(CN=localhost, serial [0-9A-F]+\) "
                       r"expires in (\d+) days, on %s; renew it$"
                       % (re.escape(certs.expiring.cert), re.escape(when)), re.M)
    # Said at start by the loader (with the config line), then again by the
    # master on each of its "days".
    try:
        harness.wait_for(lambda: len(daily.findall(p.log())) >= 2, 10 * harness.SLOW,
                         "two daily warnings")
    except AssertionError:
        raise AssertionError("no two lines /%s/ in:\n%s" % (daily.pattern, p.log()))
    t1 = time.time()
    # The days left, floored, as the clock read while they were written (a
    # certificate made this second still has all of its 10 days).
    lo, hi = int(end - t1 - 1) // 86400, int(end - t0 + 1) // 86400
    assert 0 < lo <= hi < 30
    assert all(lo <= int(d) <= hi for d in daily.findall(p.log())), (lo, hi, p.log())
    assert re.search(r"\[soon\] cert: %s: certificate 1 expires in (%d|%d) days"
                     % (re.escape(certs.expiring.cert), lo, hi), p.log()), p.log()
    assert "[fresh] certificate" not in p.log(), p.log()

    # Twenty days on, the same certificate has expired under portier.
    mark = p.mark()
    with open(clock, "w") as f:
        f.write("+20d\n")
    p.wait_log(r"\[soon\] certificate %s \(CN=localhost, serial [0-9A-F]+\) expired on %s; "
               r"clients refuse it: renew it$" % (re.escape(certs.expiring.cert),
                                                  re.escape(when)),
               timeout=10 * harness.SLOW, since=mark)
    assert "[fresh] certificate" not in p.log(), p.log()
    p.stop()
