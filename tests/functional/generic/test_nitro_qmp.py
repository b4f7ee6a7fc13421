#!/usr/bin/env python3
#
# A QMP client of -accel nitro -M nitro, on the Nitro Enclaves simulator:
# the in-tree qemu.qmp library (QMPClient, asyncio) against a QEMU started
# with -qmp unix:PATH, as a management application would use it: the CID,
# the PCRs, query-accelerators and the event of the enclave stopping.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import asyncio
import os
import subprocess
import time

from qemu.qmp import ExecuteError, QMPClient

from qemu_test.nitro import DEADLINE, NitroTest


class NitroQMP(NitroTest):

    def start_qemu(self, *args):
        self.qmp_path = os.path.join(self.sim_dir, 'qmp.sock')
        cmd = self.sim_wrapper() + [
            self.qemu_bin, '-display', 'none', '-nodefaults',
            '-accel', 'nitro,debug-mode=on', '-M', 'nitro', '-m', '128M',
            '-kernel', self.eif, '-device', 'nitro-heartbeat',
            '-qmp', f'unix:{self.qmp_path},server=on,wait=on', *args]
        self.log.info('running %s', ' '.join(cmd))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def tearDown(self):
        proc = getattr(self, 'proc', None)
        if proc and proc.poll() is None:
            proc.kill()
            proc.communicate()
        super().tearDown()

    async def connect(self):
        qmp = QMPClient('nitro-qmp-test')
        deadline = time.monotonic() + DEADLINE
        while not os.path.exists(self.qmp_path) and \
                time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await qmp.connect(self.qmp_path)
        return qmp

    async def session(self):
        qmp = await self.connect()
        try:
            with qmp.listener('SHUTDOWN') as shutdown:
                await self.queries(qmp)
                # The enclave stops by itself (NITRO_SIM_LIFETIME_MS)
                event = await shutdown.get()
            self.assertEqual(event['data']['reason'], 'guest-shutdown')
            status = await qmp.execute('query-status')
            self.assertEqual(status['status'], 'shutdown')
            await qmp.execute('quit')
        finally:
            try:
                await qmp.disconnect()
            except EOFError:
                # QEMU closed the connection first, after quit
                pass

    async def queries(self, qmp):
        accels = await qmp.execute('query-accelerators')
        self.assertIn('nitro', accels['present'])
        self.assertEqual(accels['enabled'], 'nitro')

        cid = await qmp.execute('qom-get', {
            'path': '/machine/nitro-vsock', 'property': 'enclave-cid'})
        start = self.events('start')
        self.assertEqual(len(start), 1, start)
        self.assertEqual(cid, start[0]['cid'])
        self.assertEqual(await qmp.execute('qom-get', {
            'path': '/machine', 'property': 'enclave-cid'}), cid)

        want = self.describe(self.eif)['Measurements']
        for pcr in ('pcr0', 'pcr1', 'pcr2'):
            got = await self.measured(qmp, pcr)
            self.assertEqual(got, want[pcr.upper()].lower(), pcr)

    async def measured(self, qmp, pcr):
        """qom-get @pcr, which fails while the image is being measured"""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                return await qmp.execute('qom-get', {
                    'path': '/machine', 'property': pcr})
            except ExecuteError as e:
                if 'still measuring' not in str(e):
                    raise
            await asyncio.sleep(0.02)
        self.fail(f'{pcr} still measured after {DEADLINE} s')

    def test_qmp_client(self):
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '2000'
        self.eif = self.make_eif()
        self.start_qemu('-no-shutdown')
        asyncio.run(asyncio.wait_for(self.session(), DEADLINE))
        _, err = self.proc.communicate(timeout=DEADLINE)
        self.assertEqual(self.proc.returncode, 0, err)
        self.assertIn('the enclave with CID', err)
        self.assertEqual(self.events('stop')[0]['reason'], 'lifetime')

    def test_accel_switched_for_libvirt(self):
        """libvirt's -accel tcg comes first: the machine takes nitro, with
        the options of the -accel nitro that follows."""
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        res = self.run_qemu('-accel', 'tcg', '-accel', 'nitro,debug-mode=on',
                            '-M', 'nitro', '-m', '128M',
                            '-kernel', self.make_eif(),
                            '-device', 'nitro-heartbeat')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("machine 'nitro' needs -accel nitro: using it instead "
                      "of tcg", res.stderr)
        self.assertTrue(self.events('start')[0]['debug'])


if __name__ == '__main__':
    NitroTest.main()
