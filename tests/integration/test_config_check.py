"""`portier -t`: every class of config problem is reported as
FILE:LINE: [section] key: what is wrong, what is expected — all of them, exit 1 —
plus certificate checks, port/model lint warnings, and the other CLI flags."""

import glob
import os
import re

import pytest

import fileopens
import harness
from harness import portier_check, run

# A report line may carry a leading 'error: ' or 'warning: ' tag.
TAG = r"^(?:(?:warning|error):\s*)?"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def base(certs, listener_lines=None, tls_lines=None):
    """A valid config; listener/tls lines may be replaced to break it."""
    tls = tls_lines if tls_lines is not None else ["cert = " + certs.ec.cert,
                                                   "key = " + certs.ec.key]
    lst = listener_lines if listener_lines is not None else [
        "listen = 127.0.0.1:8443", "mode = tls", "protocol = http", "backend = 127.0.0.1:8080"]
    return "\n".join(["; portier -t test config", "[portier]", "log = stderr", "",
                      "[tls]"] + tls + ["", "[web]"] + lst) + "\n"


def lineno(text, needle, nth=1):
    """1-based number of the nth line of text containing needle."""
    n = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            n += 1
            if n == nth:
                return i
    raise AssertionError("%r not in config" % needle)


def lines_at(out, path, lines):
    """Output lines that start with PATH:LINE: for any LINE in lines (after an
    optional 'warning: ' or 'error: ' tag)."""
    rx = re.compile(TAG + r"%s:(%s): " % (re.escape(path), "|".join(str(l) for l in lines)),
                    re.I)
    return [l for l in out.splitlines() if rx.search(l)]


def check_error(workdir, text, needle, section, key, words=(), also_lines=()):
    """Run -t; expect exit 1 and a line PATH:LINE: [section] key: ... with words in it."""
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, "exit %d, expected 1:\n%s\n---\n%s" % (rc, text, out)
    want = [lineno(text, needle)] + list(also_lines)
    found = [l for l in lines_at(out, path, want) if
             re.search(r": \[%s\] %s: \S" % (re.escape(section), re.escape(key)), l)]
    assert found, "no '%s:%s: [%s] %s: ...' line in:\n%s\n--- config:\n%s" % (
        path, want, section, key, out, text)
    for w in words:
        assert any(re.search(w, l, re.I) for l in found), \
            "%r not said in %s" % (w, found)
    return found, out


def test_valid_config_passes_cleanly(workdir, certs):
    rc, out, _ = portier_check(workdir, base(certs))
    assert rc == 0, out
    assert not re.search(r"(?i)\b(error|warning)\b", out), out


def test_unknown_key_did_you_mean(workdir, certs):
    text = base(certs, listener_lines=["lisen = 127.0.0.1:8443", "listen = 127.0.0.1:8443",
                                       "mode = tls", "protocol = http",
                                       "backend = 127.0.0.1:8080"])
    check_error(workdir, text, "lisen", "web", "lisen", [r"unknown", r"did you mean.*\blisten\b"])


def test_unknown_key_in_tls_section(workdir, certs):
    text = base(certs, tls_lines=["cert = " + certs.ec.cert, "key = " + certs.ec.key,
                                  "min_verison = 1.2"])
    check_error(workdir, text, "min_verison", "tls", "min_verison",
                [r"did you mean.*\bmin_version\b"])


def test_unknown_key_in_global_section(workdir, certs):
    text = base(certs).replace("log = stderr", "log = stderr\nports_fle = /tmp/x")
    check_error(workdir, text, "ports_fle", "portier", "ports_fle",
                [r"did you mean.*\bports_file\b"])


@pytest.mark.parametrize("bad,good", [("tsl", "tls"), ("portir", "portier")])
def test_unknown_section_did_you_mean(workdir, certs, bad, good):
    text = base(certs) + "\n[%s]\ncurves = X25519\n" % bad
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    found = lines_at(out, path, [lineno(text, "[%s]" % bad), lineno(text, "curves")])
    assert any(re.search(r"did you mean.*\b%s\b" % good, l, re.I) for l in found), \
        "no did-you-mean [%s] at the section's line:\n%s" % (good, out)


@pytest.mark.parametrize("value", ["X25519:", "X25519::P-256", ":X25519"])
def test_an_empty_item_in_curves_is_refused_at_its_line(workdir, certs, value):
    """An empty item in the curves list (a trailing or doubled ':') was
    skipped by the list's reader and refused later by the TLS library, as
    "unknown error" at the certificate's line."""
    text = base(certs, tls_lines=["curves = " + value, "cert = " + certs.ec.cert,
                                  "key = " + certs.ec.key])
    found, out = check_error(workdir, text, "curves = ", "tls", "curves",
                             [r"expected a ':'-separated list"])
    assert "unknown error" not in out, out


NO_PORT = "has no valid port; expected a number 0-65535"
NOT_LISTEN = "is not a listen address; expected PORT, ADDR:PORT or [V6ADDR]:PORT"
NOT_NUMERIC = "is not a numeric IP address; a listener binds to an address, not a name"


@pytest.mark.parametrize("value,said", [
    ("127.0.0.1:99999", "'127.0.0.1:99999' " + NO_PORT),
    ("127.0.0.1:-1", "'127.0.0.1:-1' " + NO_PORT),
    ("127.0.0.1:http", "'127.0.0.1:http' " + NO_PORT),
    ("127.0.0.1:", "'127.0.0.1:' " + NO_PORT),
    ("70000", "'70000' " + NO_PORT),
    # Digits only (strtol took a sign and leading blanks).
    ("+8443", "'+8443' " + NO_PORT),
    ("127.0.0.1:-0", "'127.0.0.1:-0' " + NO_PORT),
    ("127.0.0.1:+443", "'127.0.0.1:+443' " + NO_PORT),
    ("[::1]: 443", "'[::1]: 443' " + NO_PORT),
    ("[::1:443", "'[::1:443' " + NOT_LISTEN),
    ("::1:443", "'::1:443' " + NOT_LISTEN),
    ("1.2.3.4.5:443", "'1.2.3.4.5' " + NOT_NUMERIC),
    ("localhost:443", "'localhost' " + NOT_NUMERIC),
    # The socket would be IPv6-only and the kernel refuses to bind it
    # (EINVAL): -t passed it, and the start failed.
    ("[::ffff:127.0.0.1]:0", "'::ffff:127.0.0.1' is an IPv4-mapped IPv6 address, which "
     "cannot be bound; write the IPv4 address, 127.0.0.1:0"),
])
def test_bad_listen(workdir, certs, value, said):
    text = base(certs, listener_lines=["listen = " + value, "mode = tls", "protocol = http",
                                       "backend = 127.0.0.1:8080"])
    check_error(workdir, text, "listen = ", "web", "listen", [re.escape(said) + "$"])


PLAIN_WEB = ["listen = 127.0.0.1:8080", "mode = plain", "protocol = http",
             "backend = 127.0.0.1:8081"]
REDIRECT = ["listen = 127.0.0.1:8080", "mode = redirect"]
FTPS = ["listen = 127.0.0.1:990", "mode = tls", "protocol = ftp", "backend = 127.0.0.1:21"]


@pytest.mark.parametrize("section,line,said,listener_lines", [
    ("portier", "log_level = debug", "'debug' is not one of info, warning", None),
    ("portier", "ports_file = run/ports", "'run/ports': expected an absolute path", None),
    ("portier", "pid_file = portier.pid", "'portier.pid': expected an absolute path", None),
    ("portier", "hostname = mail_gw!",
     "'mail_gw!' is not a host name: expected 1 to 253 letters, digits, '-' and '.'", None),
    ("web", "hostname = mail/gw", "'mail/gw' is not a host name: expected 1 to 253 "
     "letters, digits, '-' and '.'", PLAIN_WEB),
    ("tls", "curves = X25519:X448", "'X448' is not one of X25519, P-256, P-384, P-521", None),
    ("web", "redirect_port = 0", "'0' is not a number from 1 to 65535", REDIRECT),
    # 0 is the unset key's value inside (64 then); written, it is out of range.
    ("portier", "ipv6_prefix = 0", "'0' is not a number from 32 to 128", None),
    ("web", "ipv6_prefix = 129", "'129' is not a number from 32 to 128",
     PLAIN_WEB + ["max_connections_per_ip = 2"]),
    ("web", "redirect_port = 65536", "'65536' is not a number from 1 to 65535", REDIRECT),
    ("web", "acme_backend = 127.0.0.1", "'127.0.0.1' is not a backend address; expected "
     "HOST:PORT, [V6ADDR]:PORT or unix:/path", REDIRECT),
    ("web", "acme_backend = 127.0.0.1:0",
     "'127.0.0.1:0' has no valid port; expected a number 1-65535", REDIRECT),
    ("web", "starttls = maybe", "'maybe' is not one of required, optional",
     ["listen = 127.0.0.1:2525", "mode = starttls", "protocol = smtp",
      "backend = 127.0.0.1:10025"]),
    ("web", "xclient = on", "'on' is not one of no, yes",
     ["listen = 127.0.0.1:2525", "mode = starttls", "protocol = smtp",
      "backend = 127.0.0.1:10025"]),
    ("web", "accept_proxy_from = 10.0.0.1/8", "'10.0.0.1/8' is not an address or ADDR/BITS "
     "(IPv4 or IPv6, no host bits past the prefix)", PLAIN_WEB + ["accept_proxy = yes"]),
    ("web", "accept_proxy_from = 192.0.2.1 lb.example", "'lb.example' is not an address or "
     "ADDR/BITS (IPv4 or IPv6, no host bits past the prefix)",
     PLAIN_WEB + ["accept_proxy = yes"]),
    # A word of 64 characters or more is cut to its first 20 in the message.
    ("web", "accept_proxy_from = " + "1" * 70, "'%s...' is not an address or ADDR/BITS"
     % ("1" * 20), PLAIN_WEB + ["accept_proxy = yes"]),
    # Each end is bounded before it is narrowed to 32 bits (4294968320 was
    # taken as 1024, 4294972296 as 5000).
    ("web", "data_ports = 4294968320-5000", "'4294968320-5000' is not a range LOW-HIGH of "
     "ports from 1024 to 65535", FTPS),
    ("web", "data_ports = 1024-4294972296", "'1024-4294972296' is not a range LOW-HIGH of "
     "ports from 1024 to 65535", FTPS),
    ("web", "data_ports = 5000-1024", "'5000-1024' is not a range LOW-HIGH of "
     "ports from 1024 to 65535", FTPS),
    # A peer over IPv4 is matched as IPv4: a mapped entry matched nothing.
    ("web", "accept_proxy_from = 192.0.2.1 ::ffff:10.0.0.1", "'::ffff:10.0.0.1' is an "
     "IPv4-mapped IPv6 address, which no client matches (IPv4 clients are matched as "
     "IPv4); write it as 10.0.0.1", PLAIN_WEB + ["accept_proxy = yes"]),
    ("web", "accept_proxy_from = ::ffff:10.0.0.0/104", "'::ffff:10.0.0.0/104' is an "
     "IPv4-mapped IPv6 range, which no client matches (IPv4 clients are matched as "
     "IPv4); write it as 10.0.0.0/8", PLAIN_WEB + ["accept_proxy = yes"]),
    ("portier", "stats = [::ffff:127.0.0.1]:9120", "'::ffff:127.0.0.1' is an IPv4-mapped "
     "IPv6 address, which cannot be bound; write the IPv4 address, 127.0.0.1:9120", None),
    # set_accept_proxy_from's own "expected one or more addresses" cannot be
    # reached from a file: inih strips the value, and an empty one is refused
    # before any setter runs. This is the refusal a blank value gets.
    ("web", "accept_proxy_from = ; the balancers", "empty value; expected ADDR[/BITS] ...",
     PLAIN_WEB + ["accept_proxy = yes"]),
])
def test_bad_value_is_refused_at_its_line(workdir, certs, section, line, said, listener_lines):
    """One bad value of a key no other test gave a bad value: exit 1 and
    FILE:LINE: [section] key: with the setter's own words, at the key's line."""
    key = line.split(" = ")[0]
    if section == "portier":
        text = base(certs).replace("log = stderr", "log = stderr\n" + line)
    elif section == "tls":
        text = base(certs, tls_lines=[line, "cert = " + certs.ec.cert, "key = " + certs.ec.key])
    else:
        lst = list(listener_lines) + [line]
        uses_tls = any(l in ("mode = tls", "mode = starttls") for l in lst)
        text = base(certs, listener_lines=lst, tls_lines=None if uses_tls else [])
    found, out = check_error(workdir, text, line, section, key,
                             [re.escape(": [%s] %s: %s" % (section, key, said)) + "$"])
    assert len(found) == 1, out


def listener_check_error(workdir, text, section, key, said):
    """A check of a listener's keys together (cfg_check.c): exit 1, and the
    line FILE:LINE: [section] key: said, where LINE is the key's own (the
    first line of text that gives it), not the section header's."""
    given = next(l for l in text.splitlines() if l.startswith(key + " = "))
    found, out = check_error(workdir, text, given, section, key,
                             [re.escape(": [%s] %s: %s" % (section, key, said)) + "$"])
    assert len(found) == 1, out
    return out


@pytest.mark.parametrize("protocol", ["smtp", "tcp", "imap"])
def test_redirect_with_another_protocol(workdir, certs, protocol):
    text = base(certs, tls_lines=[], listener_lines=REDIRECT + ["protocol = " + protocol])
    listener_check_error(workdir, text, "web", "protocol",
                         "mode = redirect speaks HTTP; use protocol = http or leave it out")


@pytest.mark.parametrize("protocol", ["http", "tcp"])
def test_starttls_mode_with_a_protocol_that_cannot_upgrade(workdir, certs, protocol):
    """cfg_check.c's 'p->missing' branch before this one is unreachable:
    no protocol in proto.c is named but not served."""
    text = base(certs, listener_lines=["listen = 127.0.0.1:2525", "mode = starttls",
                                       "protocol = " + protocol, "backend = 127.0.0.1:10025"])
    listener_check_error(workdir, text, "web", "protocol", "mode = starttls needs the "
                         "protocol to upgrade: smtp, imap, pop3, ldap or ftp")


@pytest.mark.parametrize("mode,value", [("tls", "required"), ("plain", "optional"),
                                        ("redirect", "required")])
def test_starttls_key_without_mode_starttls(workdir, certs, mode, value):
    lst = ["listen = 127.0.0.1:2525", "mode = " + mode, "starttls = " + value]
    lst += ["protocol = http"] if mode == "redirect" else ["protocol = smtp",
                                                           "backend = 127.0.0.1:10025"]
    text = base(certs, listener_lines=lst, tls_lines=None if mode == "tls" else [])
    listener_check_error(workdir, text, "web", "starttls", "only used with mode = starttls")


@pytest.mark.parametrize("mode,protocol", [("plain", "smtp"), ("tls", "smtp"),
                                           ("starttls", "imap"), ("starttls", "pop3"),
                                           ("tls", "tcp")])
def test_xclient_off_an_smtp_starttls_listener(workdir, certs, mode, protocol):
    text = base(certs, listener_lines=["listen = 127.0.0.1:2525", "mode = " + mode,
                                       "protocol = " + protocol, "backend = 127.0.0.1:10025",
                                       "xclient = yes"],
                tls_lines=None if mode != "plain" else [])
    listener_check_error(workdir, text, "web", "xclient",
                         "only for mode = starttls with protocol = smtp")


@pytest.mark.parametrize("extra", [0, 1, 60, 500])
def test_an_over_long_line_is_refused_at_its_line(workdir, certs, extra):
    """The line reader refuses a line inih would cut (198 bytes of text
    are the most): FILE:LINE: line longer than 198 bytes. The message names
    neither section nor key (the line is thrown away unread)."""
    pad = "a" * (198 - len("hostname = ") + 1 + extra)
    text = base(certs).replace("log = stderr", "log = stderr\nhostname = " + pad)
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    want = "%s:%d: line longer than 198 bytes; shorten it" % (path, lineno(text, pad))
    assert want in out.splitlines(), out


def test_a_nul_byte_is_refused_at_its_line_and_later_lines_keep_their_numbers(workdir, certs):
    """The line reader looked for the newline with a C string search, which
    stops at a NUL: the line was called "longer than 198 bytes", the next
    line was swallowed as its tail and every later line number was one off.
    Now: the NUL's own line, and the next line read and numbered as itself."""
    text = base(certs).replace("log = stderr", "log = stderr\nhostname = mail\0gw\n"
                               "ports_fle = /tmp/x")
    path = str(workdir / "nul.ini")
    with open(path, "wb") as f:
        f.write(text.encode())
    cp = run([harness.PORTIER_BIN, "-t", "-c", path])
    out = cp.out + cp.err
    assert cp.returncode == 1, out
    nul = lineno(text, "hostname = ")
    assert "%s:%d: line holds a NUL byte; remove it (is this a text file?)" % (
        path, nul) in out.splitlines(), out
    assert "%s:%d: [portier] ports_fle: unknown key; did you mean 'ports_file'?" % (
        path, nul + 1) in out.splitlines(), out
    assert "longer than" not in out and "2 errors, configuration refused" in out, out


@pytest.mark.parametrize("args", [("-t",), ("-f",)])
def test_a_file_that_cannot_be_read_is_refused_as_such(workdir, args):
    """A read error was taken as the end of the file: -c DIRECTORY said "no
    listener sections". Now the error itself, with the file name, and
    nothing about the file's contents; at start as with -t."""
    cp = run([harness.PORTIER_BIN] + list(args) + ["-c", str(workdir)])
    out = cp.out + cp.err
    assert cp.returncode == 1, out
    assert "%s: cannot read: Is a directory" % workdir in out.splitlines(), out
    assert "listener" not in out, out


def test_a_byte_order_mark_at_the_start_is_skipped(workdir, certs):
    """Editors on Windows start a UTF-8 file with a byte-order mark; inih
    skips it, but portier's own line checks saw it before '[portier]' and
    said "not a 'key = value' line", then "key outside any section" for each
    key of [portier]. Now the file reads as without it, line numbers and all."""
    text = base(certs)
    path = str(workdir / "bom.ini")
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + text.encode())
    cp = run([harness.PORTIER_BIN, "-t", "-c", path])
    out = cp.out + cp.err
    assert cp.returncode == 0 and "configuration OK (1 listeners)" in out, out
    assert not re.search(r"(?i)\b(error|warning)\b", out), out
    # Its first section is [portier], and the lines keep their numbers.
    bad = text.replace("log = stderr", "log = stderr\nports_fle = /tmp/x")
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + bad.encode())
    cp = run([harness.PORTIER_BIN, "-t", "-c", path])
    out = cp.out + cp.err
    assert cp.returncode == 1, out
    assert ("%s:%d: [portier] ports_fle: unknown key; did you mean 'ports_file'?" % (
        path, lineno(bad, "ports_fle"))) in out.splitlines(), out
    assert "1 error, configuration refused" in out, out


def test_a_line_of_198_bytes_is_read(workdir, certs):
    """The limit's other side: 198 bytes are a line read as any other (its
    value, ending in '!', is refused as a host name by the key's setter, at
    the key)."""
    line = "hostname = " + "a" * (198 - len("hostname = ") - 1) + "!"
    assert len(line) == 198
    text = base(certs).replace("log = stderr", "log = stderr\n" + line)
    found, out = check_error(workdir, text, line, "portier", "hostname", [r"is not a host name"])
    assert "longer than" not in out, out


@pytest.mark.parametrize("keys", [True, False], ids=["with-keys", "no-keys"])
@pytest.mark.parametrize("name", ["we/b", "web site", "wëb", "web:1"])
def test_bad_section_name(workdir, certs, name, keys):
    """FILE:LINE: [name] section names may hold letters, digits, '-', '_' and
    '.', LINE the [header]'s, whether keys follow it or not. (It was the line
    of the section's first key, and a section without keys went unsaid:
    "configuration OK".)"""
    text = base(certs).replace("[web]", "[%s]" % name)
    if not keys:
        text += "\n[%s]\n; listen = 127.0.0.1:9443\n" % name.replace("b", "bb")
        name = name.replace("b", "bb")
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    header = lineno(text, "[%s]" % name)
    want = "%s:%d: [%s] section names may hold letters, digits, '-', '_' and '.'" % (
        path, header, name)
    assert [l for l in out.splitlines() if l.endswith(want)], out


def test_a_section_name_longer_than_inih_keeps_is_refused_at_its_header(workdir, certs):
    """inih cuts a section name to its first 49 characters before portier
    sees it: two long names alike in those were one listener, both listen
    lines under the cut name. Each such header is an error at its line; 49
    characters are read as any other name."""
    plain = "listen = 127.0.0.1:0\nmode = plain\nprotocol = tcp\nbackend = 127.0.0.1:9\n"
    long_x, long_y = "a" * 55 + "x", "a" * 55 + "y"
    text = base(certs) + "\n[%s]\n%s\n[%s]\n%s" % (long_x, plain, long_y, plain)
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    for name in (long_x, long_y):
        want = "%s:%d: [%s] section name longer than 49 characters; shorten it" % (
            path, lineno(text, "[%s]" % name), name)
        assert want in out.splitlines(), out
    fits = "b" * 49
    text = base(certs) + "\n[%s]\n%s" % (fits, plain)
    rc, out, _ = portier_check(workdir, text)
    assert rc == 0 and "configuration OK (2 listeners)" in out, out


def test_a_listener_section_without_keys_is_a_warning(workdir, certs):
    """A section whose keys are all commented out never reaches inih's
    handler: it was ignored without a word. Now a warning at its header
    (exit 0, the section ignored); [portier] and [tls] left empty are their
    defaults, and say nothing."""
    text = base(certs) + "\n[old]\n; listen = 127.0.0.1:9443\n; backend = 127.0.0.1:9\n\n[spare]\n"
    rc, out, path = portier_check(workdir, text)
    assert rc == 0, out
    for name in ("old", "spare"):
        want = "%s:%d: [%s] section has no keys; it is ignored" % (
            path, lineno(text, "[%s]" % name), name)
        assert [l for l in out.splitlines() if l.endswith(want)], out
    assert "configuration OK (1 listeners, with warnings)" in out, out
    # An empty [portier] says nothing.
    rc, out, path = portier_check(workdir, base(certs).replace("log = stderr\n", ""))
    assert rc == 0 and "no keys" not in out, out


def plain_listener(name, listen):
    return "\n[%s]\nlisten = %s\nmode = plain\nprotocol = tcp\nbackend = 127.0.0.1:9\n" % (
        name, listen)


@pytest.mark.parametrize("first,second", [
    ("0.0.0.0:P", "127.0.0.1:P"), ("127.0.0.1:P", "0.0.0.0:P"),
    ("[::]:P", "[::1]:P"), ("[::1]:P", "[::]:P"), ("0.0.0.0:P", "0.0.0.0:P"),
    ("P", "[::]:P"), ("0.0.0.0:P", "P")])
def test_an_unspecified_address_clashes_with_its_family_on_the_port(workdir, certs,
                                                                    first, second):
    """0.0.0.0:P holds P on every IPv4 address, and [::]:P on every IPv6
    one: beside another address of the family on P the start fails (EADDRINUSE),
    so -t refuses it at the second listen line. (Only a bare port counted
    as every address: 0.0.0.0:P beside 127.0.0.1:P passed -t.)"""
    first, second = first.replace("P", "18601"), second.replace("P", "18601")
    text = base(certs) + plain_listener("a", first) + plain_listener("b", second)
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    want = "%s:%d: [b] listen: '%s' is already taken by [a] at line %d" % (
        path, lineno(text, "listen = " + second, 2 if first == second else 1), second,
        lineno(text, "listen = " + first))
    assert want in out.splitlines(), out


def test_stats_on_an_unspecified_address_clashes_with_a_listener(workdir, certs):
    text = base(certs).replace("log = stderr", "log = stderr\nstats = 0.0.0.0:18601")
    text += plain_listener("a", "127.0.0.1:18601")
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    want = "%s:%d: [portier] stats: '0.0.0.0:18601' is already taken by [a] at line %d" % (
        path, lineno(text, "stats = "), lineno(text, "listen = 127.0.0.1:18601"))
    assert want in out.splitlines(), out


@pytest.mark.parametrize("first,second", [("[::]:P", "127.0.0.1:P"),
                                          ("0.0.0.0:P", "[::]:P"),
                                          ("0.0.0.0:P", "[::1]:P")])
def test_unspecified_addresses_of_two_families_share_a_port(workdir, first, second):
    """[::]:P is bound IPv6-only: 127.0.0.1:P or 0.0.0.0:P beside it binds,
    and -t says nothing against it. Checked by a start: both sockets are
    in the ports_file."""
    port = harness.free_port("::")
    first, second = first.replace("P", str(port)), second.replace("P", str(port))
    sections = [(name, [("listen", listen), ("mode", "plain"), ("protocol", "tcp"),
                        ("backend", "127.0.0.1:9")])
                for name, listen in (("a", first), ("b", second))]
    rc, out, _ = portier_check(workdir, harness.ini_text([("portier", [("log", "stderr")])]
                                                         + sections))
    assert rc == 0 and "already taken" not in out, out
    p = harness.Portier(workdir, sections)
    try:
        assert len(p.ports.get("a", [])) == 1 and len(p.ports.get("b", [])) == 1, p.ports
        assert p.ports["a"][0][1] == port and p.ports["b"][0][1] == port, p.ports
    finally:
        p.stop()


@pytest.mark.parametrize("args", [("-t",), ()])
def test_a_log_that_is_a_directory_is_refused_at_its_line(workdir, certs, args):
    """A directory cannot be opened as the log: -t only warned, and the start
    then failed with "cannot open log DIR: Is a directory", naming no line.
    Now an error at the key's line, for -t and for a start alike (which
    refuses before it opens anything, so it never detaches here)."""
    logdir = workdir / "logs"
    logdir.mkdir()
    text = base(certs).replace("log = stderr", "log = %s" % logdir)
    path = str(workdir / "check.ini")
    with open(path, "w") as f:
        f.write(text)
    cp = run([harness.PORTIER_BIN] + list(args) + ["-c", path])
    out = cp.out + cp.err
    assert cp.returncode == 1, out
    want = "%s:%d: [portier] log: '%s' is a directory; expected the path of the log file" % (
        path, lineno(text, "log = "), logdir)
    assert want in out.splitlines(), out
    assert "cannot open log" not in out, out


def test_xclient_backend_shared_over_ipv6_is_a_warning(workdir, certs):
    """cfg_lint.c: another listener relaying to the IPv6 backend that
    [smtp]'s xclient = yes trusts is warned about at its backend line (exit 0);
    one to another IPv6 port or address is not."""
    smtp = ["[smtp]", "listen = 127.0.0.1:2525", "mode = starttls", "protocol = smtp",
            "backend = [::1]:10025", "xclient = yes"]
    for backend, warned in (("[::1]:10025", True), ("[0:0::1]:10025", True),
                            ("[::1]:10026", False), ("[::2]:10025", False),
                            ("127.0.0.1:10025", False)):
        text = base(certs, listener_lines=["listen = 127.0.0.1:2526", "mode = plain",
                                           "protocol = tcp", "backend = " + backend])
        text += "\n" + "\n".join(smtp) + "\n"
        rc, out, path = portier_check(workdir, text)
        assert rc == 0, out
        want = ("warning: %s:%d: [web] backend: %s is also [smtp]'s, whose xclient = yes has "
                "it trust portier's address to name the client; this listener passes a "
                "client's own XCLIENT through" % (path, lineno(text, "backend = "), backend))
        hits = [l for l in out.splitlines() if l.startswith(want)]
        assert len(hits) == (1 if warned else 0), (backend, out)
        if not warned:
            assert "is also [smtp]'s" not in out, out


@pytest.mark.parametrize("lines,bad,tls", [
    (["listen = 127.0.0.1:8443", "protocol = http", "backend = nosuchhost.invalid:25"],
     "backend = ", True),
    (["listen = 127.0.0.1:8443", "mode = plian", "protocol = tcp", "backend = 127.0.0.1:9"],
     "mode = ", False),
    (["listen = 127.0.0.1:2525", "mode = starttls", "protocol = smtpx",
      "backend = 127.0.0.1:25"], "protocol = ", True),
    (FTPS + ["data_ports = 10-20"], "data_ports = ", True),
    (PLAIN_WEB + ["accept_proxy = yes", "accept_proxy_from = ::ffff:10.0.0.1"],
     "accept_proxy_from = ", False),
    (PLAIN_WEB + ["accept_proxy = maybe", "accept_proxy_from = 10.0.0.1"],
     "accept_proxy = ", False),
    (PLAIN_WEB + ["rate_per_ip = lots", "rate_burst = 5"], "rate_per_ip = ", False),
    # The cert setter refuses no path (the file is read later); an empty
    # value is refused before it.
    (["listen = 127.0.0.1:8443", "protocol = http", "backend = 127.0.0.1:9",
      "cert ="], "cert =", False),
], ids=["backend", "mode", "protocol", "data_ports", "accept_proxy_from", "accept_proxy",
        "rate_per_ip", "cert"])
def test_a_refused_value_is_said_once(workdir, certs, lines, bad, tls):
    """A key whose value was refused at its line is not then called missing,
    nor judged by the default standing in for it: 'backend =
    nosuchhost.invalid:25' also said 'backend: missing', 'mode = plian' also
    'mode = tls needs a certificate', data_ports out of range also
    'data_ports: missing'. One error, at the key's line."""
    text = base(certs, listener_lines=lines, tls_lines=None if tls else [])
    key = bad.split("=")[0].strip()
    found, out = check_error(workdir, text, bad, "web", key)
    assert len(found) == 1, out
    assert "1 error, configuration refused" in out, out


def test_bad_mode(workdir, certs):
    text = base(certs, listener_lines=["listen = 127.0.0.1:8443", "mode = tsl", "protocol = http",
                                       "backend = 127.0.0.1:8080"])
    check_error(workdir, text, "mode = tsl", "web", "mode", [r"starttls", r"redirect"])


def test_bad_protocol(workdir, certs):
    text = base(certs, listener_lines=["listen = 127.0.0.1:8443", "mode = tls",
                                       "protocol = imap4", "backend = 127.0.0.1:8080"])
    check_error(workdir, text, "protocol = imap4", "web", "protocol", [r"\bimap\b"])


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "unix:",
                                   ":8080", "127.0.0.1:80x"])
def test_bad_backend(workdir, certs, value):
    text = base(certs, listener_lines=["listen = 127.0.0.1:8443", "mode = tls", "protocol = http",
                                       "backend = " + value])
    check_error(workdir, text, "backend = ", "web", "backend")


@pytest.mark.parametrize("value", ["127.0.0.1: +25", "127.0.0.1:+25", "[::1]: 25"])
def test_a_backend_port_is_digits_only(workdir, certs, value):
    """strtol() took a sign and leading blanks in a port: these were
    accepted as port 25."""
    text = base(certs, listener_lines=["listen = 127.0.0.1:8443", "mode = tls", "protocol = http",
                                       "backend = " + value])
    found, out = check_error(workdir, text, "backend = ", "web", "backend",
                             [re.escape("'%s' has no valid port; expected a number 1-65535"
                                        % value) + "$"])
    assert len(found) == 1, out


@pytest.mark.parametrize("header,ok", [("[web]garbage here", False), ("[web] x", False),
                                       ("[web] ; the site", True), ("[web]\t# the site", True),
                                       ("[web]  ", True)])
def test_only_a_comment_may_follow_a_section_header(workdir, certs, header, ok):
    """inih ignores what follows the ']': "[web]garbage here" was read as
    [web] without a word. Refused at the header's line; blanks and a
    comment are fine."""
    text = base(certs).replace("[web]", header)
    rc, out, path = portier_check(workdir, text)
    if ok:
        assert rc == 0 and "after the section" not in out, out
        return
    assert rc == 1, out
    want = "%s:%d: [web] text after the section header's ']'; only a comment may follow it" % (
        path, lineno(text, header))
    assert want in out.splitlines(), out
    assert "1 error, configuration refused" in out, out


def test_missing_backend(workdir, certs):
    text = base(certs, listener_lines=["listen = 127.0.0.1:8443", "mode = tls", "protocol = http"])
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    assert re.search(TAG + r"%s:\d+: \[web\].*backend" % re.escape(path), out, re.M), out


def test_missing_listen(workdir, certs):
    text = base(certs, listener_lines=["mode = tls", "protocol = http", "backend = 127.0.0.1:8080"])
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    assert re.search(TAG + r"%s:\d+: \[web\].*listen" % re.escape(path), out, re.M), out


@pytest.mark.parametrize("value", ["1.1", "1.0", "1", "tls1.1"])
def test_min_version_below_1_2(workdir, certs, value):
    text = base(certs, tls_lines=["min_version = " + value, "cert = " + certs.ec.cert,
                                  "key = " + certs.ec.key])
    check_error(workdir, text, "min_version", "tls", "min_version", [r"1\.2"])


def test_bad_policy(workdir, certs):
    text = base(certs, tls_lines=["policy = old", "cert = " + certs.ec.cert,
                                  "key = " + certs.ec.key])
    check_error(workdir, text, "policy", "tls", "policy", [r"intermediate", r"modern"])


def test_bad_timeout_and_max_connections(workdir, certs):
    text = base(certs, listener_lines=["listen = 127.0.0.1:8443", "mode = tls", "protocol = http",
                                       "backend = 127.0.0.1:8080", "handshake_timeout = soon",
                                       "max_connections = -5"])
    check_error(workdir, text, "handshake_timeout", "web", "handshake_timeout")
    check_error(workdir, text, "max_connections", "web", "max_connections")


def test_missing_cert_file(workdir, certs):
    missing = str(workdir / "nope" / "missing.pem")
    text = base(certs, tls_lines=["cert = " + missing, "key = " + certs.ec.key])
    check_error(workdir, text, "cert = ", "tls", "cert", [re.escape(missing)])


def test_missing_key_file(workdir, certs):
    missing = str(workdir / "missing.key")
    text = base(certs, tls_lines=["cert = " + certs.ec.cert, "key = " + missing])
    check_error(workdir, text, "key = ", "tls", "key", [re.escape(missing)])


def test_key_not_matching_cert(workdir, certs):
    text = base(certs, tls_lines=["cert = " + certs.ec.cert, "key = " + certs.wrongkey])
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    found = lines_at(out, path, [lineno(text, "key = "), lineno(text, "cert = ")])
    assert any(re.search(r"\[tls\] (key|cert): .*match", l, re.I) for l in found), out


def test_rsa_key_for_ecdsa_cert(workdir, certs):
    """A key of the other type (an RSA key left beside a renewal to ECDSA)
    is a key that does not match, not a file that cannot be read."""
    text = base(certs, tls_lines=["cert = " + certs.ec.cert, "key = " + certs.rsa.key])
    check_error(workdir, text, "key = ", "tls", "key",
                [r"%s: private key does not match the certificate$" % re.escape(certs.rsa.key)])


def test_key_defaults_to_cert_file(workdir, certs):
    combined = workdir / "combined.pem"
    combined.write_text(open(certs.ec.key).read() + open(certs.ec.cert).read())
    os.chmod(combined, 0o600)
    text = base(certs, tls_lines=["cert = %s" % combined])
    rc, out, _ = portier_check(workdir, text)
    assert rc == 0, out


def test_key_before_any_cert(workdir, certs):
    text = base(certs, tls_lines=["key = " + certs.ec.key, "cert = " + certs.ec.cert,
                                  "key = " + certs.ec.key])
    check_error(workdir, text, "key = ", "tls", "key")


def test_a_certificate_problem_shows_beside_other_errors(workdir, certs):
    """An error elsewhere in the file (an unknown key, a listener with no
    backend) does not hide a certificate's: one run of -t reports both.
    The certificates were loaded only once the file had no other error,
    so the expired one showed only after the typo was fixed."""
    text = base(certs, tls_lines=["cert = " + certs.expired.cert, "key = " + certs.expired.key],
                listener_lines=["listen = 127.0.0.1:8443", "mode = tls", "protocol = http",
                                "backend = 127.0.0.1:8080", "bakend = 127.0.0.1:8081"])
    check_error(workdir, text, "bakend = ", "web", "bakend", [r"unknown"])
    check_error(workdir, text, "cert = ", "tls", "cert", [r"expired"])
    # A listener that cannot be built at all (no backend) is no reason to
    # skip the certificates either, and nothing else is said twice.
    text = base(certs, tls_lines=["cert = " + certs.expired.cert, "key = " + certs.expired.key],
                listener_lines=["listen = 127.0.0.1:8443", "mode = tls", "protocol = http"])
    check_error(workdir, text, "cert = ", "tls", "cert", [r"expired"])
    rc, out, path = portier_check(workdir, text)
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == len(set(lines)), out


def test_expired_cert_is_an_error(workdir, certs):
    text = base(certs, tls_lines=["cert = " + certs.expired.cert, "key = " + certs.expired.key])
    check_error(workdir, text, "cert = ", "tls", "cert", [r"expired"])


def test_cert_expiring_in_10_days_is_a_warning(workdir, certs):
    text = base(certs, tls_lines=["cert = " + certs.expiring.cert, "key = " + certs.expiring.key])
    rc, out, path = portier_check(workdir, text)
    assert rc == 0, out
    found = lines_at(out, path, [lineno(text, "cert = ")])
    assert any(re.search(r"warning", l, re.I) and re.search(r"expir", l, re.I)
               and re.search(r"\b(9|10) days?\b", l) for l in found), out


def test_chain_that_does_not_verify(workdir, certs):
    """A leaf followed by a CA that did not sign it."""
    other_ca = workdir / "other-ca.pem"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(workdir / "other-ca.key"), "-out", str(other_ca), "-days", "30",
         "-subj", "/CN=other CA"], env={"OPENSSL_CONF": "/dev/null"}, check=True)
    bad_chain = workdir / "badchain.pem"
    bad_chain.write_text(open(certs.ec.leaf).read() + other_ca.read_text())
    text = base(certs, tls_lines=["cert = %s" % bad_chain, "key = " + certs.ec.key])
    check_error(workdir, text, "cert = ", "tls", "cert", [r"chain|issuer|sign|verif"])


def test_a_cert_file_holding_its_key_is_read_once(workdir, certs):
    """The cert file is opened once, and the chain and the key are taken
    from what that open read: a renewal that replaces the file cannot pair
    one certificate with another's key. (The key was read by a second open
    of the file.)"""
    both = workdir / "both.pem"
    both.write_text(open(certs.ec.cert).read() + open(certs.ec.key).read())
    text = base(certs, tls_lines=["cert = %s" % both])
    opens = fileopens.OpenCount(str(both))
    try:
        rc, out, _ = portier_check(workdir, text)
        assert rc == 0, out
        assert opens.count() == 1, "portier -t opened %s %d times:\n%s" % (
            both, opens.count(), out)
    finally:
        opens.close()


@pytest.mark.parametrize("what", ["fifo", "device"])
def test_a_cert_or_key_that_is_no_regular_file_is_refused_at_once(workdir, certs, what):
    """cert and key are read without blocking and only from regular files:
    a FIFO named by mistake held `portier -t` and a reloading master until
    somebody wrote to it, and /dev/urandom fed the PEM reader for ever."""
    if what == "fifo":
        odd = str(workdir / "cert.fifo")
        os.mkfifo(odd)
    else:
        odd = "/dev/urandom"
    for key, lines in (("cert", ["cert = " + odd, "key = " + certs.ec.key]),
                       ("key", ["cert = " + certs.ec.cert, "key = " + odd])):
        text = base(certs, tls_lines=lines)
        found, _ = check_error(workdir, text, "%s = %s" % (key, odd), "tls", key,
                               [r"%s: not a regular file$" % re.escape(odd)])
        assert len(found) == 1, found


def test_a_file_too_long_for_what_it_should_hold_says_so(workdir, certs):
    """cert, key and ticket_keys over their bounds (1 MiB, 1 MiB, 16 KiB):
    refused before reading, the message says what the file should have held
    (most likely another file was named by mistake)."""
    big = workdir / "big.pem"
    big.write_bytes(b"#" * (1024 * 1024 + 1))
    keys = workdir / "keys"
    keys.write_bytes(b"#" * 16385)
    os.chmod(keys, 0o600)
    for key, lines, path, words in (
            ("cert", ["cert = %s" % big, "key = " + certs.ec.key], big,
             r"longer than 1048576 bytes, too long for a certificate chain$"),
            ("key", ["cert = " + certs.ec.cert, "key = %s" % big], big,
             r"longer than 1048576 bytes, too long for a private key$"),
            ("ticket_keys", ["cert = " + certs.ec.cert, "key = " + certs.ec.key,
                             "ticket_keys = %s" % keys], keys,
             r"longer than 16384 bytes, too long for a ticket key file \(a few lines\)$")):
        text = base(certs, tls_lines=lines)
        found, _ = check_error(workdir, text, "%s = %s" % (key, path), "tls", key,
                               [re.escape(str(path)) + ": " + words])
        assert len(found) == 1, found


def test_tls_certs_no_listener_uses_are_a_warning(workdir, certs):
    """-t loads the certificates the listeners use: [tls] ones that every
    TLS listener overrides (or with no TLS listener at all) are never read,
    and -t says so rather than pass a file that may not even exist."""
    missing = str(workdir / "missing.pem")
    own = ["cert = " + certs.ec.cert, "key = " + certs.ec.key]
    for listener_lines in (
            ["listen = 127.0.0.1:8443", "mode = tls", "protocol = http",
             "backend = 127.0.0.1:8080"] + own,
            ["listen = 127.0.0.1:8080", "mode = plain", "protocol = http",
             "backend = 127.0.0.1:8081"]):
        text = base(certs, tls_lines=["cert = " + missing], listener_lines=listener_lines)
        rc, out, path = portier_check(workdir, text)
        assert rc == 0, out
        want = "warning: %s:%d: [tls] cert: no listener uses the [tls] certificates" % (
            path, lineno(text, "cert = " + missing))
        assert any(l.startswith(want) for l in out.splitlines()), out
    # Used by one listener: no such warning (and checked: none here).
    rc, out, _ = portier_check(workdir, base(certs))
    assert rc == 0 and "no listener uses" not in out, out


def test_listener_cert_errors_name_the_listener(workdir, certs):
    text = base(certs, listener_lines=["listen = 127.0.0.1:8443", "mode = tls", "protocol = http",
                                       "backend = 127.0.0.1:8080",
                                       "cert = " + certs.expired.cert,
                                       "key = " + certs.expired.key])
    check_error(workdir, text, "cert = " + certs.expired.cert, "web", "cert", [r"expired"])


def test_every_problem_is_reported(workdir, certs):
    text = base(certs,
                tls_lines=["min_version = 1.1", "cert = " + certs.ec.cert,
                           "key = " + certs.ec.key],
                listener_lines=["listen = 127.0.0.1:99999", "mode = tls", "protocol = http",
                                "backend = 127.0.0.1:8080", "bakend = 127.0.0.1:8080"])
    text += "\n[imaps]\nlisten = 127.0.0.1:9993\nmode = sometimes\nprotocol = imap\n" \
            "backend = 127.0.0.1:143\n"
    rc, out, path = portier_check(workdir, text)
    assert rc == 1, out
    for needle, sect, key in [("min_version", "tls", "min_version"),
                              ("listen = 127.0.0.1:99999", "web", "listen"),
                              ("bakend", "web", "bakend"),
                              ("mode = sometimes", "imaps", "mode")]:
        n = lineno(text, needle)
        assert re.search(TAG + r"%s:%d: \[%s\] %s: " % (re.escape(path), n, sect, key), out, re.M), \
            "problem at line %d (%s) not reported:\n%s" % (n, needle, out)


def test_start_with_broken_config_fails_like_check(workdir, certs):
    """Not only -t: starting with a broken config prints the same and exits 1."""
    text = base(certs, listener_lines=["listen = 127.0.0.1:0", "mode = tsl", "protocol = http",
                                       "backend = 127.0.0.1:8080"])
    rc, out, path = portier_check(workdir, text, args=("-f",))
    assert rc == 1, out
    assert re.search(TAG + r"%s:%d: \[web\] mode: " % (re.escape(path), lineno(text, "mode = tsl")),
                     out, re.M), out


def test_missing_config_file(workdir):
    missing = str(workdir / "absent.ini")
    cp = run([harness.PORTIER_BIN, "-t", "-c", missing])
    assert cp.returncode == 1
    assert missing in cp.out + cp.err


# ---- lint: well-known port used with the other model ----------------------

def lint_config(certs, port, mode, protocol):
    backend = "backend = 127.0.0.1:10025"
    lines = ["listen = %s" % port, "mode = " + mode, "protocol = " + protocol]
    if mode != "redirect":
        lines.append(backend)
    # A certificate only where the listener terminates TLS: unused [tls]
    # ones are a warning of their own.
    return base(certs, listener_lines=lines,
                tls_lines=None if mode in ("tls", "starttls") else [])


@pytest.mark.parametrize("port,mode,protocol", [
    (993, "starttls", "imap"), (995, "plain", "pop3"), (465, "starttls", "smtp"),
    (636, "plain", "ldap"), (443, "plain", "http"),
    (25, "tls", "smtp"), (587, "tls", "smtp"), (143, "tls", "imap"), (110, "tls", "pop3"),
    (389, "tls", "ldap"), (80, "tls", "http"),
])
def test_lint_port_model_mismatch(workdir, certs, port, mode, protocol):
    text = lint_config(certs, port, mode, protocol)
    rc, out, path = portier_check(workdir, text)
    found = lines_at(out, path, [lineno(text, "listen = "), lineno(text, "mode = ")])
    warn = [l for l in found if re.search(r"warning", l, re.I) and re.search(r"\b%d\b" % port, l)]
    assert warn, "no lint warning for port %d with mode = %s:\n%s" % (port, mode, out)
    if mode != "starttls":   # starttls may still be 'not implemented yet' (an error)
        assert rc == 0, "a lint warning alone must not fail -t:\n" + out


@pytest.mark.parametrize("port,mode,protocol", [
    (993, "tls", "imap"), (465, "tls", "smtp"), (443, "tls", "http"), (636, "tls", "ldap"),
    (80, "redirect", "http"), (8443, "tls", "http"), (2525, "plain", "tcp"),
])
def test_no_lint_for_matching_model(workdir, certs, port, mode, protocol):
    text = lint_config(certs, port, mode, protocol)
    rc, out, _ = portier_check(workdir, text)
    assert rc == 0, out
    assert not re.search(r"(?i)warning", out), out


@pytest.mark.parametrize("port", [587, 2525])
def test_lint_optional_starttls_off_port_25(workdir, certs, port):
    """portier probe's starttls-not-required, said by -t where the config
    shows it: optional STARTTLS anywhere but 25 lets logins go in clear."""
    text = base(certs, listener_lines=["listen = %d" % port, "mode = starttls",
                                       "protocol = smtp", "starttls = optional",
                                       "backend = 127.0.0.1:10025"])
    rc, out, path = portier_check(workdir, text)
    assert rc == 0, out
    found = lines_at(out, path, [lineno(text, "listen = ")])
    assert any(re.search(r"warning.*starttls = optional on port %d lets a client that does "
                         r"not upgrade send its password in clear" % port, l) for l in found), out
    # On 25 it is what RFC 3207 asks for: no warning.
    text = base(certs, listener_lines=["listen = 25", "mode = starttls", "protocol = smtp",
                                       "starttls = optional", "backend = 127.0.0.1:10025"])
    rc, out, _ = portier_check(workdir, text)
    assert rc == 0 and not re.search(r"(?i)warning", out), out


# ---- shipped example configs ------------------------------------------------

def example_configs():
    return sorted(glob.glob(os.path.join(REPO, "config", "*.ini")))


def test_example_configs_exist():
    names = {os.path.basename(p) for p in example_configs()}
    missing = {"portier.ini", "mail-gateway.ini", "ldap-front.ini", "small-office.ini"} - names
    assert not missing, "config/ lacks %s" % sorted(missing)


@pytest.mark.parametrize("path", example_configs() or ["<none>"])
def test_example_config_checks_clean(workdir, certs, path):
    """-t exits 0 on each config/*.ini. The examples name certificates under
    /etc/portier/tls that a test machine lacks: their cert/key values are pointed
    at generated test certificates (ECDSA and RSA alternately), nothing else changes."""
    assert path != "<none>", "no config/*.ini yet"
    leaves = [certs.ec, certs.rsa]
    n = {"cert": 0, "key": 0}
    out_lines = []
    for line in open(path).read().splitlines():
        m = re.match(r"^(\s*)(cert|key)(\s*=\s*)(\S.*)$", line)
        if m:
            leaf = leaves[n[m.group(2)] % 2]
            n[m.group(2)] += 1
            line = m.group(1) + m.group(2) + m.group(3) + (leaf.cert if m.group(2) == "cert"
                                                            else leaf.key)
        out_lines.append(line)
    rc, out, _ = portier_check(workdir, "\n".join(out_lines) + "\n",
                               name=os.path.basename(path))
    assert rc == 0, "portier -t failed on %s:\n%s" % (path, out)


# ---- other flags --------------------------------------------------------------

def test_version_names_boringssl_flavour():
    cp = run([harness.PORTIER_BIN, "-V"])
    assert cp.returncode == 0, cp.err
    out = cp.out + cp.err
    m = re.search(r"project\(portier VERSION ([0-9.]+)", open(os.path.join(REPO, "CMakeLists.txt")).read())
    assert m and m.group(1) in out, out
    # The TLS line is exactly one of cmake/BoringSSL.cmake's three
    # PORTIER_BORINGSSL_DESC, chosen by how this tree was configured: a
    # -DBORINGSSL_ROOT tree says where its library came from, the Debian
    # package is the small build, the default build from Debian's source
    # the full one. Nothing vaguer passes.
    tls = re.findall(r"^TLS: (.*)$", cp.out, re.M)
    assert len(tls) == 1, out
    cache = _cmake_cache()
    if cache.get("BORINGSSL_ROOT"):
        assert tls[0] == "self-built BoringSSL from " + cache["BORINGSSL_ROOT"], out
    elif cache.get("PORTIER_BORINGSSL_SYSTEM", "").upper() in ("ON", "1", "TRUE", "YES"):
        assert tls[0] == "Debian android-libboringssl (small build: OPENSSL_SMALL, slow)", out
    else:
        assert re.fullmatch(r"BoringSSL [0-9a-f]{40} from Debian source \S+, "
                            r"full build \(no OPENSSL_SMALL\)", tls[0]), out


def _cmake_cache():
    """The build tree's CMakeCache.txt as {name: value} (PORTIER_BUILD)."""
    build = os.environ.get("PORTIER_BUILD")
    assert build, "PORTIER_BUILD is not set: cannot tell which BoringSSL this tree built"
    cache = {}
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"^([A-Za-z_0-9]+):[A-Z]+=(.*)$", line.rstrip("\n"))
            if m:
                cache[m.group(1)] = m.group(2)
    return cache


def test_help():
    cp = run([harness.PORTIER_BIN, "-h"])
    assert cp.returncode == 0
    out = cp.out + cp.err
    for flag in ("-c", "-f", "-t", "-V"):
        assert flag in out, out


@pytest.mark.parametrize("args", [["-Z"], ["-t", "stray-operand"]])
def test_unknown_option_fails(args):
    """portier(8): a usage error exits 2 (1 is a configuration error) and
    prints the usage on stderr, not stdout."""
    cp = run([harness.PORTIER_BIN] + args)
    assert cp.returncode == 2, (cp.returncode, cp.out, cp.err)
    assert cp.out == "", cp.out
    assert cp.err.count("usage: portier [-c FILE] [-f] [-t] [-V] [-K] [-h]") == 1, cp.err


def test_annotated_example_names_every_key():
    """config/portier.ini promises every key, set or commented out with its
    default: hold it to that against the key table (`portier -K`)."""
    cp = harness.run([harness.PORTIER_BIN, "-K"])
    assert cp.returncode == 0, cp.err
    keys = re.findall(r"^\| `([a-z0-9_]+)`", cp.out, re.M)
    assert len(keys) > 20, cp.out
    with open(os.path.join(REPO, "config", "portier.ini")) as f:
        text = f.read()
    missing = [k for k in keys if not re.search(r"^;?%s = " % k, text, re.M)]
    assert not missing, "config/portier.ini lacks %s" % missing


@pytest.mark.parametrize("value", ["nan", "0x10", "1e400", "5 s"])
def test_duration_outside_documented_syntax(workdir, certs, value):
    """strtod() would have taken these (or turned them into garbage); -t
    must refuse them at their line, naming the key."""
    text = base(certs, listener_lines=["listen = 127.0.0.1:8443", "mode = tls", "protocol = http",
                                       "backend = 127.0.0.1:8080", "idle_timeout = " + value])
    found, out = check_error(workdir, text, "idle_timeout", "web", "idle_timeout",
                             [re.escape("'%s' is not a duration" % value)])
    assert len(found) == 1, out
    assert re.search(r"1 error, configuration refused", out), out
