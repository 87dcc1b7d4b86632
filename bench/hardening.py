#!/usr/bin/env python3
"""Measures the host under the two body attacks of the hardening issue, on
loopback only, bounded in count and time:

1. 300 connections each announce a 1,000-byte body to a Hive-world route,
   send 10 bytes and stall. Every one must be closed (408) within the body
   deadline, while GET /hello keeps answering 200 in under a second.
2. 60 connections each announce a 16 MiB body and send 15 MiB of it. The
   host's resident memory may grow by at most the body budget plus 64 MiB.
3. Four 250 MB component uploads to the admin API at once, while GET
   /hello is probed: /hello must stay under a second, and the uploads must
   not be held in memory (growth under 64 MiB).

Usage: python3 bench/hardening.py [--hive target/release/hive] [--components DIR]
DIR holds hello.wasm and echo.wasm (default: deploy/, built by `just build`).
Exits 1 if a target is missed. Needs only the Python standard library.
"""

import argparse
import http.client
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1 << 20
DEADLINE_S = 10.0  # the default body-timeout-ms
BUDGET_MIB = 256  # the default body-budget-mib


def start_hive(binary, folder, work):
    proc = subprocess.Popen(
        [binary, "serve", "--dir", folder, "--listen", "127.0.0.1:0",
         "--admin-listen", "127.0.0.1:0", "--cache-dir", os.path.join(work, "cache"),
         "--data", os.path.join(work, "data")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "warn,hive=info"})
    address = admin = None
    log = []
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        log.append(line)
        if "admin API on http://" in line:
            admin = line.split("admin API on http://")[1].split()[0]
        if "listening on http://" in line:
            address = line.split("listening on http://")[1].split()[0]
            break
    if address is None or admin is None:
        proc.kill()
        sys.exit("hive did not start:\n" + "".join(log))
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()

    def split(text):
        host, port = text.rsplit(":", 1)
        return host, int(port)

    return proc, split(address), split(admin)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def get_hello(address):
    started = time.monotonic()
    connection = http.client.HTTPConnection(*address, timeout=5)
    try:
        connection.request("GET", "/hello")
        status = connection.getresponse().status
    except OSError:
        status = 0
    finally:
        connection.close()
    return status, time.monotonic() - started


def stalled_bodies(address):
    count = 300
    sockets = []
    for i in range(count):
        s = socket.create_connection(address)
        s.sendall(f"POST /echo/stall{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode()
                  + b"0123456789")
        sockets.append(s)
    started = time.monotonic()
    open_ = {s.fileno(): s for s in sockets}
    statuses = {}
    last_close = 0.0
    hello = []
    next_probe = started
    while open_ and time.monotonic() - started < DEADLINE_S + 10:
        if time.monotonic() >= next_probe:
            hello.append(get_hello(address))
            next_probe += 0.2
        readable, _, _ = select.select(list(open_.values()), [], [], 0.05)
        for s in readable:
            data = b""
            try:
                data = s.recv(65536)
            except OSError:
                pass
            if data[:12].startswith(b"HTTP/1.1 "):
                statuses[s.fileno()] = data[9:12].decode()
            if not data:
                last_close = time.monotonic() - started
                del open_[s.fileno()]
                s.close()
    for s in open_.values():
        s.close()
    closed = count - len(open_)
    codes = sorted(set(statuses.values()))
    slowest = max(latency for _, latency in hello)
    all_ok = all(status == 200 for status, _ in hello)
    print(f"stalled bodies: {closed}/{count} closed, the last {last_close:.2f} s after the "
          f"attack began (deadline {DEADLINE_S:.0f} s); statuses seen {codes}")
    print(f"GET /hello during the attack: {len(hello)} requests, all 200: {all_ok}, "
          f"slowest {slowest * 1000:.0f} ms")
    return closed == count and last_close <= DEADLINE_S + 1.5 and all_ok and slowest < 1.0


def held_bodies(proc, address):
    count, announced, sent = 60, 16 * MIB, 15 * MIB
    before = rss_mib(proc.pid)
    sockets = []
    for i in range(count):
        s = socket.create_connection(address)
        s.sendall(f"POST /echo/big{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {announced}\r\n\r\n".encode())
        sockets.append(s)
    time.sleep(0.5)
    chunk = b"x" * MIB
    refused = 0
    for s in sockets:
        s.settimeout(5)
        try:
            for _ in range(sent // MIB):
                s.sendall(chunk)
        except OSError:
            refused += 1
    peak = before
    for _ in range(10):
        peak = max(peak, rss_mib(proc.pid))
        time.sleep(0.1)
    for s in sockets:
        s.close()
    growth = peak - before
    allowed = BUDGET_MIB + 64
    print(f"held bodies: {count} x {sent // MIB} MiB of {announced // MIB} MiB sent, "
          f"{refused} refused (503) at once; RSS {before:.0f} -> {peak:.0f} MiB, "
          f"growth {growth:.0f} MiB (allowed {allowed} MiB)")
    return growth <= allowed


def big_uploads(proc, address, admin):
    size = 250 * 1000 * 1000
    before = rss_mib(proc.pid)
    results = []

    def upload(i):
        s = socket.create_connection(admin)
        s.settimeout(30)
        host = f"{admin[0]}:{admin[1]}"
        try:
            s.sendall(f"PUT /components/big{i} HTTP/1.1\r\nHost: {host}\r\n"
                      f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode())
            chunk = b"\0asm" + b"\0" * (MIB - 4)
            sent = 0
            while sent < size:
                piece = chunk[: min(MIB, size - sent)]
                s.sendall(piece)
                sent += len(piece)
                chunk = b"\0" * MIB
            answer = s.recv(4096)
            results.append(answer[9:12].decode())
        except OSError:
            answer = b""
            try:
                answer = s.recv(4096)
            except OSError:
                pass
            results.append(answer[9:12].decode() or "closed")
        finally:
            s.close()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    hello = []
    peak = before
    while any(thread.is_alive() for thread in threads):
        hello.append(get_hello(address))
        peak = max(peak, rss_mib(proc.pid))
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    slowest = max(latency for _, latency in hello) if hello else 0.0
    all_ok = all(status == 200 for status, _ in hello)
    growth = peak - before
    print(f"uploads: 4 x 250 MB at once -> statuses {sorted(results)}; GET /hello meanwhile: "
          f"{len(hello)} requests, all 200: {all_ok}, slowest {slowest * 1000:.0f} ms; "
          f"RSS growth {growth:.0f} MiB")
    return all_ok and slowest < 1.0 and growth < 64


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hive", default=os.path.join(root, "target/release/hive"))
    parser.add_argument("--components", default=os.path.join(root, "deploy"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="hive-hardening.")
    folder = os.path.join(work, "services")
    os.makedirs(folder)
    for name in ("hello", "echo"):
        for extension in ("wasm", "toml"):
            source = os.path.join(args.components, f"{name}.{extension}")
            if os.path.exists(source):
                shutil.copy(source, folder)
    ok = True
    # Each attack on a host of its own, so none inherits another's memory
    # (the uploaded files, for one, are loaded and refused by the registry).
    for attack in (stalled_bodies, big_uploads, held_bodies):
        proc, address, admin = start_hive(args.hive, folder, work)
        try:
            if attack is stalled_bodies:
                ok = attack(address) and ok
            elif attack is big_uploads:
                ok = attack(proc, address, admin) and ok
            else:
                ok = attack(proc, address) and ok
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        for name in os.listdir(folder):
            if name.startswith("big"):
                os.remove(os.path.join(folder, name))
    shutil.rmtree(work, ignore_errors=True)
    print("hardening targets met" if ok else "hardening targets MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
