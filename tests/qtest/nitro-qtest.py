#!/usr/bin/env python3
#
# QEMU's generic machine-loop qtests (qom-test, device-introspect-test,
# test-hmp) on -M nitro, on the simulator.  libqtest leaves the nitro
# machine out of its loops unless QTEST_NITRO is set, since the machine
# needs -accel nitro, an image and /dev/nitro_enclaves: nitro-qtest-qemu.sh
# gives them to it.  A property getter, a device's introspection or an
# HMP command that crashes QEMU on the nitro machine fails the test.
#
# Usage: nitro-qtest.py EMULATOR QTEST [--running] CASE [QTEST-ARGS...],
# with NITRO_SIM_LIB and QEMU_EIF set: runs the case of the nitro machine
# CASE (its path without the target, such as /qom/nitro).  --running
# starts the enclave even if the qtest passes -S: test-hmp does, so that
# no guest code runs, but its commands should also meet a running
# enclave, whose memory is no longer QEMU's.  TAP output: the qtest's,
# and a bail out if the case did not run.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import shutil
import subprocess
import sys
import tempfile

from qemu_test.nitro import reserve_hugepages
from taptest import sample_eif

# What nitro-qtest-qemu.sh gives -M nitro, in huge pages of 2 MiB; the
# qtests run one QEMU at a time
HUGEPAGES = 32


def main():
    emulator, qtest = sys.argv[1:3]
    running = sys.argv[3] == '--running'
    case, *args = sys.argv[4:] if running else sys.argv[3:]
    arch = emulator.rsplit('-', 1)[1]
    path = f'/{arch}{case}'
    reason = reserve_hugepages(HUGEPAGES)
    if reason:
        print(f'1..0 # SKIP {reason}')
        return 0

    tmp = tempfile.mkdtemp(prefix='nitro-qtest-')
    try:
        eif = os.path.join(tmp, 'app.eif')
        sample_eif(os.environ['QEMU_EIF'], tmp, arch, eif)
        wrapper = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               'nitro-qtest-qemu.sh')
        env = dict(os.environ,
                   QTEST_QEMU_BINARY=f'sh {wrapper} {emulator}',
                   QTEST_NITRO='1',
                   NITRO_QTEST_EIF=eif,
                   NITRO_SIM_DIR=os.path.join(tmp, 'sim'),
                   NITRO_SIM_ARCH=arch)
        if running:
            env['NITRO_QTEST_RUNNING'] = '1'
        qtest = subprocess.Popen([qtest, '--tap', '-k', '-p', path] + args,
                                 env=env, stdout=subprocess.PIPE, text=True)
        ran = False
        for line in qtest.stdout:
            print(line, end='', flush=True)
            ran |= bool(re.fullmatch(rf'(not )?ok \d+ {re.escape(path)}',
                                     line.strip()))
        if qtest.wait():
            return 1
        if not ran:
            print(f'Bail out! {path} did not run: does libqtest still '
                  'leave the nitro machine out of its loops?')
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
