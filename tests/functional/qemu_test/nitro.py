# Functional tests of -accel nitro -M nitro on the Nitro Enclaves simulator
#
# NitroTest runs the emulator under test with contrib/nitro-sim preloaded,
# in a private simulation directory, and reads back what the simulated
# driver and hypervisor saw from the simulator's JSON-lines event log
# (sim_events, which the stand-alone tests in tests/nitro use too).
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from qemu.machine import QEMUMachine

from .testcase import QemuSystemTest

MiB = 1024 * 1024

# How long a condition may take to come true on a loaded host: a deadline,
# which only a failing test reaches, never a time that a test waits
DEADLINE = 120


def reserve_hugepages(count, size_kb=2048):
    """Make sure @count huge pages of @size_kb are free; return a reason
    string when that is impossible, None otherwise."""
    d = f'/sys/kernel/mm/hugepages/hugepages-{size_kb}kB'
    try:
        with open(f'{d}/nr_hugepages') as f:
            total = int(f.read())
        with open(f'{d}/free_hugepages') as f:
            free = int(f.read())
        with open(f'{d}/resv_hugepages') as f:
            free -= int(f.read())
        if free >= count:
            return None
        with open(f'{d}/nr_hugepages', 'w') as f:
            f.write(str(total + count - free))
        with open(f'{d}/free_hugepages') as f:
            free = int(f.read())
    except OSError as e:
        return f'cannot reserve {count} huge pages of {size_kb} kB: {e}'
    if free < count:
        return f'only {free} huge pages of {size_kb} kB could be reserved'
    return None


def sim_events(sim_dir, kind=None):
    """The events that the simulator of @sim_dir logged so far, of @kind
    ("start", "heartbeat", "stop"...) or all of them."""
    path = os.path.join(sim_dir, 'events.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as f:
        evs = [json.loads(line) for line in f if line.strip()]
    return [e for e in evs if kind is None or e['event'] == kind]


def build_output(var, *path):
    """The build's @path (under QEMU_BUILD_ROOT), unless the environment
    variable @var names another file"""
    return os.environ.get(var) or \
        os.path.join(os.environ.get('QEMU_BUILD_ROOT', '.'), *path)


class NitroTest(QemuSystemTest):
    """A test of the nitro accelerator and machine on the simulator."""

    # Huge pages of 2 MiB that the test needs free
    HUGEPAGES = 256

    def setUp(self):
        super().setUp()
        accels = subprocess.run([self.qemu_bin, '-accel', 'help'],
                                stdout=subprocess.PIPE, text=True).stdout
        if 'nitro' not in accels.split():
            self.skipTest(f'{self.qemu_bin} has no nitro accelerator')
        self.sim_lib = build_output('NITRO_SIM_LIB', 'contrib', 'nitro-sim',
                                    'libnitro-sim.so')
        self.qemu_eif = build_output('QEMU_EIF', 'contrib', 'qemu-eif',
                                     'qemu-eif')
        for path in (self.sim_lib, self.qemu_eif):
            if not os.path.exists(path):
                self.skipTest(f'{path} was not built')
        reason = reserve_hugepages(self.HUGEPAGES)
        if reason:
            self.skipTest(reason)
        self.target_arch = 'aarch64' if self.arch == 'aarch64' else 'x86_64'
        # vsock paths live here: keep it short (sun_path is 108 bytes)
        self.sim_dir = tempfile.mkdtemp(prefix='nsim-')
        self.sim_env = {
            'NITRO_SIM_DIR': self.sim_dir,
            'NITRO_SIM_ARCH': self.target_arch,
            # The registry of enclave QEMUs (hw/nitro/registry.c): private
            'QEMU_NITRO_RUNTIME_DIR': os.path.join(self.sim_dir, 'run'),
        }

    def tearDown(self):
        self.kill_registered()
        super().tearDown()
        shutil.rmtree(self.sim_dir, ignore_errors=True)

    def kill_registered(self):
        """End the enclave QEMUs of the test's registry that a failed test
        left running (daemons that no QEMUMachine owns)"""
        run = self.sim_env['QEMU_NITRO_RUNTIME_DIR']
        entries = os.listdir(run) if os.path.isdir(run) else []
        for entry in entries:
            try:
                with open(os.path.join(run, entry, 'info.json')) as f:
                    os.kill(json.load(f)['ProcessID'], signal.SIGKILL)
            except (OSError, ValueError, KeyError):
                pass

    def sim_wrapper(self):
        env = dict(self.sim_env, LD_PRELOAD=self.sim_lib)
        return ['env'] + [f'{k}={v}' for k, v in env.items()]

    def _new_vm(self, name, *args):
        vm = QEMUMachine(self.qemu_bin, name=name,
                         wrapper=self.sim_wrapper(),
                         base_temp_dir=self.workdir,
                         log_dir=self.log_file())
        if args:
            vm.add_args(*args)
        return vm

    def run_qemu(self, *args, nodefaults=True):
        """Run the emulator to completion on the simulator."""
        cmd = self.sim_wrapper() + [self.qemu_bin, '-display', 'none']
        if nodefaults:
            cmd.append('-nodefaults')
        cmd += list(args)
        self.log.info('running %s', ' '.join(cmd))
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True,
                             timeout=DEADLINE)
        self.log.info('exit %d, stderr: %s', res.returncode, res.stderr)
        return res

    def data(self, name, size, seed):
        """A file of @size reproducible bytes."""
        path = self.scratch_file(name)
        chunk = (seed.encode() * 4096)[:4096]
        with open(path, 'wb') as f:
            left = size
            while left:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
        return path

    def eif_inputs(self, initrds=1):
        kernel = self.data('kernel', 1 * MiB + 17, 'kernel')
        rds = [self.data(f'initrd{i}', 512 * 1024 + i, f'initrd{i}')
               for i in range(initrds)]
        return kernel, rds

    def build_eif(self, out, kernel, initrds, cmdline, arch=None):
        cmd = [self.qemu_eif, 'build', '--kernel', kernel,
               '--cmdline', cmdline, '--arch', arch or self.target_arch,
               '-o', out]
        for rd in initrds:
            cmd += ['--initrd', rd]
        subprocess.run(cmd, check=True)
        return out

    def make_eif(self, arch=None, initrds=1, cmdline='console=ttyS0'):
        kernel, rds = self.eif_inputs(initrds)
        out = self.scratch_file(f'app-{arch or self.target_arch}.eif')
        return self.build_eif(out, kernel, rds, cmdline, arch)

    def describe(self, eif):
        out = subprocess.run([self.qemu_eif, 'describe', eif], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)

    def events(self, kind=None):
        return sim_events(self.sim_dir, kind)

    def heartbeats(self, result):
        """heartbeat events"""
        return [e for e in self.events('heartbeat') if e['result'] == result]

    def stops(self):
        """stop events"""
        return self.events('stop')

    def ioctls(self, cmd):
        return [e for e in self.events('ioctl') if e['cmd'] == cmd]

    def wait_for(self, what, timeout=DEADLINE):
        """What @what returns once it is true; fail after @timeout s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            time.sleep(0.02)
        self.fail(f'timed out waiting for {what.__doc__}')

    def qom_pcr(self, vm, n, timeout=DEADLINE):
        """PCR @n of the machine in @vm, once measured."""
        deadline = time.monotonic() + timeout
        while True:
            res = vm.qmp('qom-get', path='/machine', property=f'pcr{n}')
            if 'return' in res or time.monotonic() > deadline or \
               'still measuring' not in res['error']['desc']:
                return res
            time.sleep(0.02)

    def fake_sysfs(self, pages):
        """A made-up host for QEMU, whose sysfs it reads under
        $NITRO_SYSFS_ROOT: huge pages of each size of @pages ({size in
        bytes: (reserved, free)}), all on NUMA node 0, which has the CPU
        pool (CPUs 1 and 3 of 0-3).  Its root."""
        files = {'module/nitro_enclaves/parameters/ne_cpus': '1,3',
                 'devices/system/node/online': '0',
                 'devices/system/node/node0/cpulist': '0-3'}
        for size, (total, free) in pages.items():
            name = f'hugepages-{size // 1024}kB'
            host = f'kernel/mm/hugepages/{name}'
            node = f'devices/system/node/node0/hugepages/{name}'
            files.update({f'{host}/nr_hugepages': total,
                          f'{host}/free_hugepages': free,
                          f'{host}/resv_hugepages': 0,
                          f'{node}/nr_hugepages': total,
                          f'{node}/free_hugepages': free})
        return self.write_sysfs(files)

    def write_sysfs(self, files):
        """A made-up sysfs of @files ({path: value}) for QEMU, which reads
        it under $NITRO_SYSFS_ROOT.  Its root."""
        root = os.path.join(self.workdir, 'sysfs')
        for path, value in files.items():
            path = os.path.join(root, path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write(f'{value}\n')
        self.sim_env['NITRO_SYSFS_ROOT'] = root
        return root

    def log_so_far(self, vm):
        """What @vm has printed so far, while it runs"""
        # pylint: disable=protected-access
        with open(vm._qemu_log_path, 'r', errors='replace') as f:
            return f.read()

    def assert_fails(self, res, message):
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn(message, res.stderr)
        self.assertNotIn('Aborted', res.stderr)
