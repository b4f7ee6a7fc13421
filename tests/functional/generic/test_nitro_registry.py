#!/usr/bin/env python3
#
# The registry of enclave QEMUs (hw/nitro/registry.c), on the Nitro
# Enclaves simulator: every enclave QEMU, with or without -nodefaults,
# registers in a directory named after its nitro-cli enclave ID, with an
# info.json, a QMP socket and a console socket that replays the console
# from its first byte whatever -serial was given; QEMU removes it when it
# exits, and a QEMU killed with SIGKILL leaves one that the next QEMU of
# the same ID reclaims.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import re
import shutil
import signal
import socket
import stat
import tempfile

from qemu.qmp.legacy import QEMUMonitorProtocol

from qemu_test.nitro import DEADLINE, MiB, NitroTest


class NitroRegistry(NitroTest):

    def launch(self, *args, accel='nitro,debug-mode=on'):
        self.vm.add_args('-accel', accel, '-M', 'nitro', '-m', '128M',
                         '-kernel', self.make_eif(), *args)
        self.vm.launch()
        return self.vm

    def entries(self):
        """the registry's directories"""
        try:
            return [os.path.join(self.run_dir, d)
                    for d in sorted(os.listdir(self.run_dir))]
        except FileNotFoundError:
            return []

    def info(self, entry):
        with open(os.path.join(entry, 'info.json')) as f:
            return json.load(f)

    def running_entry(self):
        """a registered enclave that runs"""
        for e in self.entries():
            try:
                if self.info(e)['State'] == 'RUNNING':
                    return e
            except (OSError, ValueError):
                pass
        return None

    def console(self, entry, until):
        """What the console socket of @entry gives, up to @until"""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(DEADLINE)
        s.connect(os.path.join(entry, 'console.sock'))
        data = b''
        while until not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        return data

    def setUp(self):
        super().setUp()
        self.run_dir = self.sim_env['QEMU_NITRO_RUNTIME_DIR']
        self.dirs = []

    def tearDown(self):
        super().tearDown()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)

    def test_registered(self):
        vm = self.launch('-name', 'guest=reg,,one')
        self.wait_for(lambda: self.heartbeats('ok'))
        entry = self.wait_for(self.running_entry)
        cid = self.events('start')[0]['cid']
        info = self.info(entry)
        # nitro-cli's ID: the instance ID (the simulator's
        # board_asset_tag) and the slot UID in hex
        slot = self.ioctls('NE_CREATE_VM')[0]['slot_uid']
        self.assertRegex(info['EnclaveID'], r'^i-[0-9a-f]{17}-enc[0-9a-f]+$')
        self.assertTrue(info['EnclaveID'].endswith(f'-enc{slot:x}'))
        self.assertEqual(os.path.basename(entry), info['EnclaveID'])
        self.assertEqual(info['EnclaveName'], 'reg,one')
        self.assertEqual(info['ProcessID'], vm.get_pid())
        self.assertEqual(info['EnclaveCID'], cid)
        self.assertEqual(info['NumberOfCPUs'], 2)
        self.assertEqual(len(info['CPUIDs']), 2)
        self.assertEqual(info['MemoryMiB'], 128)
        self.assertEqual(info['Flags'], 'DEBUG_MODE')
        # Only its user reaches it
        self.assertEqual(stat.S_IMODE(os.stat(entry).st_mode), 0o700)
        # The QMP socket is a monitor of this QEMU
        qmp = QEMUMonitorProtocol(os.path.join(entry, 'qmp.sock'))
        qmp.connect()
        self.assertEqual(qmp.cmd_obj({'execute': 'qom-get', 'arguments': {
            'path': '/machine', 'property': 'enclave-cid'}})['return'], cid)
        qmp.close()
        # The console from its first line, attached late
        self.wait_for(lambda: self.events('console'))
        data = self.console(entry, b'heartbeat ok')
        self.assertTrue(data.startswith(b'nitro-sim: simulated'), data[:80])
        self.assertIn(b'heartbeat ok', data)
        vm.shutdown()
        self.assertEqual(self.entries(), [])

    def test_start_is_reported(self):
        # One line on stderr, with the CID, as nitro-cli's run-enclave
        # says it; the console (stdout) stays the enclave's
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        res = self.run_qemu('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                            '-m', '128M', '-kernel', self.make_eif(),
                            '-serial', 'stdio', nodefaults=False)
        self.assertEqual(res.returncode, 0, res.stderr)
        cid = self.events('start')[0]['cid']
        started = [line for line in res.stderr.splitlines()
                   if 'started the enclave' in line]
        self.assertEqual(len(started), 1, res.stderr)
        self.assertRegex(started[0], f'with CID {cid}: 2 vCPUs '
                         r'\(\d+, \d+\), 128 MiB, debug mode$')
        self.assertNotIn('started the enclave', res.stdout)
        # Not once QEMU runs as a daemon
        pidfile = os.path.join(self.workdir, 'qemu.pid')
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '0'
        res = self.run_qemu('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                            '-kernel', self.make_eif(), '-daemonize',
                            '-pidfile', pidfile, nodefaults=False)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNotIn('started the enclave', res.stderr)
        with open(pidfile) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGTERM)
        self.wait_for(lambda: not self.entries())

    def test_accel_without_machine(self):
        # The machine that -accel nitro needs is named
        res = self.run_qemu('-accel', 'nitro', '-kernel', self.make_eif())
        self.assert_fails(res, 'No machine specified')
        self.assertIn('The nitro accelerator runs the nitro machine: add '
                      '-M nitro.', res.stderr)

    def test_without_serial_and_nodefaults(self):
        # libvirt's -nodefaults: registered all the same; and -serial none
        # in debug mode still has a console for the registry
        vm = self.launch('-serial', 'none')
        self.wait_for(lambda: self.heartbeats('ok'))
        entry = self.wait_for(self.running_entry)
        self.assertIn(b'heartbeat ok', self.console(entry, b'heartbeat ok'))
        vm.shutdown()
        self.assertEqual(self.entries(), [])

        vm = self._new_vm('nodefaults', '-accel', 'nitro', '-M', 'nitro',
                          '-m', '128M', '-kernel', self.make_eif(),
                          '-nodefaults', '-device', 'nitro-heartbeat')
        vm.launch()
        entry = self.wait_for(self.running_entry)
        info = self.info(entry)
        self.assertEqual(info['Flags'], 'NONE')
        self.assertEqual(info['EnclaveName'],
                         re.sub(r'\.eif$', '', os.path.basename(
                             self.make_eif())))
        # No console outside debug mode
        self.assertFalse(os.path.exists(os.path.join(entry,
                                                     'console.sock')))
        vm.shutdown()
        self.assertEqual(self.entries(), [])

    def test_removed_on_failure_and_reclaimed_after_kill(self):
        # Without an instance ID (a host without board_asset_tag), a new
        # simulation directory gives the next enclave the same ID
        self.fake_sysfs({2 * MiB: (self.HUGEPAGES, self.HUGEPAGES)})
        vm = self.launch()
        entry = self.wait_for(self.running_entry)
        self.assertEqual(os.path.basename(entry), 'i-0000000000000000-enc1')
        # SIGKILL leaves the directory, which the next QEMU of that ID
        # takes over
        os.kill(vm.get_pid(), signal.SIGKILL)
        vm.wait()
        self.assertEqual(self.entries(), [entry])
        self.sim_dir = tempfile.mkdtemp(prefix='nsim-')
        self.dirs.append(self.sim_dir)
        self.sim_env['NITRO_SIM_DIR'] = self.sim_dir
        second = self._new_vm('second', '-accel', 'nitro,debug-mode=on',
                              '-M', 'nitro', '-m', '128M',
                              '-kernel', self.make_eif())
        second.launch()
        self.wait_for(lambda: self.heartbeats('ok'))
        self.assertEqual(self.entries(), [entry])
        self.assertEqual(self.info(entry)['ProcessID'], second.get_pid())
        second.shutdown()
        self.assertEqual(self.entries(), [])
        # A QEMU that exits with an error after it registered (no
        # heartbeat device: refused once the machine is complete)
        # unregisters too
        res = self.run_qemu('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                            '-kernel', self.make_eif())
        self.assert_fails(res, 'no nitro-heartbeat device')
        self.assertEqual(self.entries(), [])

if __name__ == '__main__':
    NitroTest.main()
