"""FTP faults portier must handle that vsftpd never shows: a backend whose
227 names another host, a passive data port where nothing listens on the
backend, PORT over max_data_connections, and an active-mode connect to the
client that hangs. The backend is a scripted fake (raw_backend) that records
every command line it gets; the clients are ftplib sessions (test_ftps's
helpers) and raw sockets for the data side."""

import ftplib
import socket
import time

import pytest

import harness
from test_ftps import ACTIVE, ReusingFTP_TLS, listening, login, ports_of, start
from test_limits import accept_queue


# What the fake backend says when a verb has no scripted answer. portier
# answers AUTH, PBSZ and PROT itself, so the backend sees only the login,
# the data-channel commands and QUIT.
REPLIES = {
    "USER": b"331 Please specify the password.\r\n",
    "PASS": b"230 Login successful.\r\n",
    "TYPE": b"200 Switching to Binary mode.\r\n",
    "NOOP": b"200 NOOP ok.\r\n",
    "QUIT": b"221 Goodbye.\r\n",
}


def fake_ftpd(script=None):
    """A raw_backend handler: greet 220, answer each command line from
    script (verb -> bytes, or a function (conn, line, seen) -> bytes),
    else REPLIES, else 502; the result is the list of command lines seen,
    once the connection ends or QUIT is answered."""
    script = dict(script or {})

    def handler(c):
        seen = []
        c.sendall(b"220 fake FTP ready\r\n")
        f = c.makefile("rb")
        while True:
            line = f.readline(4096)
            if not line:
                return seen
            cmd = line.rstrip(b"\r\n").decode("latin-1")
            seen.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            reply = script.get(verb, REPLIES.get(verb, b"502 Command not implemented.\r\n"))
            if callable(reply):
                reply = reply(c, cmd, seen)
            c.sendall(reply)
            if verb == "QUIT":
                return seen
    return handler


def pasv227(port, host=(127, 0, 0, 1)):
    return b"227 Entering Passive Mode (%d,%d,%d,%d,%d,%d).\r\n" % (
        tuple(host) + (port >> 8, port & 255))


def quit_and_seen(f, backend):
    """End session f with QUIT (221) and return the backend's command lines."""
    assert f.quit().startswith("221"), "QUIT"
    return backend.wait_result(10)


def test_pasv_naming_another_host_is_refused(portier, certs, raw_backend):
    """A backend whose 227 names another host than its own (10.9.8.7) is
    refused: the client gets 425 in place of the 227, no data port opens,
    the log names the refusal, and the session goes on. (portier would
    connect the backend's own address anyway, whatever the 227 says; EPSV
    has no such check to test: a 229 carries only a port.)"""
    b = raw_backend(fake_ftpd({"PASV": b"227 Entering Passive Mode (10,9,8,7,156,64).\r\n"}))
    p, low, high = start(portier, certs, b.port)
    f = login(ReusingFTP_TLS, certs, p.port("ftp"))
    cport = f.sock.getsockname()[1]
    try:
        try:
            resp = f.sendcmd("PASV")
        except ftplib.error_temp as e:
            resp = str(e)
        assert resp == "425 No data port available", resp
        # No data port opened: the worker listens on the control port only.
        assert ports_of(p.worker_pid()) == [p.port("ftp")]
        assert f.voidcmd("NOOP").startswith("200")
        seen = quit_and_seen(f, b)
    finally:
        f.close()
    assert seen == ["USER anonymous", "PASS anonymous@", "PASV", "NOOP", "QUIT"], seen
    p.wait_log(r": warning: \[ftp\] client=127\.0\.0\.1:%d: backend named a passive "
               r"address that is not its own; refused$" % cport)


def test_passive_data_backend_connect_refused(portier, certs, raw_backend, closed_port):
    """The backend's 227 names its own address but a port where nothing
    listens: the client's 227 names a data port of portier's; the client's
    connection there is closed as soon as portier's connect to the backend
    is refused, the port is gone, the log says why, and the control
    connection goes on. The close is a reset, as for any data connection
    portier ends itself (a FIN before: a PROT C download would have looked
    like a whole, empty file)."""
    b = raw_backend(fake_ftpd({"PASV": pasv227(closed_port)}))
    p, low, high = start(portier, certs, b.port)
    f = login(ReusingFTP_TLS, certs, p.port("ftp"))
    d = None
    try:
        resp = f.sendcmd("PASV")
        host, port = ftplib.parse227(resp)
        assert host == "127.0.0.1" and low <= port <= high, resp
        assert port != closed_port
        # Bound first, so its port is known however early the reset comes
        # (it may beat connect()'s own return).
        d = socket.socket()
        d.bind(("127.0.0.1", 0))
        dport, cport = d.getsockname()[1], f.sock.getsockname()[1]
        d.settimeout(5 * harness.SLOW)
        t0 = time.monotonic()
        with pytest.raises(ConnectionResetError):
            d.connect(("127.0.0.1", port))
            d.recv(100)
        assert time.monotonic() - t0 < 2 * harness.SLOW
        harness.wait_for(lambda: not listening(port), 5, "the data port to close")
        assert f.voidcmd("NOOP").startswith("200")
        seen = quit_and_seen(f, b)
    finally:
        if d is not None:
            d.close()
        f.close()
    assert seen == ["USER anonymous", "PASS anonymous@", "PASV", "NOOP", "QUIT"], seen
    # Both lines name the client's data connection (its own address, not
    # the control connection's), and the close line its control connection.
    client = r"127\.0\.0\.1:%d" % dport
    p.wait_log(r"\[ftp\] data client=%s: backend \(passive data port\): Connection refused$"
               % client)
    p.wait_log(r"\[ftp\] data close client=%s control client=127\.0\.0\.1:%d .*: "
               r"backend \(passive data port\): Connection refused$" % (client, cport))


def test_port_over_max_data_connections_is_refused(portier, certs, raw_backend):
    """active = yes, max_data_connections = 1: a PASV takes the one data
    port; a PORT then gets 425 without reaching the backend (portier sends
    the backend a PORT of its own only for one it takes), is logged, and
    leaves the passive port open."""
    b = raw_backend(fake_ftpd({"PASV": pasv227(40000),
                               "PORT": b"200 PORT command successful.\r\n"}))
    p, low, high = start(portier, certs, b.port,
                         extra=ACTIVE + [("max_data_connections", "1")])
    f = login(ReusingFTP_TLS, certs, p.port("ftp"))
    ls = socket.socket()
    try:
        _, pport = ftplib.parse227(f.sendcmd("PASV"))
        assert low <= pport <= high and listening(pport)
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        cport = ls.getsockname()[1]
        try:
            resp = f.sendcmd("PORT 127,0,0,1,%d,%d" % (cport >> 8, cport & 255))
        except ftplib.Error as e:
            resp = str(e)
        assert resp == "425 No data port available", resp
        # The passive port stays; no port for the backend's active data
        # connection was opened.
        assert ports_of(p.worker_pid()) == sorted([p.port("ftp"), pport])
        assert f.voidcmd("NOOP").startswith("200")
        seen = quit_and_seen(f, b)
    finally:
        ls.close()
        f.close()
    assert seen == ["USER anonymous", "PASS anonymous@", "PASV", "NOOP", "QUIT"], seen
    p.wait_log(r"\[ftp\] client=127\.0\.0\.1:\d+: max_data_connections \(1\) reached; "
               r"refusing active mode$")


def test_active_connect_to_client_times_out(portier, certs, raw_backend):
    """Active mode, connect_timeout = 1s, a client whose data port never
    answers (a listening socket with backlog 0 whose accept queue is full:
    Linux drops further SYNs, so a connect there hangs). The backend
    connects to portier's port, says 150, writes the file and says 226 at
    once (as vsftpd does for a small file); portier gives up on the client
    after 1 s, resets the backend's data connection, and the client gets
    426, not 226: its transfer failed."""
    dialed = {}

    def retr(c, cmd, seen):
        ports = [x for x in seen if x.startswith("PORT ")]
        assert ports, seen
        v = [int(x) for x in ports[-1][5:].split(",")]
        addr = ("%d.%d.%d.%d" % tuple(v[:4]), v[4] * 256 + v[5])
        data = socket.create_connection(addr, 5)
        try:
            dialed["addr"] = addr
            c.sendall(b"150 Opening BINARY mode data connection for f (1000 bytes).\r\n")
            data.sendall(b"x" * 1000)
            c.sendall(b"226 Transfer complete.\r\n")
            t0 = time.monotonic()
            data.settimeout(10 * harness.SLOW)
            try:
                dialed["end"] = data.recv(10)
            except ConnectionResetError:
                dialed["end"] = "reset"
            dialed["after"] = time.monotonic() - t0
        finally:
            data.close()
        return b""

    b = raw_backend(fake_ftpd({"PORT": b"200 PORT command successful.\r\n", "RETR": retr}))
    p, low, high = start(portier, certs, b.port,
                         extra=ACTIVE + [("connect_timeout", "1s")])
    f = login(ReusingFTP_TLS, certs, p.port("ftp"))
    ls = socket.socket()
    fill, probe = socket.socket(), socket.socket()
    try:
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        cport = ls.getsockname()[1]
        # One connection the listener never accepts fills its queue ...
        fill.setblocking(False)
        fill.connect_ex(("127.0.0.1", cport))
        harness.wait_for(lambda: accept_queue(cport) == 1, 5, "the accept queue to fill")
        # ... and a connect there now hangs (the premise of the test).
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", cport))
            raise AssertionError("a connect to a full accept queue completed")
        except socket.timeout:
            pass
        f.voidcmd("TYPE I")
        assert f.voidcmd("PORT 127,0,0,1,%d,%d" % (cport >> 8, cport & 255)).startswith("200")
        f.putcmd("RETR f")
        f.sock.settimeout(10 * harness.SLOW)
        first = f.getline()
        t0 = time.monotonic()
        final = f.getline()
        took = time.monotonic() - t0
        assert first.startswith("150 "), first
        assert final == "426 Data connection broken; transfer aborted", final
        # Held until portier gave up on the client: about connect_timeout.
        assert 0.5 < took < 5 * harness.SLOW, took
        assert accept_queue(cport) == 1     # portier's connect never got in
        assert f.voidcmd("NOOP").startswith("200")
        seen = quit_and_seen(f, b)
    finally:
        for s in (probe, fill, ls):
            s.close()
        f.close()
    # The backend's view: its data connection was reset, about 1 s on.
    assert dialed["end"] == "reset", dialed
    assert 0.5 < dialed["after"] < 5 * harness.SLOW, dialed
    assert [x.split(" ")[0] for x in seen] == ["USER", "PASS", "TYPE", "PORT", "RETR", "NOOP",
                                               "QUIT"], seen
    # portier's PORT to the backend named a port of its own, not the client's.
    assert dialed["addr"][0] == "127.0.0.1" and dialed["addr"][1] != cport
    p.wait_log(r"\[ftp\] data close client=127\.0\.0\.1:%d control client=127\.0\.0\.1:\d+ "
               r".*: active data connection to the client: connect timed out after 1s$" % cport)
