#!/usr/bin/env python3
#
# A real enclave on the simulator (NITRO_SIM_BOOT=qemu): -accel nitro
# -M nitro launches the sample image (a Debian kernel and our init,
# tests/nitro/enclave/), which the simulator boots in -M nitro-enclave
# (an arm64 image, for qemu-system-aarch64: in -M virt) with
# contrib/vhost-user-vsock.  The real init's heartbeat is answered,
# the console carries the kernel's boot log, parent and enclave connect
# to each other (and are reset where nobody listens), the enclave reaches
# another CID than the parent's, and the enclave's power-off, panic or
# termination ends everything.  As on Nitro, a reboot terminates the
# enclave (it never boots twice) and a stop before the heartbeat is a
# boot failure, with the whole console; each of these runs 20 times.
# The sample enclave attests: a production-mode enclave answers a
# request with a fresh nonce on its attestation port with a document from
# its NSM that qemu-eif verify-attestation and the independent verifier
# of tests/nitro/attest/pyverify.py accept against the simulation's root,
# PCR0-2 equal to qom-get, and reject with another nonce.
# Skipped with the reason when the kernel package cannot be had.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from qemu_test.nitro import DEADLINE, NitroTest

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'nitro', 'attest'))
from pyverify import py_verify  # noqa: E402
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'nitro', 'eif'))
import eifsig  # noqa: E402

# Runs with the simulator preloaded: AF_VSOCK is the simulation's
PARENT = r'''
import socket, sys, threading
cid = int(sys.argv[1])

def conn(port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect((cid, port))
    return s

def command(line):
    s = conn(5001)
    s.sendall(line.encode() + b'\n')
    return s.makefile().readline().strip()

for arg in sys.argv[2:]:
    if arg == 'echo':
        s = conn(5000)
        s.sendall(b'ping from the parent')
        print('echo', s.recv(100).decode(), flush=True)
    elif arg == 'refused':
        try:
            conn(4999)
            print('refused no', flush=True)
        except OSError as e:
            print('refused', e.errno, flush=True)
    elif arg == 'serve':
        srv = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        srv.bind((socket.VMADDR_CID_ANY, 5002))
        srv.listen(16)
        def echo_loop():
            while True:
                c, peer = srv.accept()
                print('peer', peer[0], flush=True)
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    c.sendall(b)
                c.close()
        threading.Thread(target=echo_loop, daemon=True).start()
        print('send', command('send 5002 2 65536'), flush=True)
    else:
        print(arg, command(arg), flush=True)
'''

# Runs with the simulator preloaded as the vsock device of another VM
# (NITRO_SIM_VSOCK_CID): listens at (CID, PORT), prints "ready", then
# the CID of the one peer it echoes
OTHER_VM = r'''
import socket, sys
cid, port = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
srv.bind((cid, port))
srv.listen(1)
print('ready', flush=True)
c, peer = srv.accept()
print('peer', peer[0], flush=True)
while True:
    b = c.recv(65536)
    if not b:
        break
    c.sendall(b)
c.close()
'''

# The parent's side of the enclave's attestation service
ATTEST_REQUEST = os.path.join(SOURCE, 'tests', 'nitro', 'enclave',
                              'attest-request.py')

# A CID that is neither the parent's (3) nor the enclave's
OTHER_CID = 77

# Runs of each stop test (NITRO_BOOT_RUNS to change it)
RUNS = int(os.environ.get('NITRO_BOOT_RUNS', '20'))


class NitroBoot(NitroTest):

    timeout = 600

    def setUp(self):
        super().setUp()
        self.sim_env['NITRO_SIM_BOOT'] = 'qemu'
        self.console = self.scratch_file('console.log')

    def real_eif(self):
        build = os.environ.get('QEMU_BUILD_ROOT', '.')
        p = subprocess.run([sys.executable, os.path.join(
            SOURCE, 'tests/nitro/enclave/build-image.py'),
            '--qemu-eif', self.qemu_eif,
            '--out', os.path.join(build, 'tests/nitro/enclave'), '--test',
            '--arch', self.target_arch],
            capture_output=True, text=True, check=False)
        if p.returncode == 77:
            self.skipTest(p.stderr.strip())
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def wait_for(self, what, cond, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.1)
        self.fail(f'timed out waiting for {what}')

    def console_text(self):
        try:
            with open(self.console, encoding='utf-8', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def parent(self, cid, *commands):
        script = self.scratch_file('parent.py')
        with open(script, 'w') as f:
            f.write(PARENT)
        env = dict(os.environ, **self.sim_env, LD_PRELOAD=self.sim_lib)
        p = subprocess.run([sys.executable, script, str(cid), *commands],
                           env=env, capture_output=True, text=True,
                           timeout=120, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def other_vm(self, port):
        """A listener at (OTHER_CID, @port), once it listens"""
        env = dict(os.environ, **self.sim_env, LD_PRELOAD=self.sim_lib,
                   NITRO_SIM_VSOCK_CID=str(OTHER_CID))
        p = subprocess.Popen([sys.executable, '-c', OTHER_VM,
                              str(OTHER_CID), str(port)], env=env,
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline().strip(), 'ready')
        return p

    def boot(self):
        self.vm.add_args('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                         '-m', '256M', '-kernel', self.real_eif(),
                         '-serial', f'file:{self.console}')
        self.vm.launch()
        cid = self.events('start')[0]['cid']
        self.wait_for('the enclave app', lambda: 'echo server on port 5000'
                      in self.console_text(), 120)
        return cid

    def runs(self):
        """The runs of a stop test: in a simulation and console of their
        own, with a QEMU of their own"""
        eif = self.real_eif()
        for run in range(RUNS):
            shutil.rmtree(self.sim_dir, ignore_errors=True)
            self.sim_dir = tempfile.mkdtemp(prefix='nsim-')
            self.sim_env['NITRO_SIM_DIR'] = self.sim_dir
            self.console = self.scratch_file(f'console-{run}.log')
            vm = self._new_vm(f'run{run}')
            try:
                yield run, eif, vm
            finally:
                vm.shutdown()

    def children(self, cid):
        """processes of the emulated machine and its backend of this
        test's simulation (their command lines name its files): another
        run's enclave of the same CID is not this test's"""
        mark = os.path.join(self.sim_dir, f'enclave-{cid}.')
        found = []
        for pid in os.listdir('/proc'):
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    if mark.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
        return found

    def test_real_enclave(self):
        cid = self.boot()
        self.assertTrue(self.children(cid))
        text = self.console_text()
        self.assertRegex(text, r'Linux version 6\.')
        self.assertIn('nitro-enclave-init: heartbeat ok', text)
        # the heartbeat came from the real init, from the enclave's CID
        hb = [e for e in self.events('vsock') if e['op'] == 'connect' and
              e['port'] == 9000 and e.get('result') == 0]
        self.assertEqual(len(hb), 1, hb)
        self.assertEqual(hb[0]['local_cid'], cid)

        out = self.parent(cid, 'echo', 'refused', 'serve')
        self.assertIn('echo ping from the parent', out)
        self.assertIn(f'refused {104}', out)            # ECONNRESET
        self.assertIn('send ok', out)
        self.assertIn(f'peer {cid}', out)

        # the enclave connects to a closed port of the parent: reset at
        # once (ECONNRESET), not ETIMEDOUT after the guest's own connect
        # timeout
        out = self.parent(cid, 'connect 3 4998')
        self.assertRegex(out, r'connect 3 4998 errno (104|111)\n', out)

        # the enclave dials a CID that is not the parent's: the backend
        # connects to that CID, whose listener sees the enclave
        other = self.other_vm(5003)
        try:
            out = self.parent(cid, f'send 5003 1 65536 {OTHER_CID}')
            self.assertIn(f'send 5003 1 65536 {OTHER_CID} ok', out)
            peer, _ = other.communicate(timeout=DEADLINE)
        finally:
            if other.poll() is None:
                other.kill()
                other.communicate()
        self.assertEqual(peer.strip(), f'peer {cid}')

        # the enclave powers off: QEMU reports it stopped and exits
        self.parent(cid, 'poweroff')
        self.vm.wait(timeout=60)
        self.assertEqual(self.vm.exitcode(), 0)
        self.assertEqual(self.events('stop')[0]['reason'], 'poweroff')
        self.assertEqual(self.children(cid), [])

    def attest(self, cid, line):
        """The status line and the document of attestation request @line"""
        doc = self.scratch_file('doc.cbor')
        if os.path.exists(doc):
            os.unlink(doc)
        env = dict(os.environ, **self.sim_env, LD_PRELOAD=self.sim_lib)
        p = subprocess.run([sys.executable, ATTEST_REQUEST, str(cid), line,
                            doc], env=env, capture_output=True, text=True,
                           timeout=180, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        if not os.path.exists(doc):
            return p.stdout.strip(), None
        with open(doc, 'rb') as f:
            return p.stdout.strip(), f.read()

    def verify(self, doc, *args):
        """qemu-eif verify-attestation of @doc against the simulation's
        root: exit status, stdout, stderr"""
        path = self.scratch_file('verify.cbor')
        with open(path, 'wb') as f:
            f.write(doc)
        p = subprocess.run([self.qemu_eif, 'verify-attestation', '--root',
                            os.path.join(self.sim_dir, 'attestation',
                                         'root.pem'), *args, path],
                           capture_output=True, text=True, timeout=60,
                           check=False)
        return p.returncode, p.stdout, p.stderr

    def test_attestation(self):
        # A production-mode enclave (debug mode attests zero PCRs): no
        # console, the attestation service is waited for on its port
        self.vm.add_args('-accel', 'nitro,debug-mode=off', '-M', 'nitro',
                         '-m', '256M', '-kernel', self.real_eif())
        self.vm.launch()
        cid = self.events('start')[0]['cid']
        nonce, user = os.urandom(32), b'sample user data'
        status, doc = self.attest(cid, f'{nonce.hex()} {user.hex()}')
        self.assertTrue(status.startswith('ok '), status)
        pcrs = []
        for n in range(3):
            res = self.qom_pcr(self.vm, n)
            self.assertIn('return', res, res)
            pcrs += ['--pcr', f'{n}={res["return"]}']
        rc, out, err = self.verify(doc, '--nonce', nonce.hex(), *pcrs)
        self.assertEqual(rc, 0, err)
        payload = json.loads(out)
        self.assertEqual(payload['nonce'], nonce.hex())
        self.assertEqual(payload['user_data'], user.hex())
        with open(os.path.join(self.sim_dir, 'attestation', 'root.pem'),
                  'rb') as f:
            root = x509.load_pem_x509_certificate(f.read()).public_bytes(
                serialization.Encoding.DER)
        self.assertIsNone(py_verify(doc, root, nonce=nonce))

        # another nonce: rejected by both
        other = os.urandom(32)
        rc, out, err = self.verify(doc, '--nonce', other.hex())
        self.assertEqual(rc, 1, out)
        self.assertIn('nonce', err)
        self.assertEqual(py_verify(doc, root, nonce=other), 'wrong nonce')

        # a request the service does not understand is answered so
        status, doc = self.attest(cid, 'not hex')
        self.assertIsNone(doc)
        self.assertRegex(status, r'^error expected "NONCE \[USER_DATA\]"')

    def test_signed_image_attests_pcr8(self):
        # The NSM of a signed image has its PCR8 (the signing
        # certificate), which qom-get reads too
        signed = self.scratch_file('signed.eif')
        eifsig.sign(self.real_eif(), signed)
        self.vm.add_args('-accel', 'nitro,debug-mode=off', '-M', 'nitro',
                         '-m', '256M', '-kernel', signed)
        self.vm.launch()
        cid = self.events('start')[0]['cid']
        nonce = os.urandom(32)
        status, doc = self.attest(cid, nonce.hex())
        self.assertTrue(status.startswith('ok '), status)
        pcr8 = self.qom_pcr(self.vm, 8)
        self.assertIn('return', pcr8, pcr8)
        rc, _, err = self.verify(doc, '--nonce', nonce.hex(), '--pcr',
                                 f'8={pcr8["return"]}')
        self.assertEqual(rc, 0, err)

    def test_panic_stops_enclave(self):
        cid = self.boot()
        self.parent(cid, 'exit')
        self.vm.wait(timeout=60)
        self.assertEqual(self.vm.exitcode(), 0)
        self.assertEqual(self.events('stop')[0]['reason'], 'kernel-panic')
        self.assertIn('Kernel panic - not syncing', self.console_text())
        self.assertEqual(self.children(cid), [])

    def test_reboot_terminates(self):
        # The official init ends with reboot(RB_AUTOBOOT): on Nitro that
        # terminates the enclave, which never boots twice.  QEMU reports a
        # stop of a booted enclave: SHUTDOWN, exit status 0.
        for run, eif, vm in self.runs():
            vm.add_args('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                        '-m', '256M', '-kernel', eif,
                        '-serial', f'file:{self.console}')
            vm.launch()
            cid = self.events('start')[0]['cid']
            self.wait_for('the enclave app', lambda: 'echo server on port '
                          '5000' in self.console_text(), 120)
            self.parent(cid, 'reboot')
            ev = vm.event_wait('SHUTDOWN', timeout=60)
            self.assertEqual(ev['data']['reason'], 'guest-shutdown')
            vm.wait(timeout=60)
            text = self.console_text()
            self.assertEqual(vm.exitcode(), 0, f'run {run}')
            self.assertEqual(self.events('stop')[0]['reason'], 'reboot',
                             f'run {run}')
            self.assertIn('reboot: Restarting system', text)
            self.assertEqual(text.count('Linux version'), 1, f'run {run}')
            self.assertTrue(text.endswith('nitro-sim: enclave stopped '
                                          '(reboot)\n'), f'run {run}')
            self.assertEqual(self.children(cid), [])

    def test_panic_before_heartbeat_is_a_boot_failure(self):
        # The init's heartbeat finds no listener on port 9000 (it is on
        # 9001): the init exits, the kernel panics before its heartbeat:
        # a boot failure, with the panic's last line on the console
        for run, eif, vm in self.runs():
            vm.add_args('-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                        '-m', '256M', '-kernel', eif, '-nodefaults',
                        '-chardev', f'file,id=con,path={self.console}',
                        '-device', 'nitro-serial-vsock,chardev=con',
                        '-device', 'nitro-heartbeat,port=9001')
            vm.launch()
            ev = vm.event_wait('GUEST_PANICKED', timeout=120)
            self.assertEqual(ev['data']['action'], 'poweroff')
            vm.wait(timeout=60)
            text = self.console_text()
            self.assertEqual(vm.exitcode(), 1, f'run {run}')
            self.assertIn('did not boot: it stopped before its heartbeat',
                          vm.get_log())
            self.assertEqual(self.events('stop')[0]['reason'],
                             'kernel-panic', f'run {run}')
            self.assertIn('nitro-enclave-init: heartbeat failed', text)
            # the panic's last line, with panic=30: then nothing waits
            self.assertRegex(text, r'Kernel panic - not syncing: Attempted '
                             r'to kill init!.*\n(.*\n)*.*Rebooting in 30 '
                             r'seconds\.\.\r?\n', f'run {run}')
            self.assertEqual(text.count('Linux version'), 1, f'run {run}')

    def test_fd_close_ends_machine(self):
        cid = self.boot()
        self.assertTrue(self.children(cid))
        self.vm.shutdown()
        self.assertEqual(self.events('stop')[0]['reason'], 'fd-closed')
        self.assertEqual(self.children(cid), [])
        left = [f for f in os.listdir(self.sim_dir)
                if re.search(r'\.(eif|kernel|initrd|vhost|vsock)$', f)]
        self.assertEqual(left, [])


if __name__ == '__main__':
    NitroTest.main()
