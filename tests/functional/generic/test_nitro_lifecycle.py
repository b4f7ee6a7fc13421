#!/usr/bin/env python3
#
# The enclave's life follows QEMU's run state, on the Nitro Enclaves
# simulator: -S and cont, what an enclave cannot do (pause, reset,
# migrate, snapshot, have its memory read), power-down, boot failures as
# guest panics, the heartbeat's peer, a main loop that never waits, and
# a console that is complete when QEMU exits.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import hashlib
import os
import subprocess
import sys
import time

from qemu_test.nitro import DEADLINE, NitroTest, MiB, reserve_hugepages

# Signed images, as the tests of the EIF library make them
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..', 'nitro', 'eif'))
import eifsig  # noqa: E402


# A process of the simulation that holds a vsock socket: "listen PORT"
# binds (parent, PORT) and listens, "connect PORT" connects to the
# parent's PORT and sends nothing; it prints "ready" and waits for stdin.
HOLDER = r'''
import socket, sys
what, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
if what == 'listen':
    s.bind((socket.VMADDR_CID_ANY, port))
    s.listen(1)
else:
    s.connect((3, port))
print('ready', flush=True)
sys.stdin.read()
s.close()
'''


class NitroLifecycle(NitroTest):

    def starts(self):
        """NE_START_ENCLAVE"""
        return self.ioctls('NE_START_ENCLAVE')

    def launch(self, *args, accel='nitro,debug-mode=on', kernel=None):
        self.vm.add_args('-accel', accel, '-M', 'nitro', '-m', '128M',
                         '-kernel', kernel or self.make_eif(), *args)
        self.vm.launch()
        return self.vm

    def nitro(self, *args, nodefaults=False):
        return self.run_qemu('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                             '-m', '128M', '-kernel', self.make_eif(), *args,
                             nodefaults=nodefaults)

    def status(self):
        return self.vm.cmd('query-status')['status']

    def assert_qmp_error(self, cmd, message, **args):
        res = self.vm.qmp(cmd, **args)
        self.assertIn('error', res, res)
        self.assertIn(message, res['error']['desc'])
        return res['error']['desc']

    def hmp(self, line):
        return self.vm.cmd('human-monitor-command', command_line=line)

    def holder(self, what, port=9000):
        env = dict(os.environ, LD_PRELOAD=self.sim_lib, **self.sim_env)
        p = subprocess.Popen([sys.executable, '-c', HOLDER, what, str(port)],
                             env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline().strip(), 'ready')
        return p

    def release(self, holder):
        holder.stdin.close()
        holder.wait(timeout=DEADLINE)
        holder.stdout.close()

    # Run state

    def test_S_then_cont(self):
        self.launch('-S')
        self.assertEqual(self.status(), 'prelaunch')
        # Prepared: memory and vCPUs donated, the heartbeat listening
        self.assertTrue(self.ioctls('NE_SET_USER_MEMORY_REGION'))
        self.assertTrue(self.ioctls('NE_ADD_VCPU'))
        time.sleep(0.3)
        self.assertEqual(self.starts(), [])
        self.assertEqual(self.vm.cmd('qom-get', path='/machine',
                                     property='enclave-cid'), 0)
        self.vm.cmd('cont')
        self.assertEqual(len(self.starts()), 1)
        self.assertEqual(self.status(), 'running')
        self.wait_for(lambda: self.heartbeats('ok'))
        cid = self.events('start')[0]['cid']
        self.assertEqual(self.vm.cmd('qom-get', path='/machine',
                                     property='enclave-cid'), cid)

    def test_cont_after_start_failure_is_an_error(self):
        # The CID is taken: cont fails with the reason, QEMU stays ready
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '0'
        first = self.vm
        self.launch('-S', accel='nitro,requested-cid=77')
        first.cmd('cont')
        self.wait_for(lambda: self.heartbeats('ok'))
        second = self._new_vm('second')
        second.add_args('-accel', 'nitro,requested-cid=77', '-M', 'nitro',
                        '-m', '128M', '-kernel', self.make_eif(), '-S',
                        '-display', 'none',
                        '-global', 'nitro-heartbeat.port-wait=0')
        second.launch()
        res = second.qmp('cont')
        # what to do is in the error itself: libvirt shows no hint
        self.assertIn('CID 77 is already used by another enclave or VM; '
                      'choose another requested-cid, or 0 to let the '
                      'hypervisor choose', res['error']['desc'])
        self.assertEqual(second.cmd('query-status')['status'], 'prelaunch')
        second.shutdown()

    def enclave_state(self):
        return self.vm.cmd('qom-get', path='/machine',
                           property='enclave-state')

    def test_enclave_state(self):
        # Prepared in prelaunch, running, stopping while the console of
        # the powered-down enclave is copied, then QEMU ends
        self.sim_env['NITRO_SIM_CONSOLE_TAIL_MS'] = '1500'
        self.launch('-S')
        self.assertEqual(self.enclave_state(), 'prepared')
        self.vm.cmd('cont')
        self.assertEqual(self.enclave_state(), 'running')
        self.wait_for(lambda: self.heartbeats('ok'))
        self.vm.cmd('system_powerdown')
        self.assertEqual(self.enclave_state(), 'stopping')
        self.assertEqual(self.stops()[-1]['reason'], 'fd-closed')
        self.vm.event_wait('SHUTDOWN', timeout=DEADLINE)
        self.vm.wait(timeout=DEADLINE)

    def test_enclave_state_after_a_panic(self):
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'bad'
        self.launch('-action', 'panic=pause')
        self.vm.event_wait('GUEST_PANICKED', timeout=DEADLINE)
        self.assertEqual(self.status(), 'guest-panicked')
        self.assertEqual(self.enclave_state(), 'stopped')

    def test_a_failed_enclave_cannot_run_again(self):
        # QEMU stays after the boot failure (-action panic=none would let
        # a guest run on, an enclave cannot): its state says stopped, cont
        # says why it cannot run, system_powerdown ends QEMU
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'bad'
        for action in ('panic=none', 'panic=pause'):
            with self.subTest(action=action):
                vm = self._new_vm(action)
                vm.add_args('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                            '-m', '128M', '-kernel', self.make_eif(),
                            '-display', 'none', '-action', action)
                vm.launch()
                vm.event_wait('GUEST_PANICKED', timeout=DEADLINE)
                self.assertEqual(vm.cmd('query-status')['status'],
                                 'guest-panicked')
                self.assertEqual(vm.cmd('qom-get', path='/machine',
                                        property='enclave-state'),
                                 'stopped')
                res = vm.qmp('cont')
                self.assertIn('cannot run again', res['error']['desc'])
                vm.cmd('system_powerdown')
                vm.wait(timeout=DEADLINE)
                self.assertEqual(vm.exitcode(), 0)

    def test_stop_refused(self):
        self.launch()
        self.wait_for(lambda: self.starts())
        self.assert_qmp_error('stop', 'an enclave cannot be paused')
        self.assertEqual(self.status(), 'running')
        self.assertIn('an enclave cannot be paused', self.hmp('stop'))
        self.assertEqual(self.status(), 'running')

    def test_system_reset_refused(self):
        self.launch()
        self.wait_for(lambda: self.starts())
        self.vm.get_qmp_events(wait=False)
        self.assert_qmp_error('system_reset',
                              'the vCPUs of this guest cannot be reset')
        self.assertIn('the vCPUs of this guest cannot be reset',
                      self.hmp('system_reset'))
        time.sleep(0.3)
        events = [e['event'] for e in self.vm.get_qmp_events(wait=False)]
        self.assertNotIn('RESET', events)
        self.assertEqual(self.status(), 'running')

    def test_system_powerdown_terminates(self):
        self.launch()
        self.wait_for(lambda: self.heartbeats('ok'))
        self.vm.cmd('system_powerdown')
        ev = self.vm.event_wait('SHUTDOWN', timeout=DEADLINE)
        self.assertFalse(ev['data']['guest'])
        self.assertEqual(ev['data']['reason'], 'host-qmp-quit')
        self.vm.wait(timeout=DEADLINE)
        self.assertEqual(self.vm.exitcode(), 0)
        self.assertEqual(self.stops()[-1]['reason'], 'fd-closed')

    # Migration, snapshots, memory

    def test_migrate_refused(self):
        self.launch()
        self.wait_for(lambda: self.starts())
        self.assert_qmp_error('migrate', 'cannot be migrated',
                              uri='exec:cat >/dev/null')
        self.assertIn('cannot be migrated', self.hmp('savevm snap'))
        self.assertEqual(self.status(), 'running')
        self.assertEqual(self.stops(), [])

    def test_incoming_refused(self):
        for incoming in ('defer', 'tcp:127.0.0.1:0'):
            res = self.nitro('-incoming', incoming)
            self.assert_fails(res, 'an enclave cannot be migrated: '
                              '-incoming is not supported')
            self.assertEqual(self.starts(), [])

    def test_loadvm_refused(self):
        res = self.nitro('-loadvm', 'snap')
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertNotIn('Segmentation', res.stderr)
        self.assertEqual(self.starts(), [])

    def test_preconfig(self):
        self.launch('--preconfig')
        self.assertEqual(self.status(), 'prelaunch')
        self.assertEqual(self.enclave_state(), 'created')
        self.vm.cmd('x-exit-preconfig')
        self.wait_for(lambda: self.heartbeats('ok'))
        self.assertEqual(self.status(), 'running')
        cid = self.events('start')[0]['cid']
        self.assertEqual(self.vm.cmd('qom-get', path='/machine',
                                     property='enclave-cid'), cid)

    def test_memory_reads_refused(self):
        self.launch()
        self.wait_for(lambda: self.starts())
        out = self.scratch_file('mem')
        msg = 'the memory of an enclave cannot be read'
        self.assert_qmp_error('pmemsave', msg, val=0, size=4096,
                              filename=out)
        self.assert_qmp_error('memsave', msg, val=0, size=4096,
                              filename=out)
        self.assert_qmp_error('dump-guest-memory', msg, paging=False,
                              protocol=f'file:{out}')
        self.assertIn(msg, self.hmp('xp /16x 0x800000'))
        self.assertIn(msg, self.hmp('sum 0x800000 4096'))
        self.assert_qmp_error('calc-dirty-rate', msg, calc_time=1)
        self.assertIn(msg, self.hmp('calc_dirty_rate 1'))
        self.assertFalse(os.path.exists(out))
        self.assertEqual(self.status(), 'running')

    def test_memory_reads_before_the_start(self):
        # Under -S the image is in guest RAM at the image offset: what
        # pmemsave, xp and sum read there is the EIF
        eif = self.make_eif()
        self.launch('-S', kernel=eif)
        out = self.scratch_file('mem')
        self.vm.cmd('pmemsave', val=0x800000, size=4096, filename=out)
        with open(eif, 'rb') as f:
            want = f.read(4096)
        with open(out, 'rb') as f:
            self.assertEqual(f.read(), want)
        total = 0
        for byte in want:
            # the BSD sum of HMP's sum command
            total = ((total >> 1) | (total << 15)) & 0xffff
            total = (total + byte) & 0xffff
        self.assertEqual(self.hmp('sum 0x800000 4096').strip(),
                         f'{total:05d}')
        self.assertIn(' '.join(f'0x{b:02x}' for b in want[:4]),
                      self.hmp('xp /4xb 0x800000'))

    def test_no_start_while_the_dirty_rate_is_measured(self):
        # calc-dirty-rate reads the RAM from a thread: not past the start.
        # Once the thread measures (it starts "unstarted"), the
        # measurement lasts long enough for the cont below to come
        # during it on a loaded host; that it did is checked, not assumed
        self.launch('-S')
        self.vm.cmd('calc-dirty-rate', calc_time=10)

        def started():
            """the dirty rate thread's start"""
            status = self.vm.cmd('query-dirty-rate')['status']
            return status if status != 'unstarted' else None

        self.assertEqual(self.wait_for(started), 'measuring')
        self.assert_qmp_error('cont', 'a dirty rate measurement')
        self.assertEqual(self.status(), 'prelaunch')
        self.assertEqual(self.starts(), [])
        self.wait_for(lambda: self.vm.cmd('query-dirty-rate')['status'] ==
                      'measured')
        self.vm.cmd('cont')
        self.wait_for(lambda: self.heartbeats('ok'))

    def test_meaningless_options_refused(self):
        for args, msg in ((('-bios', '/dev/null'), '-bios has no meaning'),
                          (('-smp', '2,maxcpus=4'), 'cannot hot-plug vCPUs'),
                          (('-m', '128M,maxmem=256M,slots=1'),
                           'cannot hot-plug memory')):
            res = self.nitro(*args)
            self.assert_fails(res, msg)
            self.assertEqual(self.ioctls('NE_SET_USER_MEMORY_REGION'), [])

    def test_snapshot_has_no_effect(self):
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        res = self.nitro('-snapshot')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn('-snapshot has no effect: there is no -drive',
                      res.stderr)

    # The heartbeat

    def test_no_heartbeat_device_refused(self):
        res = self.nitro(nodefaults=True)
        self.assert_fails(res, 'no nitro-heartbeat device')
        self.assertIn('external-heartbeat=on', res.stderr)
        self.assertEqual(self.starts(), [])

    def test_external_heartbeat(self):
        # Another process is to answer (here nobody does: the enclave
        # then stops by itself, and QEMU with it)
        res = self.run_qemu('-accel', 'nitro', '-M',
                            'nitro,external-heartbeat=on', '-m', '128M',
                            '-kernel', self.make_eif())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(len(self.starts()), 1)
        self.assertEqual(self.heartbeats('fail')[0]['cid'],
                         self.events('start')[0]['cid'])

    def test_boot_failure_is_a_guest_panic(self):
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'bad'
        self.launch()
        ev = self.vm.event_wait('GUEST_PANICKED', timeout=DEADLINE)
        self.assertEqual(ev['data']['action'], 'poweroff')
        ev = self.vm.event_wait('SHUTDOWN', timeout=DEADLINE)
        self.assertEqual(ev['data']['reason'], 'guest-panic')
        self.vm.wait(timeout=DEADLINE)
        self.assertEqual(self.vm.exitcode(), 1)
        self.assertIn('did not boot: it sent 0x00', self.vm.get_log())

    def test_stop_before_the_heartbeat_is_a_guest_panic(self):
        # The heartbeat listens on another port than the init's: the
        # enclave panics and stops before it: a boot failure (nitro-cli's
        # E36), with its whole console, every time (20 runs)
        for run in range(20):
            console = self.scratch_file(f'console-{run}.txt')
            res = self.run_qemu('-accel', 'nitro,debug-mode=on',
                                '-M', 'nitro', '-m', '128M',
                                '-kernel', self.make_eif(),
                                '-chardev', f'file,id=con,path={console}',
                                '-device', 'nitro-serial-vsock,chardev=con',
                                '-device', 'nitro-heartbeat,port=9001')
            with open(console, encoding='utf-8') as f:
                text = f.read()
            self.assertEqual(res.returncode, 1, f'run {run}: {res.stderr}')
            self.assertIn('did not boot: it stopped before its heartbeat',
                          res.stderr)
            self.assertIn('Kernel panic - not syncing', text, f'run {run}')
            self.assertTrue(text.endswith(
                'nitro-sim: enclave stopped (heartbeat-failed)\n'),
                f'run {run}: {text}')

    def test_stop_before_the_heartbeat_is_guest_panicked(self):
        # nitro-sim stop before the heartbeat: GUEST_PANICKED, exit 1
        self.sim_env['NITRO_SIM_BOOT_DELAY_MS'] = '600000'
        self.launch()
        cid = self.wait_for(lambda: self.events('start'))[0]['cid']
        env = dict(os.environ, **self.sim_env)
        subprocess.run([os.path.join(os.path.dirname(self.sim_lib),
                                     'nitro-sim'), 'stop', str(cid)],
                       env=env, check=True, timeout=DEADLINE,
                       capture_output=True)
        ev = self.vm.event_wait('GUEST_PANICKED', timeout=DEADLINE)
        self.assertEqual(ev['data']['action'], 'poweroff')
        ev = self.vm.event_wait('SHUTDOWN', timeout=DEADLINE)
        self.assertEqual(ev['data']['reason'], 'guest-panic')
        self.vm.wait(timeout=DEADLINE)
        self.assertEqual(self.vm.exitcode(), 1)
        self.assertIn('did not boot: it stopped before its heartbeat',
                      self.vm.get_log())

    def test_heartbeat_timeout_is_a_guest_panic(self):
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'none'
        res = self.nitro('-global', 'nitro-heartbeat.timeout=1')
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn('no heartbeat on vsock port 9000 within 1 s',
                      res.stderr)
        self.assertEqual(self.stops()[-1]['reason'], 'fd-closed')

    def test_warn_only_answers_a_late_heartbeat(self):
        self.sim_env['NITRO_SIM_BOOT_DELAY_MS'] = '1800'
        self.launch('-global', 'nitro-heartbeat.timeout=1',
                    '-global', 'nitro-heartbeat.warn-only=on')
        self.wait_for(lambda: self.heartbeats('ok'))
        self.assertEqual(self.status(), 'running')
        self.vm.shutdown()
        self.assertIn('the enclave has not booted yet: no heartbeat',
                      self.vm.get_log())

    def test_foreign_client_does_not_break_the_boot(self):
        self.launch('-S')
        # A local process (CID 3) connects to the heartbeat port first
        intruder = self.holder('connect')
        try:
            self.vm.cmd('cont')
            self.wait_for(lambda: self.heartbeats('ok'))
            self.assertEqual(self.heartbeats('fail'), [])
            self.assertEqual(self.status(), 'running')
        finally:
            self.release(intruder)

    def test_qmp_answers_while_the_port_is_held(self):
        squatter = self.holder('listen')
        try:
            self.launch()
            took = []
            for _ in range(11):
                t = time.monotonic()
                self.assertEqual(self.status(), 'prelaunch')
                took.append(time.monotonic() - t)
                time.sleep(0.05)
            # The median: a loaded host may delay one answer, a main loop
            # that waits for the port would delay them all
            self.assertLess(sorted(took)[5], 0.1, took)
            self.assertEqual(self.starts(), [])
            self.assert_qmp_error('cont', 'is held by another enclave '
                                  'launcher')
        finally:
            self.release(squatter)
        # The port is free: the enclave starts by itself
        self.wait_for(lambda: self.heartbeats('ok'))
        self.assertEqual(self.status(), 'running')

    def test_no_pause_or_memory_read_while_the_start_waits(self):
        # The enclave starts as soon as the port is free: a stop, or a
        # reader of its memory (calc-dirty-rate runs for a second), would
        # be overtaken by that start
        squatter = self.holder('listen')
        try:
            self.launch()
            self.assertEqual(self.status(), 'prelaunch')
            self.assert_qmp_error('stop', 'it cannot be paused')
            self.assert_qmp_error('calc-dirty-rate', 'the memory of an '
                                  'enclave cannot be read', calc_time=1)
            self.assertIn('the memory of an enclave cannot be read',
                          self.hmp('sum 0x800000 4096'))
        finally:
            self.release(squatter)
        self.wait_for(lambda: self.heartbeats('ok'))
        self.assertEqual(self.status(), 'running')
        self.assertEqual(self.vm.cmd('query-dirty-rate')['status'],
                         'unstarted')

    # The measurements

    def pcr_error(self):
        res = self.qom_pcr(self.vm, 0)
        self.assertIn('error', res, res)
        return res['error']['desc']

    def test_pcrs_of_a_changed_file(self):
        # A direct boot is measured from its files while the enclave
        # starts (here, under -S, while it waits for cont): rewrite the
        # end of a big initrd before the measurement gets there
        reason = reserve_hugepages(400)
        if reason:
            self.skipTest(reason)
        kernel = self.data('kernel', MiB, 'kernel')
        initrd = self.data('initrd', 512 * MiB, 'initrd')
        self.vm.add_args('-accel', 'nitro', '-M',
                         'nitro,allow-small-memory=on', '-m', '768M',
                         '-kernel', kernel, '-initrd', initrd,
                         '-append', 'console=ttyS0', '-S')
        self.vm.launch()
        with open(initrd, 'r+b') as f:
            f.seek(-MiB, os.SEEK_END)
            f.write(b'changed' * (MiB // 7))
        self.assertIn(f'{initrd}: changed since it was loaded',
                      self.pcr_error())

    def test_pcr8_of_a_signed_image(self):
        signed = self.scratch_file('signed.eif')
        eifsig.sign(self.make_eif(), signed)
        self.launch(kernel=signed)
        res = self.qom_pcr(self.vm, 8)
        self.assertEqual(res['return'],
                         self.describe(signed)['Measurements']['PCR8'])
        self.assertEqual(self.qom_pcr(self.vm, 0)['return'],
                         self.describe(signed)['Measurements']['PCR0'])

    def test_signature_of_another_image(self):
        # It verifies, but signs another PCR0: the PCRs do not describe
        # the enclave, and reading them says why
        signed = self.scratch_file('signed.eif')
        eifsig.sign(self.make_eif(), signed, value=bytes(48))
        self.launch(kernel=signed)
        for pcr in (0, 8):
            res = self.qom_pcr(self.vm, pcr)
            self.assertIn("the signature does not sign this image's PCR0",
                          res['error']['desc'])

    def test_pcr3_pcr4_of_the_parent(self):
        # As AWS documents them for key policies: SHA-384 of 48 zero
        # bytes and the IAM role's ARN (PCR3), the instance ID (PCR4)
        role = 'arn:aws:iam::123456789012:role/Webserver'
        instance = 'i-0123456789abcdef0'
        self.launch('-machine', f'parent-role={role},'
                    f'parent-id={instance}')
        for n, text in ((3, role), (4, instance)):
            self.assertEqual(
                self.qom_pcr(self.vm, n)['return'],
                hashlib.sha384(bytes(48) + text.encode()).hexdigest())

    def test_pcr3_pcr4_unknown(self):
        self.launch()
        self.assertIn("the parent's IAM role is not known",
                      self.qom_pcr(self.vm, 3)['error']['desc'])
        self.assertIn("the parent's instance ID is not known",
                      self.qom_pcr(self.vm, 4)['error']['desc'])

    def test_pcr8_of_an_unsigned_image(self):
        # once measured: until then, every PCR is "still measuring"
        self.launch()
        res = self.qom_pcr(self.vm, 8)
        self.assertIn('the enclave image is not signed',
                      res['error']['desc'])
        self.assertIn('return', self.qom_pcr(self.vm, 0))

    # The console

    def test_console_complete_after_boot_failure(self):
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'bad'
        runs = int(os.environ.get('NITRO_CONSOLE_RUNS', '50'))
        for i in range(runs):
            out = self.scratch_file(f'console-{i}.log')
            res = self.nitro('-serial', f'file:{out}')
            self.assertEqual(res.returncode, 1, res.stderr)
            with open(out, 'rb') as f:
                got = f.read()
            self.assertIn(b'Kernel panic - not syncing', got, f'run {i}')

    def console_after_stop(self, out):
        with open(out, 'rb') as f:
            got = f.read()
        self.assertIn(b'Kernel command line', got)
        return got

    def test_console_read_to_eof_after_a_failed_boot(self):
        # The hypervisor delivers the console's last line after POLLHUP
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'bad'
        self.sim_env['NITRO_SIM_CONSOLE_TAIL_MS'] = '500'
        out = self.scratch_file('console.log')
        res = self.nitro('-serial', f'file:{out}')
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn(b'nitro-sim: enclave stopped (heartbeat-failed)\n',
                      self.console_after_stop(out))
        self.assertEqual(self.events('console')[-1]['state'], 'tail')

    def test_console_read_to_eof_after_power_down(self):
        self.sim_env['NITRO_SIM_CONSOLE_TAIL_MS'] = '500'
        out = self.scratch_file('console.log')
        self.launch('-serial', f'file:{out}')
        self.wait_for(lambda: self.heartbeats('ok'))
        self.vm.cmd('system_powerdown')
        self.vm.wait(timeout=DEADLINE)
        self.assertEqual(self.vm.exitcode(), 0)
        self.assertIn(b'nitro-sim: enclave stopped (fd-closed)\n',
                      self.console_after_stop(out))


if __name__ == '__main__':
    NitroTest.main()
