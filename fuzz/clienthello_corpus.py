#!/usr/bin/python3
"""Writes fuzz/corpus/fuzz_clienthello/: the first flight of real TLS clients.

Each client connects to a listener of this script's own on 127.0.0.1, which
keeps the first TLS record it gets (the ClientHello) and hangs up. The seed
file is a selector byte for fuzz_clienthello's listener (0: http with ALPN,
1: tcp without) and then the record, so every hello goes to both.

usage: fuzz/clienthello_corpus.py [OUTDIR]   (needs openssl, gnutls-cli, curl)
"""
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import threading

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_clienthello")


def capture(run_client):
    """Runs run_client(port) against a listener; returns the first record."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)
    port = srv.getsockname()[1]
    got = {}

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conn.settimeout(5)
        data = b""
        try:
            while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        got["hello"] = data[:5 + int.from_bytes(data[3:5], "big")] if len(data) >= 5 else data
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        run_client(port)
    finally:
        t.join(15)
        srv.close()
    return got.get("hello", b"")


def openssl(*args):
    def run(port):
        subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
    return run


def gnutls(*args):
    def run(port):
        subprocess.run(["gnutls-cli", "--insecure", "-p", str(port), *args, "127.0.0.1"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
    return run


def curl(*args):
    def run(port):
        subprocess.run(["curl", "-sk", "--max-time", "5", *args,
                        "--resolve", f"a.example:{port}:127.0.0.1", f"https://a.example:{port}/"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    return run


def python(alpn=None, sni="a.example", maxv=None):
    def run(port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(alpn)
        if maxv:
            ctx.maximum_version = maxv
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                ctx.wrap_socket(s, server_hostname=sni)
            except (ssl.SSLError, OSError):
                pass
    return run


CLIENTS = {
    "openssl-13-sni-alpn": openssl("-tls1_3", "-servername", "a.example", "-alpn", "http/1.1"),
    "openssl-12-sni-alpn": openssl("-tls1_2", "-servername", "a.example", "-alpn", "http/1.1"),
    "openssl-13-nosni": openssl("-tls1_3", "-noservername"),
    "openssl-12-nosni": openssl("-tls1_2", "-noservername"),
    "openssl-b": openssl("-servername", "b.example"),
    "openssl-wild": openssl("-servername", "x.w.example", "-alpn", "h2,http/1.1"),
    "openssl-unknown-name": openssl("-servername", "c.example"),
    "openssl-h2-only": openssl("-servername", "a.example", "-alpn", "h2"),
    "openssl-12-rsa-suites": openssl("-tls1_2", "-servername", "a.example",
                                     "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"),
    "openssl-13-rsa-sigalgs": openssl("-tls1_3", "-servername", "a.example",
                                      "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"),
    "openssl-12-rsa-sigalgs": openssl("-tls1_2", "-servername", "a.example",
                                      "-sigalgs", "RSA+SHA256"),
    "openssl-13-p256-share": openssl("-tls1_3", "-servername", "a.example",
                                     "-groups", "P-256:X25519"),
    "openssl-11": openssl("-tls1_1", "-servername", "a.example"),
    # The ECDSA choice by curve: P-256 (a.example), P-384 (c.example).
    "openssl-13-a-p384only": openssl("-tls1_3", "-servername", "a.example", "-sigalgs",
                                     "ecdsa_secp384r1_sha384:rsa_pss_rsae_sha256"),
    "openssl-13-c-p256only": openssl("-tls1_3", "-servername", "c.example", "-sigalgs",
                                     "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256"),
    "openssl-12-a-groups-p384": openssl("-tls1_2", "-servername", "a.example",
                                        "-groups", "P-384"),
    "openssl-12-c-groups-p256": openssl("-tls1_2", "-servername", "c.example",
                                        "-groups", "P-256"),
    "openssl-12-c-groups-p384": openssl("-tls1_2", "-servername", "c.example",
                                        "-groups", "X25519:P-384"),
    "gnutls-default": gnutls("--sni-hostname", "a.example", "--alpn", "http/1.1"),
    "gnutls-12": gnutls("--priority", "NORMAL:-VERS-TLS1.3", "--sni-hostname", "b.example"),
    "curl-default": curl(),
    "curl-12": curl("--tls-max", "1.2"),
    "python-alpn": python(alpn=["http/1.1"]),
    "python-12-h2": python(alpn=["h2"], maxv=ssl.TLSVersion.TLSv1_2),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, run in CLIENTS.items():
        try:
            hello = capture(run)
        except (OSError, subprocess.SubprocessError) as e:
            print(f"{name}: no hello ({e})", file=sys.stderr)
            continue
        if len(hello) < 5 or hello[0] != 22:
            print(f"{name}: no hello", file=sys.stderr)
            continue
        for sel in (0, 1):
            data = bytes([sel]) + hello
            path = os.path.join(OUT, f"{name}-{sel}")
            with open(path, "wb") as f:
                f.write(data)
        print(f"{name}: {len(hello)} bytes, sha256 {hashlib.sha256(hello).hexdigest()[:12]}")


if __name__ == "__main__":
    main()
