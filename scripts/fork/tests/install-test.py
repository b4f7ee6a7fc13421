#!/usr/bin/env python3
#
# `make install` and `make uninstall`, as an operator uses them: install
# into a DESTDIR under another PREFIX, then, from a directory that is not
# the checkout, build an image with the installed qemu-eif and launch it
# with the installed emulators on the installed simulator, list it with
# the installed nitro-sim CLI; uninstall, and nothing of ours is left.
#
# Usage: install-test.py, with QEMU_BUILD_ROOT set (the fork's build/obj:
# the checkout is two levels up).  TAP output.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import shutil
import subprocess
import sys
import tempfile

from qemu_test.nitro import reserve_hugepages
from taptest import Tap, sample_inputs, wait_for

PREFIX = '/opt/qemu-nitro'
TARGETS = ['x86_64', 'aarch64']
INSTALLED = (['bin/qemu-system-' + t for t in TARGETS] +
             ['bin/qemu-eif', 'bin/qemu-nitro', 'bin/nitro-sim',
              'bin/vhost-user-vsock',
              'lib/nitro-sim/libnitro-sim.so'])

tap = Tap(max_diag=None)


def make(top, *args):
    return subprocess.run(['make', '-C', top, '--no-print-directory'] +
                          list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def launch(root, cwd, target, eif, sim_dir):
    """Launch the image with the installed emulator on the installed
    simulator; wait for its console, find it with the installed CLI, stop
    it with the CLI: QEMU exits.  Return (ok, diagnostics)."""
    env = dict(os.environ,
               LD_PRELOAD=os.path.join(root, 'lib/nitro-sim/libnitro-sim.so'),
               NITRO_SIM_DIR=sim_dir, NITRO_SIM_ARCH=target)
    cli_env = dict(os.environ, NITRO_SIM_DIR=sim_dir)
    cli = os.path.join(root, 'bin/nitro-sim')
    out = os.path.join(cwd, f'qemu-{target}.out')
    cmd = [os.path.join(root, 'bin/qemu-system-' + target),
           '-accel', 'nitro,debug-mode=on', '-M', 'nitro', '-m', '128M',
           '-nographic', '-kernel', eif]
    with open(out, 'w') as f:
        qemu = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=f, stderr=subprocess.STDOUT)

    def enclaves():
        """the running enclaves (not one still being set up, without CID)"""
        res = subprocess.run([cli, 'list'], cwd=cwd, env=cli_env,
                             capture_output=True, text=True)
        try:
            return [e for e in json.loads(res.stdout)
                    if e.get('state') == 'running']
        except ValueError:
            return []

    def console():
        with open(out) as f:
            return 'heartbeat ok' in f.read()
    # Another launcher on the machine may hold vsock port 9000 for a
    # while: the heartbeat device waits up to 60 s for it (port-wait)
    found, booted, rc = [], False, None
    try:
        found = wait_for(enclaves)
        booted = wait_for(console)
        if len(found) == 1:
            subprocess.run([cli, 'stop', str(found[0]['cid'])], cwd=cwd,
                           env=cli_env, capture_output=True)
        rc = qemu.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
    with open(out) as f:
        text = f.read()
    return (len(found) == 1 and booted and rc == 0 and 'stopped' in text,
            f'nitro-sim list: {found}\nexit {rc}, output:\n' +
            text[-1500:])


def main():
    top = os.path.dirname(os.path.dirname(os.environ['QEMU_BUILD_ROOT']))
    reason = reserve_hugepages(64 * len(TARGETS))
    if reason:
        print(f'1..0 # SKIP {reason}')
        return 0

    tmp = tempfile.mkdtemp(prefix='nitro-install-')
    try:
        destdir = os.path.join(tmp, 'dest')
        root = destdir + PREFIX
        res = make(top, 'install', 'DESTDIR=' + destdir, 'PREFIX=' + PREFIX)
        tap(res.returncode == 0, 'make install DESTDIR=... PREFIX=' + PREFIX,
            res.stdout[-2000:] + res.stderr[-2000:])
        installed = files_under(destdir)
        missing = [f for f in INSTALLED
                   if os.path.relpath(os.path.join(root, f), destdir)
                   not in installed]
        tap(not missing, 'the emulators, qemu-eif, nitro-sim and the '
            'simulator library are installed', f'missing: {missing}')
        stray = [f for f in installed
                 if not f.startswith(PREFIX.lstrip('/') + '/')]
        tap(not stray, 'everything is under DESTDIR/PREFIX', str(stray))

        # Through a symlink to the checkout: only what is installed is
        # built (ninja never runs without targets, which builds all)
        link = os.path.join(tmp, 'checkout link')
        os.symlink(top, link)
        shim = os.path.join(tmp, 'shim')
        os.mkdir(shim)
        calls = os.path.join(tmp, 'ninja-calls')
        real_ninja = shutil.which('ninja')
        with open(os.path.join(shim, 'ninja'), 'w') as f:
            # One argument a line, a call ending with an empty line
            f.write(f'#!/bin/sh\nprintf "%s\\n" "$@" "" >> \'{calls}\'\n'
                    f'exec \'{real_ninja}\' "$@"\n')
        os.chmod(os.path.join(shim, 'ninja'), 0o755)
        env = dict(os.environ, PATH=shim + ':' + os.environ['PATH'])
        res = subprocess.run(['make', '-C', link, '--no-print-directory',
                              'install', 'DESTDIR=' + destdir + '2',
                              'PREFIX=' + PREFIX], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=900,
                             env=env)
        with open(calls) as f:
            ninjas = [c.split('\n') for c in f.read().split('\n\n') if c]
        # -C DIR, then the targets
        untargeted = [c for c in ninjas
                      if not [a for a in c[2:] if not a.startswith('-')]]
        tap(res.returncode == 0 and ninjas and not untargeted and
            files_under(destdir + '2') == installed,
            'make install through a symlink builds only what it installs',
            res.stderr[-1000:] + f'\nninja calls: {ninjas}')
        shutil.rmtree(destdir + '2')

        # Another directory, far from the checkout and the build
        work = os.path.join(tmp, 'elsewhere')
        os.mkdir(work)
        sample_inputs(work, 'init.cpio')

        for target in TARGETS:
            qemu = os.path.join(root, 'bin/qemu-system-' + target)
            res = subprocess.run([qemu, '-L', 'help'], cwd=work,
                                 capture_output=True, text=True)
            dirs = [os.path.normpath(d) for d in res.stdout.split()]
            tap(res.returncode == 0 and
                os.path.join(root, 'share/qemu') in dirs and
                not any(d.startswith(top) for d in dirs),
                f'installed qemu-system-{target} looks for its data under '
                'PREFIX, not in the build', res.stdout + res.stderr)

            eif = f'app-{target}.eif'
            res = subprocess.run([os.path.join(root, 'bin/qemu-eif'), 'build',
                                  '--kernel', 'kernel', '--initrd',
                                  'init.cpio', '--arch', target,
                                  '--cmdline', 'console=ttyS0', '-o', eif],
                                 cwd=work, capture_output=True, text=True)
            tap(res.returncode == 0, f'installed qemu-eif builds a {target} '
                'image', res.stderr)

            sim_dir = os.path.join(tmp, 'sim-' + target)
            ok, diag = launch(root, work, target, eif, sim_dir)
            tap(ok, f'installed qemu-system-{target} runs the image on the '
                'installed simulator, which nitro-sim lists and stops', diag)

        # Something of the user's own in the prefix survives uninstall
        mine = os.path.join(root, 'bin', 'my-tool')
        with open(mine, 'w') as f:
            f.write('#!/bin/sh\n')
        res = make(top, 'uninstall', 'DESTDIR=' + destdir,
                   'PREFIX=' + PREFIX)
        left = files_under(destdir)
        tap(res.returncode == 0 and
            left == [os.path.relpath(mine, destdir)],
            'make uninstall removes all it installed, and only that',
            res.stdout + res.stderr + f'\nleft: {left[:20]}')
        empty = [os.path.relpath(d, destdir)
                 for d, subdirs, names in os.walk(destdir)
                 if not subdirs and not names]
        tap(not os.path.exists(os.path.join(root, 'share/qemu')) and
            not os.path.exists(os.path.join(root, 'lib/nitro-sim')) and
            not empty,
            'make uninstall removes its directories, and leaves none empty',
            f'empty: {empty}')

        res = make(top, 'install', 'DESTDIR=' + destdir, 'PREFIX=opt')
        tap(res.returncode != 0 and 'PREFIX must be an absolute path' in
            res.stderr, 'a relative PREFIX is refused with the reason',
            res.stderr[-1000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    return tap.plan()


if __name__ == '__main__':
    sys.exit(main())
