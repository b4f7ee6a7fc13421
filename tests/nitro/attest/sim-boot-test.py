#!/usr/bin/env python3
#
# The simulator's real-boot mode (NITRO_SIM_BOOT=qemu) gives the
# -M nitro-enclave machine's virtio-nsm a signing chain, made once per
# simulation directory and kept there, a module_id of the shape
# i-<instance>-enc<id> and, for a debug-mode enclave, zero PCRs; else
# PCR3 and PCR4 of the parent's IAM role and instance ID
# (NITRO_SIM_IAM_ROLE, NITRO_SIM_INSTANCE_ID) as AWS documents them.  The
# machine is a stand-in (NITRO_SIM_QEMU) that records its command line;
# the recorded virtio-nsm options then sign a document in -M microvm
# (nsm_qtest.py) that qemu-eif verifies against the directory's root.
#
# Usage: sim-boot-test.py, with QEMU_TEST_QEMU_BINARY, NITRO_SIM_LIB,
# QEMU_EIF and PYTHONPATH (tests/functional) set, as for the functional
# tests on the simulator.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

import cbor2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))
from taptest import Tap, sample_eif  # noqa: E402
from nsm_qtest import attestation  # noqa: E402
from qemu_test.nitro import reserve_hugepages  # noqa: E402

QEMU = os.environ['QEMU_TEST_QEMU_BINARY']
QEMU_EIF = os.environ['QEMU_EIF']
SIM_LIB = os.environ['NITRO_SIM_LIB']
# -m 128M in huge pages of 2 MiB
HUGEPAGES = 64

FAKE_QEMU = '''#!/bin/sh
# records its arguments, NUL-separated, in the next free $ATT_ARGV.N
n=0
while [ -e "$ATT_ARGV.$n" ]; do n=$((n + 1)); done
for a in "$@"; do printf '%s\\0' "$a"; done >"$ATT_ARGV.$n.tmp"
mv "$ATT_ARGV.$n.tmp" "$ATT_ARGV.$n"
'''


def launch(tmp, sim, eif, debug, **extra):
    """Launch @eif on the simulator in @sim; the recorded command line of
    the -M nitro-enclave machine it started"""
    argv = os.path.join(tmp, 'argv')
    before = {f for f in os.listdir(tmp) if f.startswith('argv.')}
    env = dict(os.environ, **extra, LD_PRELOAD=SIM_LIB, NITRO_SIM_DIR=sim,
               NITRO_SIM_BOOT='qemu',
               NITRO_SIM_QEMU=os.path.join(tmp, 'fake qemu'),
               NITRO_SIM_VSOCK_BACKEND='true', ATT_ARGV=argv)
    p = subprocess.run([QEMU, '-accel',
                        f'nitro,debug-mode={"on" if debug else "off"}',
                        '-M', 'nitro', '-m', '128M', '-display', 'none',
                        '-monitor', 'none', '-serial', 'none',
                        '-kernel', eif],
                       env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL, check=False)
    new = sorted({f for f in os.listdir(tmp) if f.startswith('argv.') and
                  not f.endswith('.tmp')} - before)
    if len(new) != 1:
        return None, p.stderr
    with open(os.path.join(tmp, new[0]), 'rb') as f:
        return f.read().decode().split('\0')[:-1], p.stderr


def option(argv, prefix):
    """The values of the options of @argv that start with @prefix"""
    return [a[len(prefix):] for a in argv if a.startswith(prefix)]


def main():
    tap = Tap()
    reason = reserve_hugepages(HUGEPAGES)
    if reason:
        print(f'1..0 # SKIP {reason}')
        return 0
    tmp = tempfile.mkdtemp(prefix='nitro attest sim-')
    try:
        run(tap, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.plan()


def run(tap, tmp):
    fake = os.path.join(tmp, 'fake qemu')
    with open(fake, 'w') as f:
        f.write(FAKE_QEMU)
    os.chmod(fake, 0o755)
    eif = os.path.join(tmp, 'app.eif')
    sample_eif(QEMU_EIF, tmp, 'x86_64', eif)
    sim = os.path.join(tmp, 'sim')
    att = os.path.join(sim, 'attestation')

    argv, err = launch(tmp, sim, eif, debug=True)
    if not tap(argv is not None, 'the simulator starts the enclave machine',
               err):
        return
    machine = option(argv, 'nitro-enclave,')
    tap(len(machine) == 1 and
        re.search(r'(^|,)id=i-[0-9a-f]{17}-enc[0-9a-f]{16}($|,)',
                  machine[0]),
        'the machine\'s module_id is i-<instance>-enc<id>', machine)
    nsm = option(argv, 'virtio-nsm-device.')
    tap(sorted(nsm) == sorted([
        f'private-key={att}/leaf.key',
        f'certificate-chain={att}/chain.pem',
        'debug-mode=on']),
        'virtio-nsm signs with the directory\'s chain, in debug mode',
        '\n'.join(nsm))
    root_pem = os.path.join(att, 'root.pem')
    if not tap(os.path.exists(root_pem),
               'the chain is kept in the simulation directory',
               '\n'.join(os.listdir(sim))):
        return
    with open(root_pem, 'rb') as f:
        root = f.read()

    # The recorded options sign a document that verifies with the root
    globals_ = [a for o in nsm for a in ('-global', f'virtio-nsm-device.{o}')]
    doc = attestation(QEMU, tmp, 'virtio-nsm-device', args=globals_)
    docfile = os.path.join(tmp, 'doc.cbor')
    with open(docfile, 'wb') as f:
        f.write(doc)
    p = subprocess.run([QEMU_EIF, 'verify-attestation', '--root',
                        os.path.join(att, 'root.pem'), docfile],
                       capture_output=True, text=True, check=False)
    pcrs = cbor2.loads(cbor2.loads(doc)[2])['pcrs']
    tap(p.returncode == 0 and
        all(v == bytes(48) for v in pcrs.values()) and len(pcrs) == 16,
        'its document verifies with the directory\'s root.pem, zero PCRs',
        p.stderr)

    role = 'arn:aws:iam::123456789012:role/Webserver'
    instance = 'i-0123456789abcdef0'
    argv, err = launch(tmp, sim, eif, debug=False,
                       NITRO_SIM_IAM_ROLE=role,
                       NITRO_SIM_INSTANCE_ID=instance)
    with open(os.path.join(att, 'root.pem'), 'rb') as f:
        kept = f.read() == root
    nsm = option(argv or [], 'virtio-nsm-device.')
    tap(argv is not None and kept and 'debug-mode=off' in nsm,
        'the next enclave keeps the chain; not in debug mode, real PCRs',
        err)

    # PCR3 and PCR4 as AWS documents them for key policies
    pcr3 = hashlib.sha384(bytes(48) + role.encode()).hexdigest()
    pcr4 = hashlib.sha384(bytes(48) + instance.encode()).hexdigest()
    machine = option(argv or [], 'nitro-enclave,')
    tap(f'pcr3={pcr3}' in nsm and f'pcr4={pcr4}' in nsm and
        len(machine) == 1 and f',id={instance}-enc' in machine[0],
        'PCR3 and PCR4 of the parent\'s IAM role and instance ID, which '
        'the module_id names', '\n'.join(nsm + machine))
    globals_ = [a for o in nsm for a in ('-global', f'virtio-nsm-device.{o}')]
    pcrs = cbor2.loads(cbor2.loads(
        attestation(QEMU, tmp, 'virtio-nsm-device', args=globals_))[2])['pcrs']
    tap(pcrs[3].hex() == pcr3 and pcrs[4].hex() == pcr4,
        'the document reports them', pcrs)
    argv, err = launch(tmp, sim, eif, debug=False,
                       NITRO_SIM_INSTANCE_ID='i-123')
    tap(argv is None and 'NITRO_SIM_INSTANCE_ID: \'i-123\' is not an EC2 '
        'instance ID' in err, 'a bad NITRO_SIM_INSTANCE_ID is refused', err)


if __name__ == '__main__':
    sys.exit(main())
