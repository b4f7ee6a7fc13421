#!/usr/bin/env python3
#
# The real nitro_enclaves driver on QEMU's nitro-enclaves-pci: boot the
# parent VM (scripts/nitro-parent-vm, Debian's 6.12 cloud kernel) and run
# tests/nitro/parent/ne-probe.c in it, a launch step by step on the
# driver: /dev/nitro_enclaves exists, NE_CREATE_VM, NE_SET_USER_MEMORY_
# REGION, NE_ADD_VCPU and NE_START_ENCLAVE reach the device, its error
# codes reach user space, its vector 1 becomes POLLHUP, and closing the
# enclave fd releases the slot.  COMMAND's exit status comes back.
#
# Then, with the sample image (tests/nitro/enclave/, a Debian kernel and
# our init): ne-probe gives it to the driver, the device boots it from
# the donated huge pages, its heartbeat reaches this test (the enclave's
# vsock reaches the host, not yet the parent guest), its echo server
# answers through the device's vsock gateway, and its power-off becomes
# POLLHUP in the parent.
#
#   parent-vm-test.py QEMU [QEMU_EIF]
#
# TAP; skipped (exit 77) with the reason only when the kernel package
# cannot be downloaded.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from taptest import Tap  # noqa: E402

TOP = os.path.dirname(os.path.dirname(HERE))
if os.path.basename(TOP) == 'tree' and \
   os.path.basename(os.path.dirname(TOP)) == 'build':
    TOP = os.path.dirname(os.path.dirname(TOP))
SCRIPT = os.path.join(TOP, 'scripts', 'nitro-parent-vm')


def real_enclave(check, qemu, qemu_eif, probe, tmp):
    """The sample image, booted by the device from the donated memory"""
    p = subprocess.run([sys.executable,
                        os.path.join(HERE, 'enclave', 'build-image.py'),
                        '--qemu-eif', qemu_eif, '--out', tmp, '--test'],
                       capture_output=True, text=True, check=False)
    if p.returncode == 77:
        print(f'# the sample image cannot be built: {p.stderr.strip()}')
        return
    check(p.returncode == 0, 'the sample image builds', p.stderr)
    if p.returncode:
        return
    eif = p.stdout.strip()
    d = os.path.join(tmp, 'enclaves')
    os.mkdir(d)
    hb = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hb.bind(os.path.join(d, 'enclave-16.vsock_9000'))
    hb.listen(1)
    proc = subprocess.Popen([SCRIPT, '--qemu', qemu, '--enclave-dir', d,
                             '--copy', probe, '--copy', eif, '--',
                             './ne-probe', os.path.basename(eif)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 900

    def wait_readable(sock):
        while time.monotonic() < deadline and proc.poll() is None:
            if select.select([sock], [], [], 1)[0]:
                return True
        return False

    def gateway(port):
        """a stream to the enclave's @port, through the device's backend"""
        while time.monotonic() < deadline and proc.poll() is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(os.path.join(d, 'enclave-16.vsock'))
                s.sendall(f'CONNECT {port}\n'.encode())
                if wait_readable(s) and s.recv(64).startswith(b'OK '):
                    return s
            except OSError:
                pass
            s.close()
            time.sleep(0.1)
        return None

    beat = b''
    if wait_readable(hb):
        conn, _ = hb.accept()
        if wait_readable(conn):
            beat = conn.recv(1)
        conn.sendall(b'\xb7')
    ok = check(beat == b'\xb7', 'the enclave booted from the donated '
               'memory sends its heartbeat', f'got {beat!r}')
    echo = b''
    s = gateway(5000) if ok else None
    if s:
        s.sendall(b'hello, enclave')
        while len(echo) < 14 and wait_readable(s):
            data = s.recv(64)
            if not data:
                break
            echo += data
    check(echo == b'hello, enclave', 'its echo server answers over vsock',
          f'got {echo!r}')
    s = gateway(5001) if echo else None
    if s:
        s.sendall(b'poweroff\n')
    try:
        out, err = proc.communicate(timeout=max(deadline - time.monotonic(),
                                                1))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    m = re.search(r'^stopped: (.*)$', out, re.M)
    check(m and 'FAIL' not in m.group(1) and proc.returncode == 0,
          'its power-off is POLLHUP in the parent', out + err)


def main():
    qemu = sys.argv[1]
    tap = Tap()

    def check(ok, what, diag):
        """a result, with its diagnosis only when it failed"""
        return tap(ok, what, '' if ok else diag)

    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, 'ne-probe')
        subprocess.run(['cc', '-static', '-O2', '-o', probe,
                        os.path.join(HERE, 'parent', 'ne-probe.c')],
                       check=True)
        p = subprocess.run([SCRIPT, '--qemu', qemu, '--copy', probe, '--',
                            'sh', '-c', 'ls -l /dev/nitro_enclaves && '
                            'cat /sys/module/nitro_enclaves/parameters/'
                            'ne_cpus && ./ne-probe; s=$?; exit $((s + 40))'],
                           capture_output=True, text=True, timeout=1500)
        if p.returncode == 77:
            print(f'1..0 # SKIP {p.stderr.strip()}')
            return 0
        out = p.stdout
        diag = out + p.stderr
        check(re.search(r'^c\S+ .* /dev/nitro_enclaves$', out, re.M),
              'the real driver probed the device: /dev/nitro_enclaves', diag)
        check(re.search(r'^(2-3|2,3)$', out, re.M),
              'ne_cpus is the second core', diag)
        for step in ['open', 'create-vm', 'start-without-memory',
                     'set-user-memory-region', 'add-vcpu', 'image-load-info',
                     'start-without-image', 'start', 'stopped']:
            m = re.search(rf'^{step}: (.*)$', out, re.M)
            check(m and 'FAIL' not in m.group(1), f'ne-probe: {step}',
                  m.group(0) if m else diag)
        check(p.returncode == 40, 'COMMAND\'s exit status comes back',
              f'status {p.returncode}')
        m = re.search(r'driver ready after ([0-9.]+) s', p.stderr)
        if m:
            print(f'# start to driver ready: {m.group(1)} s')
        if len(sys.argv) > 2:
            real_enclave(check, qemu, sys.argv[2], probe, tmp)
    return tap.plan()


if __name__ == '__main__':
    sys.exit(main())
