#!/usr/bin/env python3
#
# Monitor commands that could crash QEMU or change nothing while saying
# they did, on an enclave of the Nitro Enclaves simulator: each does what
# it says or fails with a reason.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import socket

from qemu_test.nitro import NitroTest


class NitroMonitor(NitroTest):

    def launch(self, *args):
        self.vm.add_args('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                         '-m', '128M', '-kernel', self.make_eif(), *args)
        self.vm.launch()

    def hmp(self, line):
        return self.vm.cmd('human-monitor-command', command_line=line)

    def status(self):
        return self.vm.cmd('query-status')['status']

    def test_devices_cannot_be_unrealized(self):
        # They would stay on the bus, freed: QEMU crashed when the
        # enclave stopped, or refused cont with a false reason
        con = self.scratch_file('console.log')
        self.launch('-nodefaults', '-device', 'nitro-heartbeat,id=hb',
                    '-chardev', f'file,id=c,path={con}',
                    '-device', 'nitro-serial-vsock,id=con,chardev=c')
        self.wait_for(lambda: self.heartbeats('ok'))
        for path in ('/machine/peripheral/hb', '/machine/peripheral/con',
                     '/machine/nitro-vsock'):
            res = self.vm.qmp('qom-set', path=path, property='realized',
                              value=False)
            self.assertIn('cannot be unrealized', res['error']['desc'])
            self.assertIn('cannot be unrealized',
                          self.hmp(f'qom-set {path} realized false'))
            self.assertTrue(self.vm.cmd('qom-get', path=path,
                                        property='realized'))
        self.vm.cmd('system_powerdown')
        self.vm.wait(timeout=10)
        self.assertEqual(self.vm.exitcode(), 0)
        with open(con, 'rb') as f:
            self.assertIn(b'heartbeat ok', f.read())

    def test_info_stats_vcpu(self):
        # QEMU's vCPU statistics need a CPU object; an enclave has none
        self.launch()
        self.wait_for(lambda: self.heartbeats('ok'))
        self.assertIn('this machine has no vCPU',
                      self.hmp('info stats vcpu'))
        self.assertEqual(self.status(), 'running')

    def test_cont_in_the_same_write_as_calc_dirty_rate(self):
        # The check of cont must not depend on how soon the measuring
        # thread runs: both commands reach QEMU in one write
        path = os.path.join(self.sim_dir, 'qmp2.sock')
        self.launch('-S', '-chardev',
                    f'socket,id=qmp2,path={path},server=on,wait=off',
                    '-mon', 'chardev=qmp2,mode=control')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.settimeout(30)
        replies = sock.makefile('r')
        json.loads(replies.readline())          # the greeting
        sock.sendall(b'{"execute": "qmp_capabilities"}\n')
        self.assertIn('return', json.loads(replies.readline()))
        for _ in range(3):
            sock.sendall(b'{"execute": "calc-dirty-rate", '
                         b'"arguments": {"calc-time": 1}}\n'
                         b'{"execute": "cont"}\n')
            got = [json.loads(replies.readline()) for _ in range(2)]
            got = [r for r in got if 'event' not in r]
            self.assertIn('return', got[0], got)
            self.assertIn('a dirty rate measurement',
                          got[1]['error']['desc'])
            self.assertEqual(self.status(), 'prelaunch')
            self.wait_for(lambda: self.vm.cmd('query-dirty-rate')['status']
                          == 'measured')
        sock.close()
        self.assertEqual(self.ioctls('NE_START_ENCLAVE'), [])
        self.vm.cmd('cont')
        self.wait_for(lambda: self.heartbeats('ok'))

    def test_no_pause_through_loading_a_snapshot(self):
        # loadvm and snapshot-load stop the guest before they look for
        # the snapshot: a pause of a running enclave, which cannot pause
        self.launch()
        self.wait_for(lambda: self.heartbeats('ok'))
        self.vm.get_qmp_events(wait=False)
        self.assertIn('an enclave cannot be paused', self.hmp('loadvm foo'))
        res = self.vm.qmp('snapshot-load', **{'job-id': 'load', 'tag': 'foo',
                                              'vmstate': 'foo',
                                              'devices': []})
        self.assertIn('an enclave cannot be paused', res['error']['desc'])
        self.assertEqual(self.vm.cmd('query-jobs'), [])
        self.assertEqual(self.status(), 'running')
        self.assertEqual([e['event'] for e in
                          self.vm.get_qmp_events(wait=False)
                          if e['event'] in ('STOP', 'RESUME')], [])

    def test_machine_options_fixed_once_created(self):
        # A new value would change nothing but what qom-get reports
        self.launch()
        self.wait_for(lambda: self.heartbeats('ok'))
        for prop, value in (('hugepage-size', 1 << 30),
                            ('external-heartbeat', True),
                            ('allow-small-memory', True), ('acpi', 'off'),
                            ('memory', {'size': 1 << 30}),
                            ('smp', {'cpus': 8}), ('kernel', 'other.eif'),
                            ('append', 'quiet'), ('initrd', 'rd')):
            before = self.vm.cmd('qom-get', path='/machine', property=prop)
            res = self.vm.qmp('qom-set', path='/machine', property=prop,
                              value=value)
            self.assertRegex(res['error']['desc'],
                             'cannot change once (the machine|it) is')
            self.assertEqual(self.vm.cmd('qom-get', path='/machine',
                                         property=prop), before)
        # The RAM that the enclave owns: not re-typed, not touched
        for prop in ('hugetlb', 'prealloc'):
            res = self.vm.qmp('qom-set', path='/objects/nitro.ram',
                              property=prop, value=not self.vm.cmd(
                                  'qom-get', path='/objects/nitro.ram',
                                  property=prop))
            self.assertIn('error', res, prop)
        self.assertTrue(self.vm.cmd('qom-get', path='/objects/nitro.ram',
                                    property='hugetlb'))
        self.assertEqual(self.status(), 'running')

    def test_heartbeat_port_out_of_range(self):
        for port in (0, 4294967295):
            res = self.run_qemu('-accel', 'nitro', '-M', 'nitro', '-m',
                                '128M', '-kernel', self.make_eif(),
                                '-device', f'nitro-heartbeat,port={port}')
            self.assert_fails(res, f'port={port} is not a port')
            self.assertEqual(self.ioctls('NE_START_ENCLAVE'), [])


if __name__ == '__main__':
    NitroTest.main()
