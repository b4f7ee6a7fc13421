#!/usr/bin/env python3
#
# Enclave memory as a real parent has it, on the Nitro Enclaves simulator:
# donations bounded to 1 GiB per NE_SET_USER_MEMORY_REGION call and 1 GiB
# huge pages (skipped, with the reason, when the kernel cannot reserve
# them), and what guest RAM is planned of on made-up hosts (any page
# sizes, on any machine).
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re

from qemu_test.nitro import NitroTest, MiB, reserve_hugepages

GiB = 1024 * MiB


class NitroMemory(NitroTest):

    # 2 MiB pages: only for the tests that use them
    HUGEPAGES = 64

    def launch(self, machine, mem, *args):
        self.vm.add_args('-accel', 'nitro', '-M', machine, '-m', mem,
                         '-smp', '2', '-serial', 'none', *args)
        self.vm.launch()

    def started(self):
        starts = self.ioctls('NE_START_ENCLAVE')
        self.assertEqual([s.get('result') for s in starts], [0], starts)
        eif = self.events('eif')
        self.assertEqual([e['verdict'] for e in eif], ['ok'], eif)
        self.assertTrue(eif[0]['crc_ok'], eif)
        return self.events('start')[0]

    def need_gib_pages(self, count):
        reason = reserve_hugepages(count, 1024 * 1024)
        if reason:
            self.skipTest(reason)

    def test_donations_bounded(self):
        # 3 GiB of 1 GiB pages: three calls of 1 GiB, not one of 3 GiB,
        # in RAM order
        self.need_gib_pages(3)
        self.launch('nitro,hugepage-size=1G', '3G', '-kernel',
                    self.make_eif())
        start = self.started()
        calls = self.ioctls('NE_SET_USER_MEMORY_REGION')
        self.assertEqual([c['memory_size'] for c in calls], [GiB] * 3)
        addrs = [int(c['userspace_addr'], 16) for c in calls]
        self.assertEqual(addrs, [addrs[0] + i * GiB for i in range(3)])
        self.assertEqual(start['mem_size'], 3 * GiB)

    def test_small_memory_override(self):
        # below 4 times the image: refused, unless the expert says so
        kernel = self.data('kernel', MiB, 'k')
        rd = self.data('rd', 40 * MiB, 'rd')
        image = self.build_eif(self.scratch_file('40m.eif'), kernel, [rd],
                               'console=ttyS0')
        self.launch('nitro,allow-small-memory=on', '128M', '-kernel', image)
        self.assertEqual(self.started()['mem_size'], 128 * MiB)

    def test_ram_bound_to_pool_node(self):
        # RAM is bound to the node of the pool before it is touched
        self.launch('nitro', '128M', '-kernel', self.make_eif())
        self.started()
        with open(f'/proc/{self.vm.get_pid()}/numa_maps') as f:
            huge = [line for line in f if 'huge' in line]
        self.assertTrue(huge, 'no hugetlb mapping in numa_maps')
        self.assertTrue(any('bind:0' in line for line in huge), huge)

    def test_pool_on_a_node_without_pages(self):
        # A simulated second node: the pool (cores 2 and 3 of 4) is on
        # node 1, which has no huge pages; caught before the driver
        self.sim_env['NITRO_SIM_NUMA_NODES'] = '2'
        self.sim_env['NITRO_SIM_CPUS'] = '3,7'
        res = self.run_qemu('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                            '-kernel', self.make_eif())
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn('guest RAM of 128 MiB does not fit in the free huge '
                      'pages on NUMA node 1, the CPU pool\'s (', res.stderr)
        self.assertIn('0 of 2 MiB): 128 MiB missing', res.stderr)
        self.assertIn('echo 64 > /sys/devices/system/node/node1/hugepages/'
                      'hugepages-2048kB/nr_hugepages', res.stderr)
        self.assertIn('memory_mib: 128', res.stderr)
        self.assertEqual(self.ioctls('NE_SET_USER_MEMORY_REGION'), [])

    def test_default_uses_gib_pages(self):
        # Where 1 GiB pages are free, the default takes them first
        self.need_gib_pages(2)
        self.launch('nitro', '2G', '-kernel', self.make_eif())
        self.assertEqual(self.started()['mem_size'], 2 * GiB)
        regions = self.events('region')
        self.assertEqual([r['page_size'] for r in regions], [GiB] * 2)

    def test_mixed_pages(self):
        # 1 GiB + 6 MiB: a 1 GiB page, then three 2 MiB pages.  The image
        # starts 8 MiB into RAM and ends past the first block: the
        # simulator checks its CRC and PCRs across the two blocks
        self.need_gib_pages(1)
        kernel = self.data('kernel', MiB, 'k')
        rd = self.data('rd', 1017 * MiB, 'rd')
        image = self.build_eif(self.scratch_file('big.eif'), kernel, [rd],
                               'console=ttyS0')
        self.assertGreater(8 * MiB + os.path.getsize(image), GiB)
        self.launch('nitro,allow-small-memory=on', '1030M', '-kernel', image)
        start = self.started()
        self.assertEqual(start['mem_size'], 1030 * MiB)
        calls = self.ioctls('NE_SET_USER_MEMORY_REGION')
        self.assertEqual([c['memory_size'] for c in calls],
                         [GiB, 6 * MiB])
        self.assertEqual([r['page_size'] for r in self.events('region')],
                         [GiB, 2 * MiB])
        described = self.describe(image)['Measurements']
        for i in range(3):
            self.assertEqual(self.qom_pcr(self.vm, i)['return'],
                             described[f'PCR{i}'])

    # What guest RAM is made of, on made-up hosts: QEMU plans it from the
    # sysfs of $NITRO_SYSFS_ROOT, whatever page sizes this machine has
    # (the tests above that use the pages need the host's own).  The
    # plan is all these check: pages of 1 GiB cannot be allocated here

    def plan(self, pages, mem, *machine_opts):
        """The blocks (page size, size) that QEMU plans for -m @mem on a
        host with @pages (as fake_sysfs takes them)"""
        self.fake_sysfs(pages)
        res = self.run_qemu('-accel', 'nitro', '-M',
                            ','.join(('nitro',) + machine_opts), '-m', mem,
                            '-kernel', self.make_eif(),
                            '-trace', 'nitro_ram_plan_block')
        self.assertNotIn('Aborted', res.stderr)
        return [(int(p), int(n)) for p, n in re.findall(
            r'nitro_ram_plan_block pages of (\d+) bytes: block of (\d+) '
            r'bytes', res.stderr)]

    def test_plan_takes_gib_pages_first(self):
        # As test_default_uses_gib_pages: the largest size that is free
        # first, though more than enough 2 MiB pages are free too
        self.assertEqual(self.plan({GiB: (2, 2), 2 * MiB: (1200, 1200)},
                                   '2G'), [(GiB, 2 * GiB)])

    def test_plan_mixes_pages(self):
        # As test_mixed_pages: 1 GiB + 6 MiB is a 1 GiB page, then three
        # 2 MiB pages
        self.assertEqual(self.plan({GiB: (1, 1), 2 * MiB: (600, 600)},
                                   '1030M'),
                         [(GiB, GiB), (2 * MiB, 6 * MiB)])

    def test_plan_of_32m_pages(self):
        # A Graviton parent's sizes: 32 MiB pages before 2 MiB pages
        self.assertEqual(self.plan({32 * MiB: (3, 3), 2 * MiB: (64, 64)},
                                   '100M'),
                         [(32 * MiB, 96 * MiB), (2 * MiB, 4 * MiB)])

    def test_donations_bounded_of_2m_pages(self):
        # As test_donations_bounded, with the pages this host has: 1 GiB
        # + 2 MiB of 2 MiB pages is a call of 1 GiB, then one of 2 MiB,
        # in RAM order
        reason = reserve_hugepages(513)
        if reason:
            self.skipTest(reason)
        self.launch('nitro,hugepage-size=2M', '1026M', '-kernel',
                    self.make_eif())
        self.assertEqual(self.started()['mem_size'], GiB + 2 * MiB)
        calls = self.ioctls('NE_SET_USER_MEMORY_REGION')
        self.assertEqual([c['memory_size'] for c in calls],
                         [GiB, 2 * MiB])
        addrs = [int(c['userspace_addr'], 16) for c in calls]
        self.assertEqual(addrs[1], addrs[0] + GiB)

    def test_explicit_page_size(self):
        # An explicit size is used even where larger pages are free
        self.launch('nitro,hugepage-size=2M', '128M', '-kernel',
                    self.make_eif())
        self.started()
        self.assertEqual([r['page_size'] for r in self.events('region')],
                         [2 * MiB])

    def test_only_guest_ram_donated(self):
        # A memory backend that the machine does not use, even of huge
        # pages, stays QEMU's: the enclave gets -m, no more
        self.launch('nitro', '64M', '-kernel', self.make_eif(),
                    '-object', 'memory-backend-memfd,id=other,hugetlb=on,'
                    'hugetlbsize=2M,size=2M')
        self.assertEqual(self.started()['mem_size'], 64 * MiB)
        calls = self.ioctls('NE_SET_USER_MEMORY_REGION')
        self.assertEqual(sum(c['memory_size'] for c in calls), 64 * MiB)

    def test_explicit_size_the_host_lacks(self):
        # Any size is accepted if the host offers it; 32 MiB is an arm64
        # size that this made-up host lacks
        self.fake_sysfs({2 * MiB: (64, 64)})
        res = self.run_qemu('-accel', 'nitro', '-M',
                            'nitro,hugepage-size=32M', '-m', '128M',
                            '-kernel', self.make_eif())
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn('this host has no 32 MiB huge pages', res.stderr)

    def test_backend_short_of_huge_pages(self):
        # A memory backend of more 2 MiB pages than are free (libvirt's
        # <hugepages/>): how many are needed and where to reserve them
        d = '/sys/kernel/mm/hugepages/hugepages-2048kB'
        with open(f'{d}/free_hugepages') as f:
            pages = int(f.read()) + 1024
        res = self.run_qemu('-accel', 'nitro', '-M', 'nitro,memory-backend=m',
                            '-m', f'{pages * 2}M', '-kernel', self.make_eif(),
                            '-object', 'memory-backend-memfd,id=m,'
                            f'hugetlb=on,hugetlbsize=2M,size={pages * 2}M')
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn('unable to map backing store', res.stderr)
        self.assertIn(f'It needs {pages} free huge pages of 2048 kB: reserve '
                      f'them as root, e.g. by adding {pages} to '
                      f'{d}/nr_hugepages.', res.stderr)
        self.assertEqual(self.ioctls('NE_SET_USER_MEMORY_REGION'), [])


if __name__ == '__main__':
    NitroTest.main()
