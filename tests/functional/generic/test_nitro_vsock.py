#!/usr/bin/env python3
#
# Talking to the enclave, on the Nitro Enclaves simulator: the nitro vsock
# bus, the heartbeat, the debug console, and the enclave's lifetime.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import shutil
import signal
import socket
import subprocess
import time

from qemu_test.nitro import DEADLINE, NitroTest


class NitroVsock(NitroTest):

    def qemu(self, *args, nodefaults=False):
        return self.run_qemu(*args, nodefaults=nodefaults)

    def console_file(self, cid):
        with open(os.path.join(self.sim_dir, f'enclave-{cid}.console'),
                  'rb') as f:
            return f.read()

    def launch(self, *args, accel='nitro,debug-mode=on'):
        self.vm.add_args('-accel', accel, '-M', 'nitro', '-m', '128M',
                         '-kernel', self.make_eif(), *args)
        self.vm.launch()
        return self.vm

    def spawn(self, *args, accel='nitro,debug-mode=on'):
        cmd = self.sim_wrapper() + [self.qemu_bin, '-display', 'none',
                                    '-accel', accel, '-M', 'nitro',
                                    '-m', '128M', *args]
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    # The bus and the CID

    def test_cid_at_bridge(self):
        self.launch()
        start = self.started_event()
        cid = self.vm.cmd('qom-get', path='/machine/nitro-vsock',
                          property='enclave-cid')
        self.assertEqual(cid, start['cid'])
        kids = self.vm.cmd('qom-list', path='/machine/nitro-vsock')
        self.assertIn('nitro-vsock.0', [k['name'] for k in kids])

    def started_event(self):
        return self.wait_for(lambda: self.events('start'))[0]

    # The heartbeat

    def test_heartbeat_answered_and_port_freed(self):
        self.launch()
        self.wait_for(lambda: self.heartbeats('ok'))
        # Port 9000 is free again: a second QEMU gets it at once
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        res = self.qemu('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                        '-kernel', self.make_eif(),
                        '-global', 'nitro-heartbeat.port-wait=0')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNotIn('held by another', res.stderr)
        self.assertEqual(len(self.heartbeats('ok')), 2)

    def test_two_qemus_at_the_same_instant(self):
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '500'
        args = ['-kernel', self.make_eif(), '-serial', 'none']
        qemus = [self.spawn(*args), self.spawn(*args)]
        results = [q.communicate(timeout=DEADLINE) for q in qemus]
        for q, (_, err) in zip(qemus, results):
            self.assertEqual(q.returncode, 0, err)
        ok = self.heartbeats('ok')
        self.assertEqual(len(ok), 2, ok)
        self.assertEqual(len({e['cid'] for e in ok}), 2)

    def test_heartbeat_default_timeout(self):
        # nitro-cli's rule: 90 s per started 6 GiB of image, plus 90 s per
        # started 100 GiB of memory
        self.launch('-trace', 'nitro_heartbeat_wait')
        self.wait_for(lambda: self.heartbeats('ok'))
        self.vm.shutdown()
        cid = self.events('start')[0]['cid']
        self.assertIn(f'enclave cid {cid}: waiting 180 s for the heartbeat',
                      self.vm.get_log())

    def test_heartbeat_timeout(self):
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'none'
        res = self.qemu('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                        '-kernel', self.make_eif(),
                        '-global', 'nitro-heartbeat.timeout=1')
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn('did not boot: no heartbeat on vsock port 9000 within '
                      '1 s', res.stderr)
        self.assertEqual(self.stops()[-1]['reason'], 'fd-closed')

    def test_heartbeat_timeout_warn_only(self):
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'none'
        self.launch('-global', 'nitro-heartbeat.timeout=1',
                    '-global', 'nitro-heartbeat.warn-only=on')
        self.wait_for(lambda: 'the enclave has not booted yet' in
                      self.log_so_far(self.vm))
        self.assertEqual(self.vm.cmd('query-status')['status'], 'running')
        self.assertEqual(self.stops(), [])
        self.vm.shutdown()
        self.assertIn('the enclave has not booted yet', self.vm.get_log())

    def test_heartbeat_wrong_byte(self):
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'bad'
        res = self.qemu('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                        '-kernel', self.make_eif())
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn('it sent 0x00 instead of the heartbeat 0xb7',
                      res.stderr)

    # The debug console

    def test_console_to_file(self):
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '500'
        out = self.scratch_file('console.log')
        res = self.qemu('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                        '-m', '128M', '-kernel', self.make_eif(),
                        '-serial', f'file:{out}')
        self.assertEqual(res.returncode, 0, res.stderr)
        cid = self.events('start')[0]['cid']
        with open(out, 'rb') as f:
            got = f.read()
        self.assertIn(b'heartbeat ok', got)
        self.assertEqual(got, self.console_file(cid))

    def test_console_to_stdout_after_stdin_ended(self):
        # -serial stdio with stdin at its end (</dev/null, as under a
        # service manager or in a script): QEMU calls the chardev closed,
        # but its output still takes the console
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '500'
        res = self.qemu('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                        '-m', '128M', '-kernel', self.make_eif(),
                        '-serial', 'stdio')
        self.assertEqual(res.returncode, 0, res.stderr)
        cid = self.events('start')[0]['cid']
        self.assertIn('heartbeat ok', res.stdout)
        self.assertEqual(res.stdout.encode(), self.console_file(cid))

    def test_console_socket_connected_late(self):
        path = os.path.join(self.sim_dir, 'console.sock')
        self.launch('-chardev', f'socket,id=con,path={path},server=on,'
                    'wait=off', '-serial', 'chardev:con')
        cid = self.started_event()['cid']
        self.wait_for(lambda: self.heartbeats('ok'))
        time.sleep(0.3)
        # Connected only now: nothing the enclave printed is lost
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.settimeout(10)
        want = self.console_file(cid)
        got = b''
        while len(got) < len(want):
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
        sock.close()
        self.assertEqual(got, want)

    def test_console_client_that_stops_reading(self):
        # A chatty enclave (4 MiB of console, more than every socket
        # buffer on the way) and a console client that reads nothing for
        # 10 s: QMP still answers at once, and then every byte arrives
        self.sim_env['NITRO_SIM_CONSOLE_BYTES'] = str(4 << 20)
        path = os.path.join(self.sim_dir, 'console.sock')
        self.launch('-chardev', f'socket,id=con,path={path},server=on,'
                    'wait=off', '-serial', 'chardev:con')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        cid = self.started_event()['cid']
        self.wait_for(lambda: self.heartbeats('ok'))
        answers = []
        stall_end = time.monotonic() + 10
        while time.monotonic() < stall_end:
            t = time.monotonic()
            self.assertEqual(self.vm.cmd('query-status')['status'],
                             'running')
            answers.append(time.monotonic() - t)
        answers.sort()
        # The median, and no answer that waited for the client
        self.assertLess(answers[len(answers) // 2], 0.1, answers[-5:])
        self.assertLess(answers[-1], 2, answers[-5:])
        sock.settimeout(60)
        got = b''
        while b'console fill done' not in got:
            chunk = sock.recv(1 << 16)
            self.assertTrue(chunk, 'the console ended early')
            got += chunk
        sock.close()
        # No byte lost or doubled
        want = self.console_file(cid)
        self.assertEqual(got, want[:len(got)])
        self.assertGreater(len(got), 4 << 20)

    def test_console_eof(self):
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        self.launch('-no-shutdown', '-serial', 'none', '-chardev',
                    f'file,id=con,path={self.scratch_file("c.log")}',
                    '-device', 'nitro-serial-vsock,chardev=con',
                    '-nodefaults', '-device', 'nitro-heartbeat')
        self.vm.event_wait('SHUTDOWN', timeout=DEADLINE)
        # The console ended with the enclave; QEMU is still there
        self.assertEqual(self.vm.cmd('query-status')['status'], 'shutdown')
        self.wait_for(lambda: [e for e in self.events('console')
                               if e.get('state') == 'closed'])

    def test_debug_off_no_console(self):
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        out = self.scratch_file('console.log')
        res = self.qemu('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                        '-kernel', self.make_eif(),
                        '-serial', f'file:{out}')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(os.path.getsize(out), 0)
        self.assertEqual([e for e in self.events('vsock')
                          if e.get('port', 0) >= 10000 and
                          e.get('by') != 'hypervisor'], [])

    def test_console_needs_debug_mode(self):
        res = self.qemu('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                        '-kernel', self.make_eif(), '-chardev', 'null,id=c',
                        '-device', 'nitro-serial-vsock,chardev=c')
        self.assert_fails(res, 'console only in debug mode')

    # -nodefaults

    def test_nodefaults_alone(self):
        # Nothing would answer the heartbeat: refused before the start
        res = self.qemu('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                        '-m', '128M', '-kernel', self.make_eif(),
                        nodefaults=True)
        self.assert_fails(res, 'no nitro-heartbeat device: nothing would '
                          'answer the enclave\'s heartbeat')
        self.assertEqual(self.events('start'), [])

    def test_nodefaults_with_devices(self):
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '500'
        out = self.scratch_file('console.log')
        res = self.qemu('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                        '-m', '128M', '-kernel', self.make_eif(),
                        '-device', 'nitro-heartbeat',
                        '-chardev', f'file,id=con,path={out}',
                        '-device', 'nitro-serial-vsock,chardev=con',
                        nodefaults=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(len(self.heartbeats('ok')), 1)
        with open(out, 'rb') as f:
            self.assertEqual(f.read(), self.console_file(
                self.events('start')[0]['cid']))

    def test_duplicate_heartbeat(self):
        res = self.spawn('-kernel', self.make_eif(), '-device',
                         'nitro-heartbeat')
        _, err = res.communicate(timeout=DEADLINE)
        self.assertEqual(res.returncode, 1, err)
        self.assertIn('another nitro-heartbeat already listens', err)

    # Lifetime

    def test_enclave_stops_by_itself(self):
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        self.launch('-serial', 'none')
        ev = self.vm.event_wait('SHUTDOWN', timeout=DEADLINE)
        self.assertEqual(ev['data']['reason'], 'guest-shutdown')
        self.vm.wait(timeout=DEADLINE)
        self.assertEqual(self.vm.exitcode(), 0)
        self.assertEqual(self.stops()[0]['reason'], 'lifetime')

    def test_quit_terminates_enclave(self):
        self.launch('-serial', 'none')
        self.wait_for(lambda: self.heartbeats('ok'))
        self.vm.shutdown()
        stop = self.wait_for(self.stops)
        self.assertEqual(stop[0]['reason'], 'fd-closed')
        self.assertFalse(stop[0].get('at_exit', False))

    def test_sigterm_terminates_enclave(self):
        proc = self.spawn('-kernel', self.make_eif(), '-serial', 'none')
        self.wait_for(lambda: self.heartbeats('ok'))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=DEADLINE)
        self.assertIn('terminating on signal 15', err)
        stop = self.wait_for(self.stops)
        self.assertEqual(stop[0]['reason'], 'fd-closed')

    def test_valgrind_no_leaks(self):
        """One whole life under valgrind: no memory error, no definite
        leak, and none of the fds QEMU's nitro code opened left open."""
        if self.arch != 'x86_64':
            self.skipTest('run on the x86_64 binary only')
        if not shutil.which('valgrind'):
            self.skipTest('valgrind is not installed')
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '2000'
        env = dict(os.environ, LD_PRELOAD=self.sim_lib, **self.sim_env)
        cmd = ['valgrind', '-q', '--error-exitcode=99', '--leak-check=full',
               '--errors-for-leak-kinds=definite', '--track-fds=yes',
               self.qemu_bin, '-display', 'none', '-accel',
               'nitro,debug-mode=on', '-M', 'nitro', '-m', '128M',
               '-kernel', self.make_eif(),
               '-serial', f'file:{self.scratch_file("c.log")}']
        res = subprocess.run(cmd, env=env, capture_output=True, text=True,
                             timeout=300)
        self.log.info('valgrind: %s', res.stderr)
        self.assertEqual(res.returncode, 0, res.stderr)
        for opener in ('nitro_driver_open', 'nitro_driver_create_vm',
                       'nitro_heartbeat', 'nitro_serial'):
            self.assertNotIn(opener, res.stderr)
        self.assertEqual(len(self.heartbeats('ok')), 1)
        self.assertEqual(self.stops()[0]['reason'], 'lifetime')


if __name__ == '__main__':
    NitroTest.main()
