#!/usr/bin/env python3
#
# -accel nitro -M nitro refusing what cannot work, on the Nitro Enclaves
# simulator: bad input is caught before the driver sees anything, and
# every refusal of the driver that QEMU can run into is explained.  Each
# case must end with exit status 1 and a message, never a crash.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from qemu_test.nitro import DEADLINE, NitroTest, MiB

# Signed images, as the tests of the EIF library make them
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..', 'nitro', 'eif'))
import eifsig  # noqa: E402


class NitroErrors(NitroTest):

    # -nodefaults, and nothing to answer the heartbeat: these enclaves
    # are not meant to boot
    def nitro(self, *args, accel='nitro', mem='128M', smp='2', machine=''):
        return self.run_qemu('-accel', accel, '-M',
                             'nitro,external-heartbeat=on' + machine,
                             '-m', mem, '-smp', smp, *args)

    def assert_driver_untouched(self):
        self.assertEqual(self.ioctls('NE_SET_USER_MEMORY_REGION'), [])
        self.assertEqual(self.ioctls('NE_START_ENCLAVE'), [])

    # Bad input, caught by QEMU

    def test_no_kernel(self):
        self.assert_fails(self.nitro(), 'no enclave image')
        self.assert_driver_untouched()

    def test_missing_file(self):
        res = self.nitro('-kernel', self.scratch_file('nothing.eif'))
        self.assert_fails(res, 'nothing.eif')
        self.assertIn('No such file', res.stderr)
        self.assert_driver_untouched()

    def test_not_regular_files(self):
        # Refused with what they are, never read (a FIFO would hang)
        fifo = self.scratch_file('fifo')
        os.mkfifo(fifo)
        kernel, rds = self.eif_inputs()
        for args, what in ((('-kernel', fifo), 'is a FIFO'),
                           (('-kernel', self.workdir), 'is a directory'),
                           (('-kernel', '/dev/null'),
                            'is a character device'),
                           (('-kernel', kernel, '-initrd', fifo),
                            'is a FIFO'),
                           (('-kernel', kernel, '-initrd',
                             f'{rds[0]}:{self.workdir}'), 'is a directory')):
            res = self.nitro(*args)
            self.assert_fails(res, what)
            self.assert_driver_untouched()

    def test_corrupt_eif(self):
        image = self.make_eif()
        with open(image, 'r+b') as f:
            f.seek(os.path.getsize(image) - 100)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xff]))
        res = self.nitro('-kernel', image)
        self.assert_fails(res, 'CRC')
        self.assert_driver_untouched()

    def test_corrupt_big_eif(self):
        # Big enough to be read on several threads: a flipped byte in the
        # first and in the last part both break the combined CRC
        kernel = self.data('kernel', MiB, 'k')
        rd = self.data('big-rd', 160 * MiB, 'rd')
        image = self.build_eif(self.scratch_file('big.eif'), kernel, [rd],
                               'console=ttyS0')
        for offset in (2 * MiB, os.path.getsize(image) - 100):
            with open(image, 'r+b') as f:
                f.seek(offset)
                byte = f.read(1)
                f.seek(offset)
                f.write(bytes([byte[0] ^ 0xff]))
            res = self.nitro('-kernel', image, mem='256M',
                             machine=',allow-small-memory=on')
            self.assert_fails(res, 'CRC mismatch')
            self.assert_driver_untouched()
            with open(image, 'r+b') as f:
                f.seek(offset)
                f.write(byte)

    def test_eif_too_big(self):
        kernel = self.data('kernel', MiB, 'k')
        rd = self.data('big-rd', 124 * MiB, 'rd')
        image = self.build_eif(self.scratch_file('big.eif'), kernel, [rd],
                               'console=ttyS0')
        res = self.nitro('-kernel', image, machine=',allow-small-memory=on')
        self.assert_fails(res, 'does not fit in 125829120 bytes')
        self.assertIn('more memory with -m', res.stderr)
        self.assert_driver_untouched()

    def test_memory_below_4x_image(self):
        # nitro-cli's rule: the enclave kernel unpacks its initramfs into
        # enclave memory; the minimum -m is in the hint
        kernel = self.data('kernel', MiB, 'k')
        rd = self.data('rd', 40 * MiB, 'rd')
        image = self.build_eif(self.scratch_file('40m.eif'), kernel, [rd],
                               'console=ttyS0')
        minimum = -(-4 * os.path.getsize(image) // (2 * MiB)) * 2
        res = self.nitro('-kernel', image)
        self.assert_fails(res, '128 MiB of memory is less than 4 times the '
                          f'image size ({os.path.getsize(image)} bytes)')
        self.assertIn(f'Use -m {minimum}M or more', res.stderr)
        self.assertIn('allow-small-memory=on', res.stderr)
        self.assert_driver_untouched()
        # the same rule for an image built from a kernel and initrd
        res = self.nitro('-kernel', kernel, '-initrd', rd)
        self.assert_fails(res, 'is less than 4 times the image size')
        self.assert_driver_untouched()

    def test_wrong_arch_eif(self):
        other = 'x86_64' if self.target_arch == 'aarch64' else 'aarch64'
        res = self.nitro('-kernel', self.make_eif(arch=other))
        self.assert_fails(res, f'app-{other}.eif is for {other}, not '
                          f'{self.target_arch}')
        self.assert_driver_untouched()

    def test_parent_of_the_other_arch(self):
        # The simulated parent (uname) is of the other architecture
        other = 'x86_64' if self.target_arch == 'aarch64' else 'aarch64'
        self.sim_env['NITRO_SIM_ARCH'] = other
        res = self.nitro('-kernel', self.make_eif())
        self.assert_fails(res, f'qemu-system-{self.target_arch} cannot '
                          f'launch an enclave on this {other} parent')
        self.assertIn(f'use qemu-system-{other} with an image for {other}',
                      res.stderr)
        self.assertEqual(self.ioctls('NE_CREATE_VM'), [])

    def test_wrong_arch_kernel(self):
        # A direct boot of the other architecture's kernel is refused
        # before the hypervisor sees it: an x86 bzImage has "HdrS" at
        # 0x202, an arm64 Image "ARM\x64" at 0x38
        with open(self.data('kernel', 64 * 1024, 'k'), 'rb') as f:
            kernel = bytearray(f.read())
        if self.target_arch == 'x86_64':
            other, at, magic = 'aarch64', 0x38, b'ARM\x64'
        else:
            other, at, magic = 'x86_64', 0x202, b'HdrS'
        kernel[at:at + 4] = magic
        path = self.scratch_file('other-kernel')
        with open(path, 'wb') as f:
            f.write(kernel)
        rd = self.data('rd', 4096, 'rd')
        res = self.nitro('-kernel', path, '-initrd', rd)
        self.assert_fails(res, f'other-kernel is for {other}, not '
                          f'{self.target_arch}')
        self.assertIn(f'Run it with qemu-system-{other}', res.stderr)
        self.assert_driver_untouched()

    def test_wrong_arch_kernel_in_eif(self):
        # An EIF for this architecture that holds a kernel of the other
        with open(self.data('kernel', 64 * 1024, 'k'), 'rb') as f:
            kernel = bytearray(f.read())
        kernel[0x38:0x3c] = b'ARM\x64'
        other = 'aarch64'
        if self.target_arch == 'aarch64':
            kernel[0x38:0x3c] = b'kkkk'
            kernel[0x202:0x206] = b'HdrS'
            other = 'x86_64'
        path = self.scratch_file('other-kernel')
        with open(path, 'wb') as f:
            f.write(kernel)
        eif = self.scratch_file('mixed.eif')
        self.build_eif(eif, path, [self.data('rd', 4096, 'rd')],
                       'console=ttyS0', arch=other)
        with open(eif, 'r+b') as f:
            img = bytearray(f.read())
            struct.pack_into('>H', img, 6, 1 if other == 'x86_64' else 0)
            struct.pack_into('>I', img, 544,
                             zlib.crc32(img[:544] + img[548:]))
            f.seek(0)
            f.write(img)
        res = self.nitro('-kernel', eif)
        self.assert_fails(res, f'mixed.eif: section 0 (kernel) is a Linux '
                          f'kernel for {other} in an image for '
                          f'{self.target_arch}')
        self.assert_driver_untouched()

    # Signed images whose signature does not verify, refused as
    # nitro-cli run-enclave refuses them (E59)

    def test_signature_that_does_not_verify(self):
        signed = self.scratch_file('signed.eif')
        eifsig.sign(self.make_eif(), signed)
        with open(signed, 'rb') as f:
            img = bytearray(f.read())
        # The last byte of the section is the last of s (r || s)
        img[-1] ^= 1
        img[544:548] = zlib.crc32(img[:544] + img[548:]).to_bytes(4, 'big')
        with open(signed, 'wb') as f:
            f.write(img)
        res = self.nitro('-kernel', signed)
        self.assert_fails(res, 'signed.eif: the image is signed, but the '
                          'COSE_Sign1 does not verify with the signing '
                          "certificate's key")
        self.assertIn('nitro-cli run-enclave refuses it too (E59)',
                      res.stderr)
        self.assert_driver_untouched()

    def test_signing_certificate_expired(self):
        signed = self.scratch_file('signed.eif')
        eifsig.sign(self.make_eif(), signed,
                    signer=eifsig.make_signer(days=1, offset=-3))
        res = self.nitro('-kernel', signed)
        self.assert_fails(res, 'the image is signed, but the signing '
                          'certificate expired on')
        self.assert_driver_untouched()

    def test_bad_parent_instance_id(self):
        res = self.nitro('-kernel', self.make_eif(),
                         machine=',parent-id=i-12345')
        self.assert_fails(res, "'i-12345' is not an EC2 instance ID")
        self.assert_driver_untouched()

    def test_image_too_big(self):
        kernel = self.data('big-kernel', 124 * MiB, 'big')
        rd = self.data('rd', 4096, 'rd')
        res = self.nitro('-kernel', kernel, '-initrd', rd,
                         machine=',allow-small-memory=on')
        self.assert_fails(res, 'does not fit')
        self.assert_driver_untouched()

    def test_kernel_without_initrd(self):
        res = self.nitro('-kernel', self.data('vmlinuz', MiB, 'k'))
        self.assert_fails(res, 'needs -initrd')
        self.assert_driver_untouched()

    def test_eif_with_append(self):
        res = self.nitro('-kernel', self.make_eif(), '-append', 'quiet')
        self.assert_fails(res, 'cannot be used with an EIF')
        self.assert_driver_untouched()

    def test_ram_too_small(self):
        res = self.nitro('-kernel', self.make_eif(), mem='32M')
        self.assert_fails(res, 'at least 64 MiB')
        self.assert_driver_untouched()

    def test_ram_not_page_multiple(self):
        res = self.nitro('-kernel', self.make_eif(), mem='129M')
        self.assert_fails(res, 'not a multiple of the 2 MiB huge page size')
        self.assert_driver_untouched()

    def test_hugepages_not_reserved(self):
        # More 2 MiB pages than are free on the pool's node: the message
        # says how many are missing and how to reserve them, before the
        # driver sees anything.  On a made-up host, whose counts no other
        # process changes meanwhile
        free, total = 40, 100
        root = self.fake_sysfs({2 * MiB: (total, free)})
        d = f'{root}/devices/system/node/node0/hugepages/hugepages-2048kB'
        need = free + 16
        res = self.run_qemu('-accel', 'nitro', '-M',
                            'nitro,hugepage-size=2M,allow-small-memory=on',
                            '-m', f'{need * 2}M', '-kernel', self.make_eif())
        self.assert_fails(res, f'needs {need} free 2 MiB huge pages, but '
                          f'only {free} are free')
        self.assertIn("are free on NUMA node 0, the CPU pool's", res.stderr)
        self.assertIn(f'echo {total + 16} > {d}/nr_hugepages', res.stderr)
        self.assert_driver_untouched()

    def test_non_hugetlb_backend(self):
        res = self.run_qemu('-accel', 'nitro', '-M',
                            'nitro,memory-backend=mem', '-m', '128M',
                            '-object', 'memory-backend-ram,id=mem,size=128M',
                            '-kernel', self.make_eif())
        self.assert_fails(res, 'must be backed by huge pages')
        self.assert_driver_untouched()

    def test_machine_takes_its_accel(self):
        # A generic -accel (libvirt's tcg) gives way to nitro, with a warning
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        res = self.nitro('-kernel', self.make_eif(), '-device',
                         'nitro-heartbeat', accel='tcg')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("machine 'nitro' needs -accel nitro: using it instead "
                      "of tcg", res.stderr)
        self.assertEqual(len(self.events('start')), 1)

    def test_machine_default_accel(self):
        # Without -accel, the machine's accelerator is the default
        self.sim_env['NITRO_SIM_LIFETIME_MS'] = '300'
        res = self.run_qemu('-M', 'nitro', '-m', '128M', '-kernel',
                            self.make_eif(), '-device', 'nitro-heartbeat')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNotIn('needs -accel nitro', res.stderr)
        self.assertEqual(len(self.events('start')), 1)

    def test_accel_with_other_machine(self):
        res = self.run_qemu('-accel', 'nitro', '-M', 'none')
        self.assert_fails(res, 'only runs the nitro machine')
        self.assertEqual(self.events('open'), [])

    def test_emulated_cpu_model(self):
        res = self.nitro('-kernel', self.make_eif(), '-cpu', 'max')
        self.assert_fails(res, "host cores, not 'max'")
        self.assert_driver_untouched()

    def test_invalid_cid(self):
        # 0 is "any"; 1..3 and U32_MAX and above are not enclave CIDs
        for cid in (1, 3, 4294967295, 4294967296):
            res = self.nitro('-kernel', self.make_eif(),
                             accel=f'nitro,requested-cid={cid}')
            self.assert_fails(res, f"requested-cid={cid} is not a valid "
                              'enclave CID')
            self.assertIn('a CID from 4 to 4294967294', res.stderr)
            self.assertEqual(self.events('open'), [])

    def test_sim_dir_not_writable(self):
        # QEMU runs as a user that cannot write the simulation directory:
        # the simulator names it, instead of an EIO from an ioctl later
        if not shutil.which('setpriv'):
            self.skipTest('needs setpriv (util-linux)')
        tmp = tempfile.mkdtemp(prefix='nsim-ro-')
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        os.chmod(tmp, 0o755)
        image = shutil.copy(self.make_eif(), tmp)
        os.chmod(image, 0o644)
        # The binaries are opened here, as root, and run through their
        # descriptors: that user may not reach the build (under /root),
        # nor the build's etc/qemu/qemu.conf
        qemu = os.open(self.qemu_bin, os.O_RDONLY)
        self.addCleanup(os.close, qemu)
        lib = os.open(self.sim_lib, os.O_RDONLY)
        self.addCleanup(os.close, lib)
        cmd = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
               'env', f'LD_PRELOAD=/proc/self/fd/{lib}',
               f'NITRO_SIM_DIR={tmp}', f'NITRO_SIM_ARCH={self.target_arch}',
               f'/proc/self/fd/{qemu}',
               '-no-user-config', '-display', 'none', '-accel', 'nitro',
               '-M', 'nitro', '-m', '128M', '-kernel', image]
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, pass_fds=(qemu, lib),
                             capture_output=True, text=True, timeout=DEADLINE)
        self.assert_fails(res, f'cannot write the simulation directory '
                          f'{tmp} (NITRO_SIM_DIR): Permission denied')

    # Refusals of the driver, injected through the simulator

    def test_empty_cpu_pool(self):
        # The hint names a pool of this (simulated EC2) host's siblings
        self.sim_env['NITRO_SIM_CPUS'] = ''
        res = self.nitro('-kernel', self.make_eif())
        self.assert_fails(res, 'NE_ERR_NO_CPUS_AVAIL_IN_POOL')
        self.assertIn("'echo 1,5 > /sys/module/nitro_enclaves/parameters/"
                      "ne_cpus'", res.stderr)

    def test_pool_hint_fits_the_vcpus(self):
        # The pool a too small pool's hint suggests holds the -smp vCPUs,
        # and the driver takes it; or the host cannot give that many
        self.sim_env['NITRO_SIM_CPUS'] = '1,5'
        res = self.nitro('-kernel', self.make_eif(), '-smp', '4')
        self.assert_fails(res, "'echo 1-2,5-6 > ")
        self.sim_env['NITRO_SIM_CPUS'] = '1-2,5-6'
        self.sim_env['NITRO_SIM_MIN_MEM_MIB'] = '256'
        res = self.nitro('-kernel', self.make_eif(), '-smp', '4')
        self.assert_fails(res, 'NE_ERR_ENCLAVE_MEM_MIN_SIZE')
        res = self.nitro('-kernel', self.make_eif(), '-smp', '8')
        self.assert_fails(res, 'This host has 6 CPUs outside core 0: use '
                          '-smp 6 or less.')

    def test_pool_hint_is_valid(self):
        # The pool the hint suggests is one the driver accepts
        for topology, pool in (('ec2', '1,5'), ('consecutive', '2-3')):
            self.sim_env['NITRO_SIM_TOPOLOGY'] = topology
            self.sim_env['NITRO_SIM_CPUS'] = ''
            res = self.nitro('-kernel', self.make_eif())
            self.assert_fails(res, f"'echo {pool} > ")
            # vCPUs pass; the start then fails on purpose (268)
            self.sim_env['NITRO_SIM_CPUS'] = pool
            self.sim_env['NITRO_SIM_MIN_MEM_MIB'] = '256'
            res = self.nitro('-kernel', self.make_eif())
            self.assert_fails(res, 'NE_ERR_ENCLAVE_MEM_MIN_SIZE')
            del self.sim_env['NITRO_SIM_MIN_MEM_MIB']
        adds = self.ioctls('NE_ADD_VCPU')
        self.assertEqual([e.get('result') for e in adds], [0] * 4, adds)

    def test_pool_exhausted(self):
        self.sim_env['NITRO_SIM_CPUS'] = '1,5'
        res = self.nitro('-kernel', self.make_eif(), smp='4')
        self.assert_fails(res, 'adding vCPU 3 of the 4 asked with -smp '
                          'failed')
        self.assertIn('NE_ERR_NO_CPUS_AVAIL_IN_POOL', res.stderr)
        self.assertIn('The pool had 2 CPUs free for this enclave; -smp 4 '
                      'asks for 4.', res.stderr)

    # errno -> message and hint, each refusal caused through the simulator:
    # (the simulator's settings, -smp, message, hint)
    DRIVER_REFUSALS = [
        ({}, '3',
         'the vCPUs do not make up full CPU cores (NE_ERR_FULL_CORES_NOT_USED)',
         'Use an -smp count that is a multiple of the threads per core '
         '(usually 2).'),
        ({'NITRO_SIM_MIN_MEM_MIB': '256'}, '2',
         'the enclave has less than 64 MiB of memory '
         '(NE_ERR_ENCLAVE_MEM_MIN_SIZE)',
         'Use -m 64M or more.'),
        ({'NITRO_SIM_NUMA_NODE': '1'}, '2',
         'guest RAM is not on the NUMA node of the CPU pool '
         '(NE_ERR_MEM_DIFFERENT_NUMA_NODE)',
         'or bind QEMU to it with numactl --membind=N.'),
        ({'NITRO_SIM_FAKE_PAGE_SIZE': str(64 * 1024)}, '2',
         'guest RAM pages are not a multiple of 2 MiB '
         '(NE_ERR_INVALID_PAGE_SIZE)',
         "e.g. 'echo N > /proc/sys/vm/nr_hugepages' (2 MiB pages)"),
    ]

    def test_driver_refusals(self):
        for env, smp, message, hint in self.DRIVER_REFUSALS:
            with self.subTest(message=message):
                saved = dict(self.sim_env)
                self.sim_env.update(env)
                res = self.nitro('-kernel', self.make_eif(), smp=smp)
                self.sim_env = saved
                self.assert_fails(res, message)
                self.assertIn(hint, res.stderr)

    def test_max_regions(self):
        self.sim_env['NITRO_SIM_CONTIG'] = 'page'
        self.sim_env['NITRO_SIM_MAX_REGIONS'] = '16'
        res = self.nitro('-kernel', self.make_eif())
        self.assert_fails(res, 'NE_ERR_MEM_MAX_REGIONS')
        self.assertIn('refused the region after 0 calls that donated pages '
                      'of 2048 KiB', res.stderr)
        if os.path.isdir('/sys/kernel/mm/hugepages/hugepages-1048576kB'):
            self.assertIn('hugepage-size=1G', res.stderr)

    def test_cid_in_use(self):
        # The first enclave runs until stopped
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'none'
        image = self.make_eif()
        self.vm.add_args('-accel', 'nitro,requested-cid=77', '-M',
                         'nitro,external-heartbeat=on', '-m', '128M',
                         '-nodefaults', '-kernel', image)
        self.vm.launch()
        res = self.nitro('-kernel', image, accel='nitro,requested-cid=77')
        self.assert_fails(res, 'starting the enclave failed: CID 77 is '
                          'already used by another enclave or VM')
        self.assertIn('choose another requested-cid', res.stderr)


if __name__ == '__main__':
    NitroTest.main()
