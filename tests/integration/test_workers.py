"""workers = N: a master process, N workers serving the same sockets, restarts
of a worker that dies, session tickets that resume on any worker, and a clean
stop however the master is told to stop."""

import contextlib
import os
import re
import signal
import ssl
import struct
import time

import pytest

import harness
from harness import listener, tls_items

def children(pid):
    """PIDs whose parent is pid, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            # comm may hold spaces; the fields after its ')' are fixed.
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d))
    return sorted(out)


def started_workers(p, since=0):
    return p.workers(since)


def get(port, ctx, session=None):
    return harness.https_get(port, ctx, "/echo/workers", session)


@pytest.fixture
def two(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http")],
                glob=[("workers", "2")])
    harness.wait_for(lambda: len(started_workers(p)) == 2, 5 * harness.SLOW,
                     "two workers to start")
    return p


def test_master_starts_the_workers_and_they_serve(two, certs):
    workers = started_workers(two)
    assert sorted(workers) == [1, 2]
    assert children(two.proc.pid) == sorted(workers.values())
    assert re.search(r"started: 1 listeners on 1 sockets, 2 workers", two.log())
    ctx = certs.client_context()
    for _ in range(10):
        body, _, _ = get(two.port("web"), ctx)
        assert b"method=GET path=/echo/workers" in body
    # Each close line says which worker served it.
    harness.wait_for(lambda: len(re.findall(r"worker 1\.[12]: \[web\] close ", two.log())) == 10,
                     5 * harness.SLOW, "ten close lines from the workers")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1.2", "tls1.3"])
def test_a_ticket_resumes_on_the_other_worker(two, certs, version):
    ctx = certs.client_context()
    ctx.minimum_version = ctx.maximum_version = version
    port = two.port("web")
    workers = started_workers(two)
    mark = two.mark()
    body, session, reused = get(port, ctx)
    assert b"method=GET" in body and not reused
    assert session is not None and session.has_ticket
    m = two.wait_log(r"worker 1\.(\d): \[web\] close ", since=mark)
    issuer = int(m.group(1))
    other = 3 - issuer
    # Freeze the worker that issued the ticket: the next connection can only
    # be accepted by the other one, which never saw this session.
    os.kill(workers[issuer], signal.SIGSTOP)
    try:
        mark = two.mark()
        body, _, reused = get(port, ctx, session=session)
        assert b"method=GET" in body
        m = two.wait_log(r"worker 1\.(\d): \[web\] close .*resumed=(\S+)", since=mark)
    finally:
        os.kill(workers[issuer], signal.SIGCONT)
    assert int(m.group(1)) == other, m.group(0)
    assert reused and m.group(2) == "yes", m.group(0)


def test_a_worker_that_dies_is_replaced(two, certs):
    workers = started_workers(two)
    mark = two.mark()
    os.kill(workers[1], signal.SIGKILL)
    two.wait_log(r"error: worker 1 \(pid %d\) was killed by signal 9" % workers[1],
                 since=mark)
    # It lived long enough that no back-off applies unless it died young;
    # either way a new worker 1 starts within the back-off of one second.
    harness.wait_for(lambda: 1 in started_workers(two, since=mark), 3 * harness.SLOW,
                     "a new worker 1")
    new = started_workers(two, since=mark)[1]
    assert new != workers[1] and harness.alive(new)
    assert children(two.proc.pid) == sorted([new, workers[2]])
    body, _, _ = get(two.port("web"), certs.client_context())
    assert b"method=GET" in body


def test_sigterm_to_the_master_stops_every_worker(two):
    workers = list(started_workers(two).values())
    two.stop()          # asserts exit status 0 and no sanitizer report
    assert not any(harness.alive(w) for w in workers)
    assert re.search(r"got signal 15, stopping 2 workers", two.log())
    assert "portier stopped" in two.log()


def test_workers_end_when_the_master_is_killed(portier, certs, http_backend):
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http")],
                glob=[("workers", "2")])
    harness.wait_for(lambda: len(started_workers(p)) == 2, 5 * harness.SLOW,
                     "two workers to start")
    # Serving, each with its parent-death signal set: a worker killed
    # between its fork and that would end silently (become_worker).
    harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", p.log())) == 2,
                     5 * harness.SLOW, "two workers to serve")
    workers = list(started_workers(p).values())
    port = p.port("web")
    os.kill(p.proc.pid, signal.SIGKILL)
    p.proc.stop()
    p.stopped = True    # killed on purpose: no exit status to check
    harness.wait_for(lambda: not any(harness.alive(w) for w in workers), 5 * harness.SLOW,
                     "the workers to end after their master")
    assert not harness.port_open(port)
    assert len(re.findall(r"worker 1\.[12]: got signal 15", p.log())) == 2


def test_workers_auto_is_one_per_cpu_capped(portier, certs, http_backend, workdir):
    """auto: one worker per CPU portier may run on, at most the key's cap
    (CFG_MAX_WORKERS, as `workers = 65` is refused); then with portier
    started on one CPU only, one worker: the count follows the CPUs."""
    text = "[portier]\nworkers = 65\n"
    rc, out, _ = harness.portier_check(workdir, text, name="cap.ini")
    cap = re.search(r"workers: .*not a number from 1 to (\d+)", out)
    assert rc == 1 and cap, out
    cap = int(cap.group(1))
    assert cap == 64, out
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http")],
                glob=[("workers", "auto")])
    n = min(len(os.sched_getaffinity(0)), cap)
    m = p.wait_log(r"started: .*, (\d+) workers?")
    assert int(m.group(1)) == n
    harness.wait_for(lambda: len(started_workers(p)) == n, 5 * harness.SLOW,
                     "%d workers to start" % n)
    body, _, _ = get(p.port("web"), certs.client_context())
    assert b"method=GET" in body
    # Started on one CPU (the affinity a child inherits from this thread).
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mine)})
    try:
        one = portier([("tls", tls_items(certs.ec)),
                       listener("web", http_backend.port, protocol="http")],
                      name="one-cpu", glob=[("workers", "auto")])
    finally:
        os.sched_setaffinity(0, mine)
    assert int(one.wait_log(r"started: .*, (\d+) workers?").group(1)) == 1, one.log()


@pytest.mark.parametrize("value,why", [
    ("0", "not a number from 1 to 64"),
    ("65", "not a number from 1 to 64"),
    ("two", "not a number from 1 to 64"),
])
def test_bad_workers_value_is_refused(workdir, value, why):
    rc, out, _ = harness.portier_check(workdir, "[portier]\nworkers = %s\n\n[x]\n"
                                       "listen = 127.0.0.1:0\nmode = plain\n"
                                       "backend = 127.0.0.1:9\n" % value)
    assert rc == 1, out
    assert re.search(r"check\.ini:2: \[portier\] workers: '%s' is %s" % (value, why), out), out


# ---- user = : the workers give up root, the master keeps it -----------------

def status(pid):
    """Fields of /proc/PID/status as a dict of strings."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def ids(pid):
    st = status(pid)
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            st["Groups"].split(), st["CapEff"])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_user_drops_root_in_every_worker(portier, certs, http_backend, workers):
    import pwd
    nobody = pwd.getpwnam("nobody")
    p = portier([("tls", tls_items(certs.ec)),
                 listener("web", http_backend.port, protocol="http")],
                glob=[("workers", workers), ("user", "nobody")])
    n = int(workers)
    harness.wait_for(lambda: len(started_workers(p)) == n, 5 * harness.SLOW,
                     "%d workers to start" % n)
    assert re.search(r"master \(pid %d\) starting %d workers? as user nobody \(uid %d, gid %d\)"
                     % (p.proc.pid, n, nobody.pw_uid, nobody.pw_gid), p.log()), p.log()
    uid, gid, groups, cap = ids(p.proc.pid)
    assert uid == [0, 0, 0, 0], "the master must keep root to start workers"
    for pid in started_workers(p).values():
        # The worker may still be switching: wait until it has.
        harness.wait_for(lambda: ids(pid)[0][0] != 0, 5 * harness.SLOW, "worker to drop root")
        uid, gid, groups, cap = ids(pid)
        assert uid == [nobody.pw_uid] * 4, uid            # real, effective, saved, fs
        assert gid == [nobody.pw_gid] * 4, gid
        # initgroups(): the account's groups in /etc/group and its own
        assert sorted(int(g) for g in groups) == sorted(
            set(os.getgrouplist(nobody.pw_name, nobody.pw_gid))), groups
        assert int(cap, 16) == 0, "worker kept capabilities: " + cap
    for _ in range(4):
        body, _, _ = get(p.port("web"), certs.client_context())
        assert b"method=GET" in body
    p.stop()
    assert "portier stopped" in p.log()


def test_user_that_does_not_exist_is_refused(workdir):
    rc, out, _ = harness.portier_check(workdir, "[portier]\nuser = no-such-user-x\n\n[x]\n"
                                       "listen = 127.0.0.1:0\nmode = plain\n"
                                       "backend = 127.0.0.1:9\n")
    assert rc == 1, out
    assert re.search(r"check\.ini:2: \[portier\] user: no such user 'no-such-user-x'", out), out


def test_user_root_is_refused(workdir):
    rc, out, _ = harness.portier_check(workdir, "[portier]\nuser = root\n\n[x]\n"
                                       "listen = 127.0.0.1:0\nmode = plain\n"
                                       "backend = 127.0.0.1:9\n")
    assert rc == 1, out
    assert re.search(r"check\.ini:2: \[portier\] user: 'root' is root", out), out


# ---- readiness pipes and the shared region ----------------------------------

def fds(pid, kind):
    """The targets of pid's open fds that start with kind ("pipe:")."""
    out = set()
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        with contextlib.suppress(OSError):
            t = os.readlink(os.path.join(d, fd))
            if t.startswith(kind):
                out.add(t)
    return out


def wait_serving(p, n, since=0):
    harness.wait_for(lambda: len(re.findall(r"serving \(pid \d+\)", p.log()[since:])) >= n,
                     5, "%d workers to serve" % n)


def test_no_readiness_pipe_outlives_the_report(two):
    """Each worker tells the master it serves through a pipe of its own;
    once all have, no process holds a pipe: none leaked into a sibling."""
    wait_serving(two, 2)
    for pid in [two.proc.pid] + list(started_workers(two).values()):
        harness.wait_for(lambda: not fds(pid, "pipe:"), 5, "pid %d to hold no pipe" % pid)


# The header of struct shared (proxy/shared.h) as the tests read it from a
# process's memory: magic, version, size, generation, workers_up, reloads_ok,
# reloads_failed, last_reload, log_dropped (u64 each), then the claim lock
# (u32); the slots follow at SLOTS_AT, each a u32 'used', name[64], the 7
# u64 of enum shared_stat, 32 close reasons, then the metrics' counters
# (handshakes by version, failures by reason, backend failures, histograms).
# The active gauge is the slot's count plus each owned share row's: the
# rows' owners (i32 each) at PROC_PID_AT, the rows at PROCS_AT, each
# starting with a u64 per slot (proxy/shared.c asserts these offsets).
SHARED_SIZE = 16 << 20
SHARED_VERSION = 5
HEADER = struct.Struct("<8s7Q")
SLOTS_AT = 80
SLOT_SIZE = 840
SLOTS = 256
PROC_PID_AT = 870504
PROCS_AT = 871016
PROC_SIZE = 67584
PROCS = 128
# enum shared_stat, and the close reasons of enum conn_why (proxy/conn.h)
# the tests count by.
STATS = ("accepted", "active", "bytes_up", "bytes_down", "handshakes_ok", "handshakes_failed",
         "refusals")
WHY_CLIENT_CLOSED, WHY_BACKEND_CLOSED, WHY_HANDSHAKE_FAILED = 0, 1, 4


def shared_region(pid):
    """(address, mapping inode) of pid's shared region, or None: a SHARED_SIZE
    shared writable mapping that starts with the magic."""
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if hi - lo != SHARED_SIZE or fields[1] != "rw-s":
                continue
            with open("/proc/%d/mem" % pid, "rb") as mem:
                mem.seek(lo)
                if mem.read(8) == b"portshm1":
                    return lo, fields[4]
    return None


def shared_state(pid):
    """The header fields and the claimed slot names, read from pid."""
    addr, _ = shared_region(pid)
    with open("/proc/%d/mem" % pid, "rb") as mem:
        mem.seek(addr)
        raw = mem.read(SLOTS_AT + SLOTS * SLOT_SIZE)
        mem.seek(addr + PROC_PID_AT)
        owners = struct.unpack("<%di" % PROCS, mem.read(4 * PROCS))
        rows = []
        for k, owner in enumerate(owners):
            if owner != 0:
                mem.seek(addr + PROCS_AT + k * PROC_SIZE)
                rows.append(struct.unpack("<%dQ" % SLOTS, mem.read(8 * SLOTS)))
    magic, version, size, gen, up, ok, failed, last = HEADER.unpack_from(raw)
    names = []
    counters = {}
    for i in range(SLOTS):
        at = SLOTS_AT + i * SLOT_SIZE
        used, = struct.unpack_from("<I", raw, at)
        if used:
            name = raw[at + 4:at + 68].split(b"\0")[0].decode()
            names.append(name)
            stat = list(struct.unpack_from("<7Q", raw, at + 72))
            stat[STATS.index("active")] += sum(r[i] for r in rows)
            stat[STATS.index("active")] %= 1 << 64
            closed = struct.unpack_from("<32Q", raw, at + 72 + 7 * 8)
            counters[name] = dict(zip(STATS, stat), closed=closed)
    return {"version": version, "size": size, "generation": gen, "workers_up": up,
            "reloads_ok": ok, "reloads_failed": failed, "last_reload": last, "names": names,
            "counters": counters}


def test_every_worker_shares_the_masters_region(two):
    wait_serving(two, 2)
    master = shared_region(two.proc.pid)
    assert master is not None, "the master maps no shared region"
    workers = started_workers(two)
    for pid in workers.values():
        assert shared_region(pid) == master, "worker %d has a region of its own" % pid
    harness.wait_for(lambda: shared_state(two.proc.pid)["workers_up"] == 2, 5,
                     "the master to count two workers up")
    st = shared_state(two.proc.pid)
    assert st["version"] == SHARED_VERSION and st["size"] == SHARED_SIZE
    assert st["generation"] == 1 and st["reloads_ok"] == 0 and st["reloads_failed"] == 0
    assert st["names"] == ["web"]
    # A worker that dies: its replacement maps the same pages; the count
    # goes down and back up.
    mark = two.mark()
    os.kill(workers[1], signal.SIGKILL)
    harness.wait_for(lambda: 1 in started_workers(two, since=mark), 5, "a new worker 1")
    new = started_workers(two, since=mark)[1]
    wait_serving(two, 1, since=mark)
    assert shared_region(new) == master
    harness.wait_for(lambda: shared_state(two.proc.pid)["workers_up"] == 2, 5,
                     "the master to count two workers up again")


def test_the_shared_region_survives_reloads(portier, certs, http_backend):
    def conf(*names):
        return [("tls", tls_items(certs.ec))] + [
            listener(n, http_backend.port, protocol="http") for n in names]
    p = portier(conf("web"), glob=[("workers", "2")])
    wait_serving(p, 2)
    region = shared_region(p.proc.pid)
    before = time.time()
    p.rewrite(conf("web", "api"))
    mark = p.reload()
    st = shared_state(p.proc.pid)
    assert st["generation"] == 2 and st["reloads_ok"] == 1 and st["reloads_failed"] == 0
    assert int(before) <= st["last_reload"] <= time.time() + 1
    # "web" keeps its slot; "api" gets the next one.
    assert st["names"] == ["web", "api"]
    for pid in started_workers(p, since=mark).values():
        assert shared_region(pid) == region, "a new worker maps another region"
    harness.wait_for(lambda: shared_state(p.proc.pid)["workers_up"] == 2, 5,
                     "two workers of the new configuration up")
    # A refused reload counts as failed and changes the generation not.
    p.rewrite([("tls", tls_items(certs.ec)),
               ("web", [("listen", "127.0.0.1:0"), ("mode", "tlss")])])
    p.reload(expect="reload refused")
    st = shared_state(p.proc.pid)
    assert st["generation"] == 2 and st["reloads_ok"] == 1 and st["reloads_failed"] == 1


def test_listener_counters_add_up_over_workers_and_reloads(portier, certs, http_backend):
    """Every worker counts its connections in the listener's shared slot:
    N handshakes through either of two workers are N accepted, N completed
    handshakes and N closes, with nothing left active; a client with an old
    TLS version is one failed handshake, counted under its close reason;
    the counts go on across a reload for a listener whose name stays."""
    def conf():
        return [("tls", tls_items(certs.ec)),
                listener("web", http_backend.port, protocol="http")]
    p = portier(conf(), glob=[("workers", "2")])
    wait_serving(p, 2)
    ctx = certs.client_context()
    n = 12
    for _ in range(n):
        out, _, _ = harness.https_get(p.port("web"), ctx)
        assert out.startswith(b"HTTP/1.1 200"), out[:80]

    def web():
        return shared_state(p.proc.pid)["counters"]["web"]
    harness.wait_for(lambda: web()["active"] == 0 and web()["accepted"] == n, 5,
                     "%d connections counted and none active" % n)
    c = web()
    assert c["handshakes_ok"] == n and c["handshakes_failed"] == 0, c
    assert c["closed"][WHY_CLIENT_CLOSED] + c["closed"][WHY_BACKEND_CLOSED] == n, c
    assert sum(c["closed"]) == n, c
    assert c["bytes_down"] > n * len(b"HTTP/1.1 200") and c["bytes_up"] > n * 20, c

    cp = harness.s_client(p.port("web"), ["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"])
    assert cp.returncode != 0, cp.out
    harness.wait_for(lambda: web()["handshakes_failed"] == 1 and web()["active"] == 0, 5,
                     "the refused handshake to be counted")
    c = web()
    assert c["accepted"] == n + 1 and c["closed"][WHY_HANDSHAKE_FAILED] == 1, c

    p.rewrite(conf())
    p.reload()
    out, _, _ = harness.https_get(p.port("web"), ctx)
    assert out.startswith(b"HTTP/1.1 200")
    harness.wait_for(lambda: web()["accepted"] == n + 2 and web()["active"] == 0, 5,
                     "the connection after the reload counted in the same slot")
    assert shared_state(p.proc.pid)["names"] == ["web"]
