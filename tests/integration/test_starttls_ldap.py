"""LDAP StartTLS on behalf of a plaintext slapd: ldapsearch -ZZ, ldapwhoami -ZZ,
openssl s_client -starttls ldap and a hand-written BER client search and bind
through portier."""

import re

import pytest

import harness
from harness import tls_items
from starttls_support import (SClient, connect_and_upgrade, ldap_bind, ldap_search,
                              ldap_starttls, ldap_unbind, starttls_listener,
                              Client, OID_STARTTLS, ldap_add_huge, starttls_mid_search)

BASE = "dc=example,dc=org"


@pytest.fixture(scope="module")
def ldap_portier(tmp_path_factory, certs, slapd):
    p = harness.Portier(tmp_path_factory.mktemp("starttls-ldap"), [
        ("tls", tls_items(certs.ec, certs.rsa)),
        starttls_listener("ldap", "ldap", slapd.port),
    ])
    yield p
    p.stop()


def ldap_env(certs):
    return {"LDAPTLS_CACERT": certs.ca, "LDAPTLS_REQCERT": "demand", "LDAPCONF": "/dev/null",
            "LDAPRC": "/dev/null"}


def url(p):
    return "ldap://127.0.0.1:%d/" % p.port("ldap")


def test_ldapsearch_zz(ldap_portier, slapd, certs):
    cp = harness.run(["ldapsearch", "-ZZ", "-x", "-LLL", "-o", "nettimeout=10",
                      "-H", url(ldap_portier), "-b", BASE, "(uid=alice)", "description", "mail"],
                     env=ldap_env(certs))
    assert cp.returncode == 0, cp.err
    assert "dn: uid=alice,ou=people,dc=example,dc=org" in cp.out
    assert "description: " + slapd.token in cp.out
    ldap_portier.wait_log(r"\[ldap\] close .*tls=TLSv1\.[23]")


def test_ldapsearch_zz_with_simple_bind(ldap_portier, slapd, certs):
    cp = harness.run(["ldapsearch", "-ZZ", "-x", "-LLL", "-o", "nettimeout=10",
                      "-H", url(ldap_portier), "-D", slapd.ROOTDN, "-w", slapd.rootpw,
                      "-b", BASE, "(objectClass=organizationalUnit)", "ou"], env=ldap_env(certs))
    assert cp.returncode == 0, cp.err
    assert "ou: people" in cp.out


def test_ldapwhoami_zz_simple_bind(ldap_portier, slapd, certs):
    cp = harness.run(["ldapwhoami", "-ZZ", "-x", "-o", "nettimeout=10", "-H", url(ldap_portier),
                      "-D", slapd.ROOTDN, "-w", slapd.rootpw], env=ldap_env(certs))
    assert cp.returncode == 0, cp.err
    assert cp.out.strip() == "dn:" + slapd.ROOTDN
    cp = harness.run(["ldapwhoami", "-ZZ", "-x", "-o", "nettimeout=10", "-H", url(ldap_portier),
                      "-D", slapd.ROOTDN, "-w", "wrong"], env=ldap_env(certs))
    assert cp.returncode == 49, cp.out + cp.err     # invalidCredentials, from slapd


def test_sasl_security_layer_passes(ldap_portier, slapd, certs):
    """A SASL bind that installs a security layer (DIGEST-MD5, 128 bits) wraps
    every later message in both directions (RFC 4422 3.7): no LDAPMessage
    framing is left for the guard to read. The guard and the backend side's
    framing step aside on the first byte that is not a SEQUENCE, so the
    wrapped search and its answer pass, and slapd sees the layer."""
    cp = harness.run(["ldapsearch", "-ZZ", "-LLL", "-o", "nettimeout=10", "-H", url(ldap_portier),
                      "-Y", "DIGEST-MD5", "-U", "alice", "-R", "example.org",
                      "-w", slapd.alicepw, "-b", BASE, "(uid=alice)", "description"],
                     env=ldap_env(certs))
    assert cp.returncode == 0, cp.out + cp.err
    assert "SASL data security layer installed." in cp.err
    assert "description: " + slapd.token in cp.out
    # slapd's own word: the bind installed a 128-bit layer (bind_ssf), and it
    # is the connection's whole strength (ssf): portier's connection is plain
    harness.wait_for(lambda: re.search(r'mech=DIGEST-MD5 bind_ssf=128 ssf=128',
                                       slapd.proc.log()), 10, "slapd's BIND line")


def test_ldapwhoami_zz_refuses_untrusted_ca(ldap_portier, slapd, certs, workdir):
    """The client really verifies, so the passing tests above mean something."""
    other = workdir / "other-ca.pem"
    harness.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(workdir / "other.key"),
                 "-out", str(other), "-days", "1", "-subj", "/CN=other CA"],
                env={"OPENSSL_CONF": "/dev/null"}, check=True)
    env = ldap_env(certs)
    env["LDAPTLS_CACERT"] = str(other)
    cp = harness.run(["ldapwhoami", "-ZZ", "-x", "-o", "nettimeout=10", "-H", url(ldap_portier),
                      "-D", slapd.ROOTDN, "-w", slapd.rootpw], env=env)
    assert cp.returncode != 0, cp.out
    assert "dn:" not in cp.out


def test_openssl_s_client_starttls_ldap_search(ldap_portier, slapd, certs):
    c = SClient(ldap_portier.port("ldap"), "ldap", certs.ca)
    try:
        c.expect(rb"Verify return code: 0 \(ok\)")
        c.send(ldap_search(2, BASE, "uid", "alice", attrs=["description"]))
        c.expect(slapd.token.encode())
        c.send(ldap_unbind(3))
        assert c.wait_exit() == 0, c.text()
    finally:
        c.close()


def search_alice(c, slapd, msgid):
    """A search for alice through c, upgraded: her entry (slapd's token in
    it), then success."""
    c.send(ldap_search(msgid, BASE, "uid", "alice", attrs=["description"]))
    entry = c.ldap()
    assert entry.msgid == msgid and entry.op == 0x64, entry
    assert slapd.token.encode() in entry.raw, entry
    done = c.ldap()
    assert (done.msgid, done.op, done.code) == (msgid, 0x65, 0), done


def test_ber_client_bind_and_search(ldap_portier, slapd, certs):
    c = connect_and_upgrade(ldap_portier.port("ldap"), "ldap", certs)
    try:
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        c.send(ldap_bind(2, slapd.ROOTDN, slapd.rootpw))
        r = c.ldap()
        assert (r.msgid, r.op, r.code) == (2, 0x61, 0), r     # slapd: success
        search_alice(c, slapd, 3)
        # A second StartTLS inside TLS: portier holds the TLS layer and
        # answers operationsError (RFC 4511 4.14.1); slapd goes on serving.
        c.send(ldap_starttls(4))
        r = c.ldap()
        assert (r.msgid, r.op, r.code) == (4, 0x78, 1), r
        c.send(ldap_unbind(5))
        assert c.read_to_eof() == b""
    finally:
        c.close()


def long_msgid(msg):
    """msg (short-form lengths) with its messageID's length in the long form
    (02 81 01 ...): BER allows it, and slapd reads it."""
    assert msg[0] == 0x30 and msg[1] < 0x7f and msg[2] == 0x02 and msg[3] == 0x01
    inner = b"\x02\x81" + msg[3:]
    return b"\x30" + bytes([len(inner)]) + inner


def test_second_starttls_after_a_long_form_message_id_is_still_portiers(ldap_portier, slapd,
                                                                         certs):
    """A messageID length in the long form is LDAP as slapd reads it: the
    guard frames it and stays on, so a StartTLS after it never reaches slapd
    (it used to switch the guard off for the rest of the session)."""
    c = connect_and_upgrade(ldap_portier.port("ldap"), "ldap", certs)
    try:
        c.send(long_msgid(ldap_search(3, BASE, "uid", "alice")))
        while True:
            r = c.ldap()
            assert r.msgid == 3 and r.op in (0x64, 0x65), r
            if r.op == 0x65:
                break
        assert r.code == 0, r        # slapd framed and answered it
        c.send(ldap_starttls(4))
        r = c.ldap()
        assert (r.msgid, r.op, r.code, r.diag) == (4, 0x78, 1, b"TLS is already active"), r
        c.send(long_msgid(ldap_starttls(5)))
        r = c.ldap()
        assert (r.msgid, r.op, r.code, r.diag) == (5, 0x78, 1, b"TLS is already active"), r
        c.send(ldap_unbind(6))
        assert c.read_to_eof() == b""
    finally:
        c.close()


def test_a_starttls_however_dressed_is_still_portiers(ldap_portier, slapd, certs):
    """slapd takes an ExtendedRequest as StartTLS by its requestName alone:
    with 600 bytes of controls after it, or with the name under another tag.
    Neither may reach slapd (it answered 'unsupported extended operation',
    code 2); portier answers both, and the session goes on."""
    from starttls_support import tlv
    ctl = tlv(0xa0, tlv(0x30, tlv(0x04, b"1.2.3.4.5") + tlv(0x04, b"x" * 600)))
    padded = tlv(0x30, b"\x02\x01\x09" + tlv(0x77, tlv(0x80, OID_STARTTLS)) + ctl)
    retagged = tlv(0x30, b"\x02\x01\x0a" + tlv(0x77, tlv(0x04, OID_STARTTLS)))
    c = connect_and_upgrade(ldap_portier.port("ldap"), "ldap", certs)
    try:
        for msgid, msg in ((9, padded), (10, retagged)):
            c.send(msg)
            r = c.ldap()
            assert (r.msgid, r.op, r.code, r.diag) == (msgid, 0x78, 1, b"TLS is already active"), r
        search_alice(c, slapd, 11)
        c.send(ldap_unbind(12))
        assert c.read_to_eof() == b""
    finally:
        c.close()


def test_a_starttls_in_any_encoding_slapd_reads_is_still_portiers(ldap_portier, slapd, certs):
    """BER leaves room in the encoding: a tag of several octets, a length in
    more octets than it needs. slapd reads a requestName tag of up to 8
    octets and lengths of up to 8 octets after the first (its liblber's
    widths), so each such StartTLS is one for it (sent to slapd itself, it
    answers it as it answers a plain StartTLS: code 2, "unsupported extended
    operation"); through portier, each is portier's to answer. The guard
    read tags of 5 octets and lengths of 4 at most: the rest reached slapd."""
    from starttls_support import tlv

    def long_len(n):
        return b"\x88" + n.to_bytes(8, "big")

    name = OID_STARTTLS
    forms = {
        "8-octet requestName tag":
            lambda m: tlv(0x30, b"\x02\x01" + bytes([m]) + tlv(
                0x77, b"\x9f" + b"\x80" * 6 + b"\x00" + bytes([len(name)]) + name)),
        "8-octet requestName length":
            lambda m: tlv(0x30, b"\x02\x01" + bytes([m]) + tlv(
                0x77, b"\x80" + long_len(len(name)) + name)),
        "8-octet operation length":
            lambda m: tlv(0x30, b"\x02\x01" + bytes([m]) + b"\x77" + long_len(
                2 + len(name)) + tlv(0x80, name)),
    }
    plain = Client(slapd.port)
    try:
        for msgid, form in enumerate(forms, 20):
            plain.send(forms[form](msgid))
            r = plain.ldap()
            assert (r.msgid, r.op, r.code) == (msgid, 0x78, 2), (form, r)
    finally:
        plain.close()
    c = connect_and_upgrade(ldap_portier.port("ldap"), "ldap", certs)
    try:
        for msgid, form in enumerate(forms, 30):
            c.send(forms[form](msgid))
            r = c.ldap()
            assert (r.msgid, r.op, r.code, r.diag) == (msgid, 0x78, 1, b"TLS is already active"), \
                (form, r)
        search_alice(c, slapd, 40)
    finally:
        c.close()


def test_a_starttls_with_a_critical_control_is_refused_as_slapd_refuses_it(ldap_portier, slapd,
                                                                          certs):
    """RFC 4511 4.1.11: a control marked critical that the server does not
    know forbids the operation. portier knows no control, so a StartTLS
    carrying one gets unavailableCriticalExtension (12), as slapd answers
    it, and no upgrade; the client asks again without it and goes on. (It
    was upgraded as if the control were not there.)"""
    from starttls_support import tlv
    ctl = tlv(0xa0, tlv(0x30, tlv(0x04, b"1.2.3.4.5") + tlv(0x01, b"\xff")))
    critical = tlv(0x30, b"\x02\x01\x01" + tlv(0x77, tlv(0x80, OID_STARTTLS)) + ctl)
    c = Client(ldap_portier.port("ldap"))
    try:
        c.send(critical)
        r = c.ldap()
        assert (r.msgid, r.op, r.code, r.diag) == (
            1, 0x78, 12, b"critical extension is not recognized"), r
        c.send(ldap_starttls(2))
        r = c.ldap()
        assert (r.msgid, r.op, r.code, r.name) == (2, 0x78, 0, OID_STARTTLS), r
        c.tls(certs)
        search_alice(c, slapd, 3)
        c.send(ldap_unbind(4))
        assert c.read_to_eof() == b""
    finally:
        c.close()


def test_bind_before_starttls_gets_confidentiality_required(ldap_portier, slapd):
    c = Client(ldap_portier.port("ldap"))
    try:
        c.send(ldap_bind(1, slapd.ROOTDN, slapd.rootpw))
        r = c.ldap()
        assert (r.msgid, r.op, r.code) == (1, 0x61, 13), r
        c.send(ldap_starttls(2))
        r = c.ldap()
        assert (r.msgid, r.op, r.code, r.name) == (2, 0x78, 0, OID_STARTTLS), r
    finally:
        c.close()


@pytest.fixture(scope="module")
def huge(slapd):
    return ldap_add_huge(slapd)


def test_second_starttls_during_a_large_result_is_answered_between_messages(ldap_portier,
                                                                             huge, certs):
    """A second StartTLS while a large search result flows to a client that
    reads slowly: portier's operationsError must go between two of the
    backend's messages. It used to be spliced into the middle of an entry
    (the client's BER stream broken), or dropped when the client-bound
    buffer was full (the client waited for ever)."""
    c = connect_and_upgrade(ldap_portier.port("ldap"), "ldap", certs, rcvbuf=4096)
    try:
        starttls_mid_search(c, huge)
        c.send(ldap_unbind(4))
        assert c.read_to_eof() == b""
    finally:
        c.close()
