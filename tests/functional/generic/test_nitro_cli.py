#!/usr/bin/env python3
#
# qemu-nitro (contrib/qemu-nitro) as a stand-in for nitro-cli, on the
# Nitro Enclaves simulator: a nitro-cli session of a script - two
# enclaves run, describe-enclaves through `python -m json.tool`, a
# console attached late that shows the boot log from its start, one
# enclave terminated by ID and the rest with --all - checking every key
# and value format of nitro-cli's JSON, its error codes and exit
# statuses, an enclave QEMU started by hand, and a killed one cleaned up.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import hashlib
import json
import os
import re
import ssl
import signal
import subprocess
import sys

from qemu.qmp.legacy import QEMUMonitorProtocol
from qemu_test.nitro import DEADLINE, NitroTest

QEMU_NITRO = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          '..', '..', '..', 'contrib', 'qemu-nitro',
                          'qemu-nitro')
RUN_KEYS = ['EnclaveName', 'EnclaveID', 'ProcessID', 'EnclaveCID',
            'NumberOfCPUs', 'CPUIDs', 'MemoryMiB']
DESCRIBE_KEYS = RUN_KEYS + ['State', 'Flags']
TEST_CERT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         '..', '..', 'nitro', 'eif', 'test-cert.pem')
ENCLAVE_ID = re.compile(r'^i-[0-9a-f]{17}-enc[0-9a-f]+$')


class NitroCli(NitroTest):

    def env(self):
        return dict(os.environ, LD_PRELOAD=self.sim_lib,
                    QEMU_NITRO_QEMU=self.qemu_bin, QEMU_EIF=self.qemu_eif,
                    **self.sim_env)

    def cli(self, *args, check=0):
        res = subprocess.run([sys.executable, QEMU_NITRO] + list(args),
                             env=self.env(), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True,
                             timeout=DEADLINE)
        self.log.info('qemu-nitro %s: %d\n%s%s', ' '.join(args),
                      res.returncode, res.stdout, res.stderr)
        if check is not None:
            self.assertEqual(res.returncode, check, res.stderr)
        return res

    def cli_json(self, *args):
        return json.loads(self.cli(*args).stdout)

    def assert_error(self, code, *args):
        res = self.cli(*args, check=code)
        self.assertIn(f'[ E{code:02d} ]', res.stderr)
        self.assertEqual(res.stdout, '')
        return res.stderr

    def assert_usage_error(self, code, *args):
        """What nitro-cli's argument parser refuses: exit status 2"""
        res = self.cli(*args, check=2)
        self.assertIn(f'[ E{code:02d} ]', res.stderr)
        self.assertEqual(res.stdout, '')

    def assert_launch_error(self, code, *args):
        """run-enclave's failure to launch: as nitro-cli, whose enclave
        process reports @code, then E39 and status 39"""
        res = self.cli(*args, check=39)
        self.assertIn(f'[ E{code:02d} ]', res.stderr)
        self.assertIn('[ E39 ]', res.stderr)
        self.assertLess(res.stderr.index(f'[ E{code:02d} ]'),
                        res.stderr.index('[ E39 ]'))
        self.assertEqual(res.stdout, '')
        return res.stderr

    def assert_run_info(self, info, keys=None):
        """nitro-cli's keys, in its order, with its value formats"""
        self.assertEqual(list(info), keys or RUN_KEYS)
        self.assertIsInstance(info['EnclaveName'], str)
        self.assertRegex(info['EnclaveID'], ENCLAVE_ID)
        self.assertIsInstance(info['ProcessID'], int)
        os.kill(info['ProcessID'], 0)
        self.assertIsInstance(info['EnclaveCID'], int)
        self.assertGreaterEqual(info['EnclaveCID'], 4)
        self.assertIsInstance(info['CPUIDs'], list)
        self.assertTrue(all(isinstance(c, int) for c in info['CPUIDs']))
        self.assertEqual(info['NumberOfCPUs'], len(info['CPUIDs']))
        self.assertIsInstance(info['MemoryMiB'], int)

    def gone(self, pid):
        """the process has ended (a daemon's zombie may wait for its
        reaper)"""
        try:
            with open(f'/proc/{pid}/stat') as f:
                return f.read().rsplit(')', 1)[1].split()[0] in 'ZX'
        except FileNotFoundError:
            return True

    def registry(self):
        run = self.sim_env['QEMU_NITRO_RUNTIME_DIR']
        return os.listdir(run) if os.path.isdir(run) else []

    def test_session(self):
        eif = self.make_eif()
        first = self.cli_json('run-enclave', '--eif-path', eif,
                              '--memory', '128M', '--cpu-count', '2',
                              '--debug-mode', '--enclave-name', 'first')
        self.assert_run_info(first)
        self.assertEqual(first['EnclaveName'], 'first')
        self.assertEqual(first['MemoryMiB'], 128)
        self.assertEqual(first['NumberOfCPUs'], 2)
        config = self.scratch_file('enclave.json')
        with open(config, 'w') as f:
            json.dump({'eif_path': eif, 'memory_mib': 128, 'cpu_count': 2,
                       'enclave_cid': 42, 'debug_mode': True}, f)
        second = self.cli_json('run-enclave', '--config', config)
        self.assert_run_info(second)
        self.assertEqual(second['EnclaveCID'], 42)
        # nitro-cli's default name: the image's, without .eif
        self.assertEqual(second['EnclaveName'],
                         os.path.basename(eif)[:-len('.eif')])
        self.assertNotEqual(first['EnclaveID'], second['EnclaveID'])
        self.assertFalse(set(first['CPUIDs']) & set(second['CPUIDs']))

        # describe-enclaves | python -m json.tool
        out = self.cli('describe-enclaves').stdout
        tool = subprocess.run([sys.executable, '-m', 'json.tool'],
                              input=out, capture_output=True, text=True,
                              check=True)
        described = json.loads(tool.stdout)
        self.assertEqual(len(described), 2)
        by_id = {d['EnclaveID']: d for d in described}
        for run in (first, second):
            d = by_id[run['EnclaveID']]
            self.assert_run_info(d, DESCRIBE_KEYS)
            self.assertEqual({k: d[k] for k in RUN_KEYS}, run)
            self.assertEqual(d['State'], 'RUNNING')
            self.assertEqual(d['Flags'], 'DEBUG_MODE')

        # A console attached once the enclave has booted shows its boot
        # log from the start
        self.wait_for(lambda: len(self.heartbeats('ok')) == 2)
        con = subprocess.Popen([sys.executable, QEMU_NITRO, 'console',
                                '--enclave-id', first['EnclaveID']],
                               env=self.env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, text=True)
        lines = []
        while not lines or 'heartbeat ok' not in lines[-1]:
            line = con.stdout.readline()
            self.assertNotEqual(line, '', lines)
            lines.append(line)
        con.kill()
        con.wait()
        con.stdout.close()
        self.assertEqual(lines[1], 'Successfully connected to the console.\n')
        self.assertTrue(lines[2].startswith('nitro-sim: simulated'), lines)
        self.assertIn(f'nitro-sim: cid {first["EnclaveCID"]}\n', lines)

        # Terminated by ID, then the rest with --all
        res = self.cli('terminate-enclave', '--enclave-id',
                       first['EnclaveID'])
        self.assertEqual(json.loads(res.stdout),
                         {'EnclaveName': 'first',
                          'EnclaveID': first['EnclaveID'],
                          'Terminated': True})
        self.assertIn(f'Successfully terminated enclave {first["EnclaveID"]}',
                      res.stderr)
        self.assertTrue(self.gone(first['ProcessID']))
        self.assertEqual([d['EnclaveID'] for d in
                          self.cli_json('describe-enclaves')],
                         [second['EnclaveID']])
        res = self.cli('terminate-enclave', '--all')
        self.assertEqual(json.loads(res.stdout)['EnclaveID'],
                         second['EnclaveID'])
        self.assertTrue(self.gone(second['ProcessID']))
        self.assertEqual(self.cli_json('describe-enclaves'), [])
        self.assertEqual(self.registry(), [])

    def test_any_enclave_qemu(self):
        # Started by hand (or by libvirt): listed, and terminated
        self.vm.add_args('-accel', 'nitro', '-M', 'nitro', '-m', '128M',
                         '-name', 'by-hand', '-kernel', self.make_eif())
        self.vm.launch()
        self.wait_for(lambda: self.heartbeats('ok'))
        [d] = self.cli_json('describe-enclaves')
        self.assert_run_info(d, DESCRIBE_KEYS)
        self.assertEqual(d['EnclaveName'], 'by-hand')
        self.assertEqual(d['ProcessID'], self.vm.get_pid())
        self.assertEqual(d['Flags'], 'NONE')
        self.assertIn('not in debug mode',
                      self.assert_error(44, 'console', '--enclave-name',
                                        'by-hand'))
        # A second enclave of that name is named as nitro-cli does
        second = self.cli_json('run-enclave', '--eif-path', self.make_eif(),
                               '--memory', '128', '--cpu-count', '2',
                               '--enclave-name', 'by-hand')
        self.assertEqual(second['EnclaveName'], 'by-hand_1')
        self.cli('terminate-enclave', '--enclave-name', 'by-hand_1')
        self.cli('terminate-enclave', '--enclave-name', 'by-hand')
        self.vm.wait(timeout=DEADLINE)
        self.assertEqual(self.cli_json('describe-enclaves'), [])

    def test_killed_enclave_qemu_is_cleaned_up(self):
        info = self.cli_json('run-enclave', '--eif-path', self.make_eif(),
                             '--memory', '128', '--cpu-count', '2')
        os.kill(info['ProcessID'], signal.SIGKILL)
        self.wait_for(lambda: self.gone(info['ProcessID']))
        self.assertEqual(self.registry(), [info['EnclaveID']])
        self.assertEqual(self.cli_json('describe-enclaves'), [])
        self.assertEqual(self.registry(), [])

    def test_errors(self):
        eif = self.make_eif()
        self.assert_usage_error(1, 'run-enclave', '--eif-path', eif,
                                '--cpu-count', '2')
        self.assert_usage_error(1, 'run-enclave', '--eif-path', eif,
                                '--memory', '128')
        self.assert_usage_error(2, 'run-enclave', '--eif-path', eif,
                                '--memory', '128', '--cpu-count', '2',
                                '--cpu-ids', '1', '3')
        self.assert_usage_error(3, 'run-enclave', '--eif-path', eif,
                                '--memory', '128', '--cpus', '2')
        self.assert_usage_error(1, 'terminate-enclave')
        self.assert_usage_error(2, 'console', '--enclave-id', 'x',
                                '--enclave-name', 'x')
        self.assert_error(3, 'run-enclave', '--eif-path', eif,
                          '--memory', 'lots', '--cpu-count', '2')
        self.assert_error(3, 'run-enclave', '--eif-path', eif,
                          '--memory', '128K', '--cpu-count', '2')
        config = self.scratch_file('bad.json')
        with open(config, 'w') as f:
            f.write('{"eif_path": ')
        self.assert_error(17, 'run-enclave', '--config', config)
        with open(config, 'w') as f:
            json.dump({'eif_path': eif, 'memory_mib': 128, 'cpu_count': 2,
                       'cpu_ids': [1, 5]}, f)
        self.assert_error(2, 'run-enclave', '--config', config)
        # nitro-cli's own checks of the file
        with open(config, 'w') as f:
            json.dump({'eif_path': eif, 'memory_mib': 128}, f)
        self.assert_error(1, 'run-enclave', '--config', config)
        with open(config, 'w') as f:
            json.dump({'eif_path': eif, 'cpu_count': 2}, f)
        self.assertIn('memory_mib', self.assert_error(
            17, 'run-enclave', '--config', config))
        need = -(-4 * os.stat(eif).st_size // (1024 * 1024))
        self.assertIn(f'--memory {need}', self.assert_launch_error(
            26, 'run-enclave', '--eif-path', eif, '--memory', '4',
            '--cpu-count', '2'))
        # nitro-cli: an ID that no enclave has is a socket error, a name
        # a naming error
        self.assert_error(11, 'terminate-enclave', '--enclave-id',
                          'i-0000000000000000-enc99')
        self.assert_error(11, 'console', '--enclave-id',
                          'i-0000000000000000-enc99')
        self.assert_error(58, 'console', '--enclave-name', 'none')
        self.assert_error(58, 'terminate-enclave', '--enclave-name', 'none')
        self.assert_usage_error(2, 'terminate-enclave', '--all',
                                '--enclave-name', 'x')
        # QEMU's own refusal, with nitro-cli's code: no huge pages
        self.fake_sysfs({2 * 1024 * 1024: (0, 0)})
        err = self.assert_launch_error(27, 'run-enclave', '--eif-path', eif,
                                       '--memory', '128', '--cpu-count', '2')
        self.assertIn('huge pages', err)
        self.assertEqual(self.registry(), [])

    def allocator_host(self):
        """A parent of 8 CPUs, 2 threads per core (N and N + 4), on two
        NUMA nodes (cores 0-1, cores 2-3), with 2 MiB and 1 GiB pages: its
        sysfs for qemu-nitro (and QEMU) under $NITRO_SYSFS_ROOT"""
        files = {'module/nitro_enclaves/parameters/ne_cpus': '1,5',
                 'devices/system/node/online': '0-1',
                 'devices/system/node/node0/cpulist': '0-1,4-5',
                 'devices/system/node/node1/cpulist': '2-3,6-7'}
        for cpu in range(8):
            files[f'devices/system/cpu/cpu{cpu}/topology/'
                  'thread_siblings_list'] = f'{cpu % 4},{cpu % 4 + 4}'
        for node in (0, 1):
            for kb in (2048, 1048576):
                files[self.pages(node, kb)] = '7'
        return self.write_sysfs(files)

    @staticmethod
    def pages(node, kb):
        return (f'devices/system/node/node{node}/hugepages/'
                f'hugepages-{kb}kB/nr_hugepages')

    def allocate(self, yaml, check=0):
        config = self.scratch_file('allocator.yaml')
        with open(config, 'w') as f:
            f.write(yaml)
        return self.cli('allocator', '--config', config, check=check)

    def test_allocator(self):
        root = self.allocator_host()

        def read(path):
            with open(os.path.join(root, path)) as f:
                return f.read().strip()

        # cpu_count: whole cores of the first node that has them besides
        # CPU 0's core; memory there, the largest pages first
        res = self.allocate('---\n# Enclave configuration file.\n'
                            'memory_mib: 1100\ncpu_count: 4\n')
        self.assertIn('Successfully allocated Nitro Enclaves resources: '
                      '1100 MiB', res.stdout)
        self.assertEqual(read('module/nitro_enclaves/parameters/ne_cpus'),
                         '2,3,6,7')
        self.assertEqual(read(self.pages(1, 1048576)), '1')
        self.assertEqual(read(self.pages(1, 2048)), '38')
        self.assertEqual(read(self.pages(0, 2048)), '7')
        # cpu_pool as given; the memory rounded up to whole 2 MiB pages
        self.allocate('memory_mib: 63\ncpu_pool: "1,5"\n')
        self.assertEqual(read('module/nitro_enclaves/parameters/ne_cpus'),
                         '1,5')
        self.assertEqual(read(self.pages(0, 1048576)), '0')
        self.assertEqual(read(self.pages(0, 2048)), '32')
        # nitro-cli's rules, each refusal saying which
        for yaml, message in [
                ('memory_mib: 64\ncpu_count: 2\ncpu_pool: 1,5\n',
                 'exactly one of cpu_count and cpu_pool'),
                ('cpu_count: 2\n', 'missing memory reservation'),
                ('memory_mib: 64\ncpu_count: 3\n',
                 'not a multiple of 2 (threads per core)'),
                ('memory_mib: 64\ncpu_count: 8\n', 'no NUMA node has 8'),
                ('memory_mib: 64\ncpus: 2\n', "unexpected 'cpus'"),
                ('memory_mib: 64\ncpu_pool: 1,2,5,6\n',
                 'not all on one NUMA node')]:
            res = self.allocate(yaml, check=1)
            self.assertIn(message, res.stderr)
        self.assertIn('cannot read', self.cli(
            'allocator', '--config', os.path.join(root, 'none.yaml'),
            check=1).stderr)

    def test_cpu_ids(self):
        # The simulator's parent: 8 CPUs, siblings N and N + 4, pool 1-3,5-7
        eif = self.make_eif()
        info = self.cli_json('run-enclave', '--eif-path', eif, '--memory',
                             '128', '--cpu-ids', '6', '2')
        self.assert_run_info(info)
        self.assertEqual(sorted(info['CPUIDs']), [2, 6])
        config = self.scratch_file('enclave.json')
        with open(config, 'w') as f:
            json.dump({'eif_path': eif, 'memory_mib': 128,
                       'cpu_ids': [3, 7]}, f)
        info = self.cli_json('run-enclave', '--config', config)
        self.assertEqual(sorted(info['CPUIDs']), [3, 7])
        self.assertEqual(
            sorted(sorted(d['CPUIDs'])
                   for d in self.cli_json('describe-enclaves')),
            [[2, 6], [3, 7]])
        # nitro-cli's errors: a CPU named twice, a CPU outside the pool
        # (CPU 0's sibling, CPU 0, another enclave's)
        self.assertIn('CPU(s) [1]', self.assert_launch_error(
            20, 'run-enclave', '--eif-path', eif, '--memory', '128',
            '--cpu-ids', '1', '1'))
        for ids in (['4', '5'], ['1', '0'], ['2', '6']):
            self.assert_launch_error(21, 'run-enclave', '--eif-path', eif,
                                     '--memory', '128', '--cpu-ids', *ids)
        self.assertEqual(len(self.cli_json('describe-enclaves')), 2)
        self.cli('terminate-enclave', '--all')

    def test_accel_cpu_ids(self):
        # What qemu-nitro's --cpu-ids becomes: -accel nitro,cpu-ids=
        eif = self.make_eif()
        for ids, smp, message in [
                ('2,,2', '2', 'cpu-ids names CPU 2 more than once'),
                ('2,,6', '4', 'cpu-ids names 2 CPUs, but -smp asks for 4'),
                ('4-5', '2', 'NE_ERR_VCPU_NOT_IN_CPU_POOL')]:
            res = self.run_qemu('-accel', f'nitro,cpu-ids={ids}', '-M',
                                'nitro', '-m', '128M', '-smp', smp,
                                '-device', 'nitro-heartbeat', '-kernel', eif)
            self.assert_fails(res, message)
        self.vm.add_args('-accel', 'nitro,cpu-ids=3,,7', '-M', 'nitro',
                         '-m', '128M', '-smp', '2', '-kernel', eif)
        self.vm.launch()
        self.wait_for(lambda: self.heartbeats('ok'))
        [d] = self.cli_json('describe-enclaves')
        self.assertEqual(sorted(d['CPUIDs']), [3, 7])

    def test_waits_for_heartbeat(self):
        # As nitro-cli's, run-enclave returns once the enclave has booted
        self.sim_env['NITRO_SIM_BOOT_DELAY_MS'] = '1500'
        info = self.cli_json('run-enclave', '--eif-path', self.make_eif(),
                             '--memory', '128', '--cpu-count', '2')
        run = self.sim_env['QEMU_NITRO_RUNTIME_DIR']
        qmp = QEMUMonitorProtocol(os.path.join(run, info['EnclaveID'],
                                               'qmp.sock'))
        qmp.connect()
        self.assertEqual(qmp.cmd('qom-get', path='/machine/peripheral/'
                                 'nitro-heartbeat', property='answered'),
                         True)
        qmp.close()
        self.cli('terminate-enclave', '--all')

    def test_boot_failure(self):
        # An enclave that stops before its heartbeat: nitro-cli's E36
        self.sim_env['NITRO_SIM_HEARTBEAT'] = 'bad'
        err = self.assert_launch_error(36, 'run-enclave', '--eif-path',
                                       self.make_eif(), '--memory', '128',
                                       '--cpu-count', '2')
        self.assertIn('before its heartbeat', err)
        self.assertEqual(self.cli_json('describe-enclaves'), [])

    def test_pcr(self):
        data = self.data('input', 100000, 'pcr')
        with open(data, 'rb') as f:
            digest = hashlib.sha384(f.read()).digest()
        pcr = hashlib.sha384(bytes(48) + digest).hexdigest()
        res = self.cli('pcr', '--input', data)
        self.assertEqual(res.stdout, f'{{\n  "PCR": "{pcr}"\n}}\n')
        with open(TEST_CERT) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        pcr8 = hashlib.sha384(bytes(48) +
                              hashlib.sha384(der).digest()).hexdigest()
        self.assertEqual(self.cli_json('pcr', '--signing-certificate',
                                       TEST_CERT), {'PCR8': pcr8})
        self.assert_error(19, 'pcr', '--input', data + '.none')
        self.assert_error(57, 'pcr', '--signing-certificate', data)
        self.assert_usage_error(1, 'pcr')
        self.assert_usage_error(2, 'pcr', '--input', data,
                                '--signing-certificate', TEST_CERT)

    def test_describe_eif(self):
        eif = self.make_eif()
        self.assertEqual(self.cli_json('describe-eif', '--eif-path', eif),
                         self.describe(eif))
        self.assert_error(35, 'describe-eif', '--eif-path', QEMU_NITRO)


if __name__ == '__main__':
    NitroTest.main()
