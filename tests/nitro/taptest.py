# Helpers of the stand-alone tests in tests/nitro/: numbered TAP results,
# waiting for a condition, and a sample image for the simulator.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import subprocess
import time


class Tap:
    """Numbered TAP results, each with up to @max_diag lines of diagnosis.
    They go to @out (print, or a list's append to print them later)."""

    def __init__(self, out=print, max_diag=60):
        self.count = 0
        self.failed = 0
        self.out = out
        self.max_diag = max_diag

    def __call__(self, ok, what, diag=''):
        self.count += 1
        self.failed += not ok
        self.out(f'{"ok" if ok else "not ok"} {self.count} - {what}')
        for line in str(diag).splitlines()[:self.max_diag]:
            self.out(f'# {line}')
        return ok

    def plan(self):
        """Print the plan; the exit status: 1 when a result failed or
        there was none"""
        print(f'1..{self.count}')
        return 1 if self.failed or not self.count else 0


def wait_for(what, timeout=120, step=0.1):
    """What @what returns once it is true, or its last answer after
    @timeout seconds (a deadline for a loaded host, reached only when
    the condition does not come)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(step)
    return what()


def sample_inputs(directory, initrd='initrd'):
    """A kernel and an initrd that the simulator boots, written in
    @directory; their paths"""
    paths = (os.path.join(directory, 'kernel'),
             os.path.join(directory, initrd))
    for path, what in zip(paths, (b'kernel' * 200000, b'initrd' * 100000)):
        with open(path, 'wb') as f:
            f.write(what)
    return paths


def sample_eif(qemu_eif, directory, arch, out, initrd='initrd'):
    """@out, an @arch image that @qemu_eif builds of sample_inputs() in
    @directory; returns what `qemu-eif describe` says of it"""
    kernel, initrd = sample_inputs(directory, initrd)
    subprocess.run([qemu_eif, 'build', '--kernel', kernel, '--initrd',
                    initrd, '--cmdline', 'console=ttyS0', '--arch', arch,
                    '-o', out], check=True, capture_output=True)
    return json.loads(subprocess.run([qemu_eif, 'describe', out],
                                     check=True, capture_output=True,
                                     text=True).stdout)
