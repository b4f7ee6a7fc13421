#!/usr/bin/env python3
#
# The fork's emulators are the pinned QEMU base: QMP query-version of
# each emulator that the build made reports the version of
# scripts/fork/base.conf, the QEMU base that the overlay was built on, and
# not only what the tree's own VERSION file says.
#
# Usage: version-test.py, with QEMU_BUILD_ROOT set (the fork's build/obj).
# TAP output.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import subprocess
import sys

from taptest import Tap

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
TARGETS = ('x86_64', 'aarch64')


def pinned_version():
    with open(os.path.join(TOP, 'scripts', 'fork', 'base.conf')) as f:
        for line in f:
            if line.startswith('QEMU_VERSION='):
                return line.split('=', 1)[1].strip().strip('"\'')
    raise SystemExit('version-test: base.conf has no QEMU_VERSION')


def query_version(emulator):
    """QMP query-version's "qemu" of @emulator, as "major.minor.micro"."""
    cmds = ''.join(json.dumps({'execute': c}) + '\n' for c in
                   ('qmp_capabilities', 'query-version', 'quit'))
    out = subprocess.run([emulator, '-M', 'none', '-display', 'none',
                          '-nodefaults', '-no-user-config', '-qmp', 'stdio'],
                         input=cmds, stdout=subprocess.PIPE, text=True,
                         timeout=120, check=True).stdout
    for line in out.splitlines():
        ret = json.loads(line).get('return')
        if isinstance(ret, dict) and 'qemu' in ret:
            q = ret['qemu']
            return f"{q['major']}.{q['minor']}.{q['micro']}"
    return None


def main():
    want = pinned_version()
    obj = os.environ['QEMU_BUILD_ROOT']
    tap = Tap()
    for target in TARGETS:
        emulator = os.path.join(obj, f'qemu-system-{target}')
        if not os.path.exists(emulator):
            tap(True, f'qemu-system-{target} # SKIP not built')
            continue
        got = query_version(emulator)
        tap(got == want, f'qemu-system-{target} reports QEMU {want}',
            f'query-version: {got}, base.conf: {want}')
    return tap.plan()


if __name__ == '__main__':
    sys.exit(main())
