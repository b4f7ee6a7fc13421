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
#   parent-vm-test.py QEMU
#
# TAP; skipped (exit 77) with the reason only when the kernel package
# cannot be downloaded.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from taptest import Tap  # noqa: E402

TOP = os.path.dirname(os.path.dirname(HERE))
if os.path.basename(TOP) == 'tree' and \
   os.path.basename(os.path.dirname(TOP)) == 'build':
    TOP = os.path.dirname(os.path.dirname(TOP))
SCRIPT = os.path.join(TOP, 'scripts', 'nitro-parent-vm')


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
    return tap.plan()


if __name__ == '__main__':
    sys.exit(main())
