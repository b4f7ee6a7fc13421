#!/usr/bin/env python3
#
# contrib/vhost-user-vsock against QEMU's own -M nitro-enclave, with a real
# Debian kernel and our init (tests/nitro/enclave/), over AF_UNIX paths:
# the heartbeat, host -> guest and guest -> host connections (and their
# reset where nobody listens, both ways, or where the host peer closes
# at once), 64
# connections at once each way, 256 MiB each way checked by SHA-256 on
# the host and byte for byte in the guest, and the guest powering off in
# the middle of a transfer (the host connections end, QEMU and the
# backend exit).  Skipped (77) with the reason when the kernel package
# cannot be had.
#
#   vhost-user-vsock-test.py QEMU BACKEND QEMU_EIF IMAGE_DIR
#
# Copyright (c) 2026 Nitro Enclaves for QEMU authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import errno
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU, BACKEND, QEMU_EIF, IMAGE_DIR = sys.argv[1:5]
GUEST_CID = 21
MIB = 1024 * 1024


def fail(msg):
    print(f'not ok: {msg}', flush=True)
    sys.exit(1)


def ok(msg):
    print(f'ok: {msg}', flush=True)


def build_image(out=IMAGE_DIR):
    p = subprocess.run([sys.executable,
                        os.path.join(HERE, 'enclave', 'build-image.py'),
                        '--qemu-eif', QEMU_EIF, '--out', out, '--test'],
                       capture_output=True, text=True, check=False)
    if p.returncode == 77:
        print(f'SKIP: {p.stderr.strip()}')
        sys.exit(77)
    if p.returncode:
        fail(f'build-image.py: {p.stderr}')
    return p.stdout.strip()


def pcrs(eif):
    out = subprocess.run([QEMU_EIF, 'describe', eif], capture_output=True,
                         text=True, check=True).stdout
    return {k: v for k, v in json.loads(out)['Measurements'].items()
            if k.startswith('PCR')}


def check_reproducible(eif):
    """A second build from scratch gives the same PCRs"""
    with tempfile.TemporaryDirectory() as out:
        again = pcrs(build_image(out))
    if again != pcrs(eif) or len(again) < 3:
        fail(f'two builds of the image differ: {again} vs {pcrs(eif)}')
    ok('the image is reproducible: same PCR0/1/2 from a second build')


def wait_for(what, cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    fail(f'timeout waiting for {what}')


class Host:
    """The host side of the backend's AF_UNIX naming"""

    def __init__(self, base):
        self.base = base
        self.servers = []

    def connect(self, port, timeout=60):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.base)
        s.sendall(f'CONNECT {port}\n'.encode())
        line = b''
        while not line.endswith(b'\n'):
            b = s.recv(1)
            if not b:
                raise ConnectionRefusedError(f'guest port {port}')
            line += b
        if not line.startswith(b'OK '):
            raise ConnectionError(line)
        return s

    def serve(self, port, handler):
        """Accept guest connections to @port, each in a thread"""
        path = f'{self.base}_{port}'
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(128)
        self.servers.append(srv)

        def loop():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                threading.Thread(target=handler, args=(c,),
                                 daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()

    def command(self, line, timeout=300):
        s = self.connect(5001)
        s.settimeout(timeout)
        s.sendall(line.encode() + b'\n')
        reply = s.makefile().readline().strip()
        s.close()
        return reply


def host_echo(host, data, what):
    """@data to the guest's echo server and back, or fail with @what"""
    s = host.connect(5000)
    s.sendall(data)
    if s.recv(100) != data:
        fail(what)
    s.close()


def heartbeat(c):
    if c.recv(1) == b'\xb7':
        c.sendall(b'\xb7')
    c.close()


def echo(c):
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
    except OSError:
        pass
    c.close()


def transfer(s, size, seed, result, stop_early=None):
    """Send @size bytes, read them back; SHA-256 of both into @result"""
    sent_hash, got_hash = hashlib.sha256(), hashlib.sha256()
    block = hashlib.sha256(seed.to_bytes(8, 'little')).digest() * 2048

    def writer():
        left, n = size, 0
        try:
            while left:
                chunk = block[:min(left, len(block))]
                chunk = n.to_bytes(8, 'little') + chunk[8:]
                s.sendall(chunk)
                sent_hash.update(chunk)
                left -= len(chunk)
                n += 1
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            result['write_error'] = e

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    got = 0
    try:
        while got < size:
            b = s.recv(1 << 20)
            if not b:
                break
            got_hash.update(b)
            got += len(b)
            if stop_early and got >= stop_early[0]:
                stop_early[1].set()
    except OSError as e:
        result['read_error'] = e
    t.join(120)
    result.update(got=got, sent=sent_hash.hexdigest(),
                  received=got_hash.hexdigest())
    s.close()


def check_bad_options():
    """Bad options: a clear message and exit status 1, at once"""
    cases = [([], 'are required'),
             (['--guest-cid', 'x', '--fd', '3', '--vsock'], 'is not a CID'),
             (['--guest-cid', '2', '--fd', '3', '--vsock'], 'is reserved'),
             (['--guest-cid', '5', '--fd', '3'], 'no host side'),
             (['--guest-cid', '5', '--vsock',
               '--socket-path', '/nonexistent/v.sock'], 'No such file')]
    for args, message in cases:
        p = subprocess.run([BACKEND, *args], capture_output=True, text=True,
                           timeout=10, check=False)
        if p.returncode != 1 or message not in p.stderr:
            fail(f'{args}: expected "{message}", got {p.returncode}: '
                 f'{p.stderr}')
    ok('bad options are refused with a message')


def main():
    check_bad_options()
    eif = build_image()
    check_reproducible(eif)
    with tempfile.TemporaryDirectory() as tmp:
        vhost = os.path.join(tmp, 'vhost.sock')
        host = Host(os.path.join(tmp, 'vsock'))
        host.serve(9000, heartbeat)
        host.serve(5002, echo)
        console = os.path.join(tmp, 'console.log')
        backend = subprocess.Popen([BACKEND, '--socket-path', vhost,
                                    '--guest-cid', str(GUEST_CID),
                                    '--uds-path', host.base])
        wait_for('the backend socket', lambda: os.path.exists(vhost), 120)
        # -icount: see contrib/nitro-sim/boot.c (a loaded host otherwise
        # breaks the kernel's TSC calibration)
        qemu = subprocess.Popen([QEMU, '-M', 'nitro-enclave,vsock=c0,acpi=on',
                                 '-icount', 'shift=1', '-m', '512M',
                                 '-smp', '2', '-nodefaults',
                                 '-display', 'none', '-no-reboot',
                                 '-chardev', f'socket,id=c0,path={vhost}',
                                 '-global', 'virtio-mmio.force-legacy=false',
                                 '-serial', f'file:{console}',
                                 '-kernel', eif])
        try:
            run(host, console, backend, qemu)
        finally:
            for p in (qemu, backend):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for s in host.servers:
                s.close()


def console_has(path, text):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return text in f.read()
    except FileNotFoundError:
        return False


def run(host, console, backend, qemu):
    start = time.monotonic()
    wait_for('the guest echo server', lambda: console_has(
        console, 'echo server on port 5000') or qemu.poll() is not None, 120)
    if qemu.poll() is not None:
        fail(f'QEMU exited ({qemu.returncode})')
    ok(f'heartbeat answered, init up in {time.monotonic() - start:.1f} s')

    host_echo(host, b'hello enclave', 'host -> guest echo')
    ok('host -> guest connection')

    try:
        host.connect(4999)
        fail('a connection to a port nobody listens on succeeded')
    except ConnectionRefusedError:
        ok('host -> guest connection to a closed port is refused')

    reply = host.command('send 5002 1 65536')
    if reply != 'ok':
        fail(f'guest -> host: {reply}')
    ok('guest -> host connection')

    # Nothing at the host's port 4998: the backend resets the request, and
    # the guest's connect() fails with that, not with ETIMEDOUT once its
    # own connect timeout (2 s) has passed without an answer
    reply = host.command('connect 3 4998')
    if reply not in (f'errno {errno.ECONNRESET}',
                     f'errno {errno.ECONNREFUSED}'):
        fail(f'guest -> closed host port: {reply} (ECONNRESET is '
             f'{errno.ECONNRESET}, ETIMEDOUT {errno.ETIMEDOUT})')
    ok('guest -> host connection to a closed port is reset')

    # A host peer that accepts and closes at once, while the guest sends
    # it 1 MiB: the guest's connection is reset, the backend lives on
    host.serve(5003, lambda c: c.close())
    reply = host.command('send 5003 1 1048576')
    if not reply.startswith('fail') or backend.poll() is not None:
        fail(f'guest -> host peer that closed: {reply}, backend '
             f'{backend.poll()}')
    host_echo(host, b'still here',
              'host -> guest echo after a host peer closed')
    ok('guest -> a host peer that closed at once: reset, the backend lives')

    results = [{} for _ in range(64)]
    threads = [threading.Thread(target=transfer,
                                args=(host.connect(5000), 256 * 1024, i,
                                      results[i]))
               for i in range(64)]
    for t in threads:
        t.start()
    reply = host.command('send 5002 64 262144')
    for t in threads:
        t.join(300)
    bad = [r for r in results if r.get('got') != 256 * 1024 or
           r['sent'] != r['received']]
    if bad or reply != 'ok':
        fail(f'64 connections: host side {len(bad)} bad, guest {reply}')
    ok('64 connections at once each way, 256 KiB each')

    t0 = time.monotonic()
    r = {}
    transfer(host.connect(5000), 256 * MIB, 99, r)
    if r['got'] != 256 * MIB or r['sent'] != r['received']:
        fail(f'256 MiB host -> guest -> host: {r}')
    ok(f'256 MiB each way, host-initiated, SHA-256 equal '
       f'({time.monotonic() - t0:.1f} s)')

    t0 = time.monotonic()
    reply = host.command(f'send 5002 1 {256 * MIB}', timeout=600)
    if reply != 'ok':
        fail(f'256 MiB guest -> host -> guest: {reply}')
    ok(f'256 MiB each way, guest-initiated, checked in the guest '
       f'({time.monotonic() - t0:.1f} s)')

    # power off while 256 MiB are on their way
    r = {}
    halfway = threading.Event()
    t = threading.Thread(target=transfer,
                         args=(host.connect(5000), 256 * MIB, 7,
                               r, (16 * MIB, halfway)))
    t.start()
    if not halfway.wait(120):
        fail('the transfer before the power-off did not start')
    host.command('poweroff')
    t.join(300)
    if t.is_alive():
        fail('the host connection hangs after the guest powered off')
    if r['got'] >= 256 * MIB:
        fail('the transfer was not interrupted')
    try:
        qemu.wait(300)
        backend.wait(120)
    except subprocess.TimeoutExpired:
        fail('QEMU or the backend did not exit after the power-off')
    if qemu.returncode != 0 or backend.returncode != 0:
        fail(f'exit status: QEMU {qemu.returncode}, backend '
             f'{backend.returncode}')
    ok(f'guest power-off mid-transfer after {r["got"] // MIB} MiB: host '
       'connection ended, QEMU and the backend exited 0')


if __name__ == '__main__':
    main()
