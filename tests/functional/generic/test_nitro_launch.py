#!/usr/bin/env python3
#
# Launch enclaves with -accel nitro -M nitro, on the Nitro Enclaves
# simulator: EIF and direct kernel boot, the resources the driver gets,
# the CID and the PCRs over QMP.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import subprocess

from qemu_test.nitro import NitroTest, MiB


class NitroLaunch(NitroTest):

    def launch(self, accel='nitro', mem='128M', smp='2', *args):
        self.vm.add_args('-accel', accel, '-M', 'nitro', '-m', mem,
                         '-smp', smp, '-serial', 'none', *args)
        self.vm.launch()
        return self.vm

    def started(self):
        starts = self.ioctls('NE_START_ENCLAVE')
        self.assertEqual(len(starts), 1, starts)
        self.assertEqual(starts[0].get('result'), 0, starts[0])
        return self.events('start')[0]

    def check_enclave(self, mem, vcpus, debug):
        regions = self.events('region')
        self.assertEqual(sum(r['size'] for r in regions), mem)
        for r in regions:
            self.assertTrue(r['hugetlb'], r)
            self.assertEqual(r['page_size'] % (2 * MiB), 0, r)
        load = self.ioctls('NE_GET_IMAGE_LOAD_INFO')
        self.assertEqual(len(load), 1)
        eif = self.events('eif')
        self.assertEqual(len(eif), 1, eif)
        eif = eif[0]
        self.assertEqual(eif['verdict'], 'ok', eif)
        self.assertTrue(eif['crc_ok'])
        self.assertEqual(eif['image_offset'], 8 * MiB)
        self.assertEqual(eif['arch'], self.target_arch)
        start = self.started()
        self.assertEqual(len(start['vcpus']), vcpus, start)
        self.assertEqual(len(self.ioctls('NE_ADD_VCPU')), vcpus)
        self.assertEqual(start['debug'], debug, start)
        self.assertEqual(start['mem_size'], mem, start)
        return eif, start

    def qom(self, prop):
        return self.vm.cmd('qom-get', path='/machine', property=prop)

    def check_pcrs(self, eif, described=None):
        for i in range(3):
            got = self.qom_pcr(self.vm, i)['return']
            self.assertEqual(got, eif[f'pcr{i}'])
            if described:
                self.assertEqual(got, described['Measurements'][f'PCR{i}'])

    def test_eif_boot(self):
        image = self.make_eif(initrds=2)
        self.launch('nitro', '128M', '2', '-kernel', image)
        eif, start = self.check_enclave(128 * MiB, 2, False)
        self.assertGreaterEqual(start['cid'], 4)
        self.assertEqual(self.qom('enclave-cid'), start['cid'])
        self.assertEqual(eif['cmdline'], 'console=ttyS0')
        self.check_pcrs(eif, self.describe(image))

    def test_big_eif_boot(self):
        # An image of 64 MiB and more is read on several threads, one per
        # core (up to 8), each with its share of the CRC
        kernel = self.data('kernel', MiB, 'k')
        rd = self.data('big-rd', 160 * MiB, 'rd')
        image = self.build_eif(self.scratch_file('big.eif'), kernel, [rd],
                               'console=ttyS0')
        size = os.path.getsize(image)
        self.launch('nitro', '256M', '2', '-kernel', image,
                    '-trace', 'nitro_ram_load', '-M',
                    'nitro,allow-small-memory=on')
        eif, _ = self.check_enclave(256 * MiB, 2, False)
        self.assertEqual(eif['size'], size)
        self.check_pcrs(eif, self.describe(image))
        self.vm.shutdown()
        threads = max(1, min(size // (64 * MiB), 8,
                             os.sysconf('SC_NPROCESSORS_ONLN')))
        self.assertIn(f'reading {size} bytes on {threads} threads',
                      self.vm.get_log())

    def test_direct_kernel_boot(self):
        kernel, rds = self.eif_inputs(initrds=2)
        self.launch('nitro', '256M', '4', '-kernel', kernel,
                    '-initrd', ':'.join(rds), '-append', 'quiet init=/app')
        eif, _ = self.check_enclave(256 * MiB, 4, False)
        self.assertEqual(eif['cmdline'], 'quiet init=/app')
        # The same inputs built by qemu-eif measure the same
        image = self.build_eif(self.scratch_file('same.eif'), kernel, rds,
                               'quiet init=/app')
        self.check_pcrs(eif, self.describe(image))

    def test_direct_kernel_boot_default_cmdline(self):
        # Without -append, the architecture's official command line
        kernel, rds = self.eif_inputs()
        self.launch('nitro', '128M', '2', '-kernel', kernel, '-initrd',
                    rds[0])
        eif, _ = self.check_enclave(128 * MiB, 2, False)
        cmd = [self.qemu_eif, 'build', '--kernel', kernel, '--initrd',
               rds[0], '--arch', self.target_arch, '-o',
               self.scratch_file('default.eif')]
        subprocess.run(cmd, check=True)
        described = self.describe(self.scratch_file('default.eif'))
        self.assertEqual(eif['cmdline'], described['Cmdline'])
        self.assertIn('reboot=k panic=30 pci=off nomodules console=ttyS0',
                      eif['cmdline'])
        self.check_pcrs(eif, described)

    def test_debug_mode_and_cid(self):
        image = self.make_eif()
        self.launch('nitro,debug-mode=on,requested-cid=1234', '128M', '2',
                    '-kernel', image)
        _, start = self.check_enclave(128 * MiB, 2, True)
        self.assertEqual(start['cid'], 1234)
        self.assertEqual(self.qom('enclave-cid'), 1234)

    def test_cpu_host(self):
        self.launch('nitro', '128M', '2', '-cpu', 'host',
                    '-kernel', self.make_eif())
        self.check_enclave(128 * MiB, 2, False)

    def test_accel_help(self):
        res = self.run_qemu('-accel', 'help')
        self.assertEqual(res.returncode, 0)
        self.assertIn('\nnitro\n', res.stdout)
        res = self.run_qemu('-M', 'help')
        self.assertIn('nitro ', res.stdout)

    def test_query_accelerators(self):
        self.launch('nitro', '128M', '2', '-kernel', self.make_eif())
        info = self.vm.cmd('query-accelerators')
        self.assertEqual(info['enabled'], 'nitro')
        self.assertIn('nitro', info['present'])


if __name__ == '__main__':
    NitroTest.main()
