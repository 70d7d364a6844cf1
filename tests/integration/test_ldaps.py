"""slapd behind an implicit-TLS ldaps listener, driven by OpenLDAP's own clients."""

import re

import pytest

import harness
from harness import listener, tls_items
from starttls_support import Client, ldap_add_huge, ldap_unbind, starttls_mid_search


@pytest.fixture(scope="module")
def ldaps_portier(tmp_path_factory, certs, slapd):
    p = harness.Portier(tmp_path_factory.mktemp("ldapsportier"), [
        ("tls", tls_items(certs.ec)),
        listener("ldaps", slapd.port, protocol="ldap"),
    ])
    yield p
    p.stop()


def ldap_env(certs):
    return {"LDAPTLS_CACERT": certs.ca, "LDAPTLS_REQCERT": "demand", "LDAPCONF": "/dev/null",
            "LDAPRC": "/dev/null"}


def test_ldapsearch_over_ldaps(ldaps_portier, slapd, certs):
    url = "ldaps://127.0.0.1:%d/" % ldaps_portier.port("ldaps")
    cp = harness.run(["ldapsearch", "-x", "-LLL", "-o", "nettimeout=10", "-H", url,
                      "-b", "dc=example,dc=org", "(uid=alice)", "description", "mail"],
                     env=ldap_env(certs))
    assert cp.returncode == 0, cp.err
    assert "dn: uid=alice,ou=people,dc=example,dc=org" in cp.out
    assert "description: " + slapd.token in cp.out
    assert "mail: alice@example.org" in cp.out


def test_ldapwhoami_simple_bind_over_ldaps(ldaps_portier, slapd, certs):
    url = "ldaps://127.0.0.1:%d/" % ldaps_portier.port("ldaps")
    cp = harness.run(["ldapwhoami", "-x", "-o", "nettimeout=10", "-H", url,
                      "-D", slapd.ROOTDN, "-w", slapd.rootpw], env=ldap_env(certs))
    assert cp.returncode == 0, cp.err
    assert cp.out.strip() == "dn:" + slapd.ROOTDN
    cp = harness.run(["ldapwhoami", "-x", "-o", "nettimeout=10", "-H", url,
                      "-D", slapd.ROOTDN, "-w", "wrong"], env=ldap_env(certs))
    assert cp.returncode == 49, cp.out + cp.err   # invalidCredentials, from slapd


def test_ldaps_refuses_untrusted_ca(ldaps_portier, certs, workdir):
    """The ldaps client really verifies: with a CA that did not sign portier's
    certificate the search must fail (so the passing tests above mean something)."""
    other_ca = workdir / "other-ca.pem"
    harness.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", str(workdir / "other-ca.key"), "-out", str(other_ca),
                 "-days", "1", "-subj", "/CN=other CA"], env={"OPENSSL_CONF": "/dev/null"},
                check=True)
    env = ldap_env(certs)
    env["LDAPTLS_CACERT"] = str(other_ca)
    mark = ldaps_portier.mark()
    cp = harness.run(["ldapsearch", "-x", "-LLL", "-o", "nettimeout=10", "-H",
                      "ldaps://127.0.0.1:%d/" % ldaps_portier.port("ldaps"), "-d", "1",
                      "-b", "dc=example,dc=org", "(uid=alice)"], env=env)
    assert cp.returncode != 0
    assert "Can't contact LDAP server" in cp.err, cp.err
    # That message would also show with portier down. Proof that portier
    # was there and that the client walked away over the certificate: the
    # client's own TLS layer (GnuTLS, in libldap's debug output) says the
    # certificate is untrusted, and portier logs a connection that reached
    # TLS and carried not one byte of LDAP.
    assert re.search(r"TLS: peer cert untrusted or revoked", cp.err), cp.err
    # (A late close line of an earlier test's client may follow mark: this
    # one is told apart by its empty relay.)
    ldaps_portier.wait_log(r"\[ldaps\] close client=127\.0\.0\.1:\d+ sni=\S+ tls=TLSv1\.[23] "
                           r"cipher=\S+ resumed=no up=0 down=0 ", since=mark)


def test_starttls_during_a_large_result_is_answered_between_messages(ldaps_portier, slapd,
                                                                     certs):
    """On LDAPS a StartTLS gets portier's operationsError; sent while a
    large search result flows to a client that reads slowly, that answer
    must go between two of slapd's messages, not into the middle of an
    entry (as it was), and not be dropped when the client-bound buffer is
    full (as it also was)."""
    values = ldap_add_huge(slapd)
    c = Client(ldaps_portier.port("ldaps"), rcvbuf=4096)
    try:
        c.tls(certs)
        starttls_mid_search(c, values)
        c.send(ldap_unbind(4))
        assert c.read_to_eof() == b""
    finally:
        c.close()
