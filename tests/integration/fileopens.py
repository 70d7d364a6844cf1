"""Watching processes open a file, for tests of what portier reads and when:
OpenCount counts the opens of one file; HeldOpen makes them wait until the
test lets them through. Both with fanotify's permission events (which need
root, as scripts/test runs), through ctypes: the kernel's calls, no package.
"""

import ctypes
import os
import select
import struct
import threading
import time

import harness

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64,
                                ctypes.c_int, ctypes.c_char_p]

FAN_CLASS_CONTENT = 0x4
FAN_CLOEXEC = 0x1
FAN_OPEN_PERM = 0x10000
FAN_MARK_ADD = 0x1
FAN_ALLOW = 0x1
AT_FDCWD = -100
FAN_EVENT = struct.Struct("=IBBHQii")   # struct fanotify_event_metadata
FAN_RESPONSE = struct.Struct("=iI")     # struct fanotify_response


def _check(rc, what):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))
    return rc


def _fanotify(path):
    """A fanotify descriptor on which every open of path waits for an
    answer (FAN_OPEN_PERM)."""
    fd = _check(_libc.fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC,
                                    os.O_RDONLY | os.O_LARGEFILE), "fanotify_init")
    try:
        _check(_libc.fanotify_mark(fd, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD,
                                   os.fsencode(path)), "fanotify_mark")
    except OSError:
        os.close(fd)
        raise
    return fd


def _events(buf):
    """(event fd, pid) of each event read from a fanotify descriptor."""
    off = 0
    while off + FAN_EVENT.size <= len(buf):
        evlen, _, _, _, _, efd, pid = FAN_EVENT.unpack_from(buf, off)
        yield efd, pid
        off += evlen


def _allow(fd, efd):
    os.write(fd, FAN_RESPONSE.pack(efd, FAN_ALLOW))
    os.close(efd)


class OpenCount:
    """Counts the opens of path from now on, by anyone, until close():
    each open waits in the kernel for this object's thread to let it
    through, so none is missed or merged with another (inotify merges
    opens that follow each other unread)."""

    def __init__(self, path):
        self.fd = _fanotify(path)
        self.n = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            if not select.select([self.fd], [], [], 0.05)[0]:
                continue
            for efd, _ in _events(os.read(self.fd, 4096)):
                self.n += 1
                _allow(self.fd, efd)

    def count(self):
        return self.n

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        os.close(self.fd)


class HeldOpen:
    """Every open of path waits in the kernel until release(): a process
    can be held at a known point of its work, as a FIFO would hold it, on
    a regular file."""

    def __init__(self, path):
        self.fd = _fanotify(path)
        self.pending = []
        self.pid = None      # the process held, once wait_opening() returned

    def wait_opening(self, pid, timeout):
        """Wait (at most timeout seconds, scaled) until pid (None: any
        process) is held opening the file; opens by others are let through."""
        end = harness.deadline(timeout)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for pid %s to open the file" % pid)
            if not select.select([self.fd], [], [], left)[0]:
                continue
            for efd, epid in _events(os.read(self.fd, 4096)):
                if pid is None or epid == pid:
                    self.pending.append(efd)
                    self.pid = epid
                else:
                    _allow(self.fd, efd)
            if self.pending:
                return

    def release(self):
        """Let the held opens through, and every later one."""
        if self.fd < 0:
            return
        for efd in self.pending:
            _allow(self.fd, efd)
        self.pending = []
        os.close(self.fd)   # the mark goes with it
        self.fd = -1


def start_held(path, start, while_held, timeout=10):
    """Run start() (a portier start, say) in a thread, hold the first
    process that opens path there, call while_held(pid) meanwhile, then let
    it go: what start() returned, once it has (its thread is joined within
    twice timeout, scaled). For a race at a known point of a start."""
    hold = HeldOpen(path)
    done = []
    starter = threading.Thread(target=lambda: done.append(start()))
    starter.start()
    try:
        hold.wait_opening(None, timeout)
        while_held(hold.pid)
    finally:
        hold.release()
        starter.join(timeout=2 * timeout * harness.SLOW)
    assert done, "start() did not return"
    return done[0]
