"""The Debian package scripts/package builds, installed on this machine with
dpkg -i and purged again: the files where a Debian admin looks for them,
the shipped config that `portier -t` accepts as root and as the account the
package made, the unit systemd-analyze verifies, lintian's verdict, and
nothing left behind by dpkg --purge.

The package comes from $PORTIER_PACKAGE (scripts/test builds it once); run
alone, the test builds it with scripts/package (about three minutes). It
refuses to run on a machine where a portier package is installed already:
it would replace an admin's own."""

import glob
import os
import re
import shutil
import subprocess

import harness

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def sh(*cmd, timeout=120):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


def installed():
    cp = sh("dpkg-query", "-W", "-f=${Status}", "portier")
    return cp.returncode == 0 and "installed" in cp.stdout and "not-installed" not in cp.stdout


def the_package(tmp_path):
    deb = os.environ.get("PORTIER_PACKAGE")
    if deb:
        assert os.path.exists(deb), "PORTIER_PACKAGE=%s does not exist" % deb
        return deb
    cp = sh(os.path.join(ROOT, "scripts", "package"), str(tmp_path), timeout=1500)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    debs = glob.glob(os.path.join(str(tmp_path), "portier_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


def test_install_check_and_purge(tmp_path):
    assert not installed(), ("a portier package is installed on this machine; "
                             "this test would replace it: remove it, or run elsewhere")
    deb = the_package(tmp_path)
    cp = sh("lintian", "--fail-on", "error", deb, timeout=600)
    assert cp.returncode == 0, cp.stdout + cp.stderr

    cp = sh("dpkg", "-i", deb, timeout=300)
    try:
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert installed()

        # Where Debian users look.
        for path in ("/usr/sbin/portier", "/usr/share/man/man8/portier.8.gz",
                     "/usr/share/man/man5/portier.ini.5.gz",
                     "/lib/systemd/system/portier.service",
                     "/usr/lib/sysusers.d/portier.conf", "/usr/lib/tmpfiles.d/portier.conf",
                     "/etc/portier/portier.ini",
                     "/usr/share/doc/portier/copyright",
                     "/usr/share/doc/portier/LICENSE.BoringSSL.gz",
                     "/usr/share/doc/portier/examples/portier.ini",
                     "/usr/share/portier/fail2ban/filter.d/portier.conf",
                     "/usr/share/portier/fail2ban/jail.d/portier.conf",
                     "/usr/share/portier/systemd/portier-unprivileged.service"):
            assert os.path.exists(path), path
        assert os.access("/usr/sbin/portier", os.X_OK)
        assert os.access("/usr/share/portier/certbot/portier-reload", os.X_OK)
        conffiles = sh("dpkg-query", "-W", "-f=${Conffiles}", "portier").stdout
        assert re.search(r"^\s*/etc/portier/portier\.ini [0-9a-f]{32}$", conffiles, re.M), \
            conffiles
        # The shipped man page is the tree's.
        cp = sh("sh", "-c", "zcat /usr/share/man/man8/portier.8.gz | cmp - %s"
                % os.path.join(ROOT, "docs", "portier.8"))
        assert cp.returncode == 0, cp.stdout + cp.stderr

        # The binary: the full BoringSSL build, not OPENSSL_SMALL.
        cp = sh("/usr/sbin/portier", "-V")
        assert cp.returncode == 0, cp.stderr
        assert "full build (no OPENSSL_SMALL)" in cp.stdout + cp.stderr, cp.stdout + cp.stderr

        # The account the maintainer scripts made, and the shipped config
        # that names it, which -t accepts.
        cp = sh("getent", "passwd", "portier")
        assert cp.returncode == 0 and re.match(r"portier:x:[1-9]\d*:", cp.stdout), cp.stdout
        cp = sh("/usr/sbin/portier", "-t", "-c", "/etc/portier/portier.ini")
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "user = portier" in open("/etc/portier/portier.ini").read()

        # The unit as installed, with the binary it names.
        exe = shutil.which("systemd-analyze")
        assert exe, "systemd-analyze is missing (Debian package systemd)"
        cp = sh(exe, "verify", "--man=no", "/lib/systemd/system/portier.service")
        assert cp.returncode == 0 and cp.stdout + cp.stderr == "", cp.stdout + cp.stderr
    finally:
        purge = sh("dpkg", "--purge", "portier", timeout=300)
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert not installed()
    for path in ("/usr/sbin/portier", "/etc/portier", "/lib/systemd/system/portier.service",
                 "/usr/share/portier", "/usr/share/doc/portier"):
        assert not os.path.exists(path), path
