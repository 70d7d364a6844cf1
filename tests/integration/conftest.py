"""Fixtures for portier's integration tests. See harness.py for the helpers.

- certs        (session) a CA and leaves generated with the openssl CLI
- workdir      a temp dir per test
- portier      factory: portier(sections, glob=[(key, value)]) -> a running
               harness.Portier ([portier] gets glob's keys too), stopped by PID
               at teardown, which asserts it exited 0 on SIGTERM
- http_backend a plaintext HTTP server (thread) on 127.0.0.1
- dovecot, smtpd, slapd: real backends on free loopback ports, stopped by PID

Run one file by hand (as root, after scripts/test installed the packages):
    cd tests/integration
    PORTIER_BIN=../../build/portier PORTIER_BUILD=../../build \\
        /usr/bin/python3 -m pytest -q -p no:cacheprovider test_redirect.py [-k NAME]
or through ctest:  ctest --test-dir build -R integration/test_redirect --output-on-failure
test_backends.py checks the backends themselves, without portier.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def pytest_configure(config):
    # Every test talks to a real portier; refuse to run (not skip) without one.
    if not harness.PORTIER_BIN:
        raise pytest.UsageError("PORTIER_BIN is not set: run through ctest, or export "
                                "PORTIER_BIN=build/portier PORTIER_BUILD=build")


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return harness.Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def portier(workdir):
    started = []

    def start(sections, name="portier", glob=(), env=None):
        p = harness.Portier(workdir, sections, name=name, glob=glob, env=env)
        started.append(p)
        return p

    yield start
    errors = []
    for p in started:
        try:
            p.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def http_backend():
    b = harness.HTTPBackend()
    yield b
    b.stop()


@pytest.fixture
def raw_backend():
    """Factory: raw_backend(handler) -> harness.RawBackend."""
    made = []

    def make(handler):
        b = harness.RawBackend(handler)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


@pytest.fixture(scope="module")
def dovecot():
    d = harness.Dovecot()
    yield d
    d.stop()


# dovecot with `ssl = yes` (Debian's default): it offers STARTTLS/STLS to
# portier's plaintext connection and would begin TLS inside portier's on a
# second one, with its own certificate (the IMAP and POP3 filters' tests).
# And COMPRESS=DEFLATE after login (imap_zlib), which the IMAP filter hides.
@pytest.fixture(scope="module")
def dovecot_ssl(certs):
    d = harness.Dovecot(ssl="yes", leaf=certs.ec, compress=True)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def smtpd():
    s = harness.OpenSMTPD()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    s = harness.Slapd(tmp_path_factory.mktemp("slapd"))
    yield s
    s.stop()


@pytest.fixture
def closed_port():
    """A loopback port with nothing listening (bound, then released)."""
    return harness.free_port()
