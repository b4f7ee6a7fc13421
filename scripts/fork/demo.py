#!/usr/bin/env python3
"""The main job: launch an enclave with -accel nitro -M nitro.

On a Nitro Enclaves parent instance (/dev/nitro_enclaves exists) it
launches EIF=path/to/app.eif on the real driver.  Anywhere else it runs on
the simulator (contrib/nitro-sim).  The simulator boots a real enclave
(NITRO_SIM_BOOT=qemu): a Debian kernel and our init
(tests/nitro/enclave/build-image.py), in QEMU's emulated -M nitro-enclave
(on an arm64 host: -M virt) with contrib/vhost-user-vsock; when the kernel package cannot be had it
says why and falls back to the simulated enclave and a sample image made
by qemu-eif.  It prints what a user checks first: the enclave's debug
console (QEMU answers its heartbeat), the CID and the PCRs read over QMP,
what the driver saw and, with the real enclave, a parent -> enclave vsock
echo and an attestation: the same image launched in production mode (a
debug-mode enclave attests zero PCRs, as on Nitro) answers a fresh nonce
on its attestation port (5005) with a document from its NSM, which
`qemu-eif verify-attestation` checks against the simulation's root
(NITRO_SIM_DIR/attestation/root.pem), PCR0-2 read over QMP and the nonce.

Usage: make demo [EIF=app.eif] [MEM=256M] [CPUS=2]
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(TOP, 'build')
sys.path.insert(0, os.path.join(BUILD, 'tree', 'python'))

from qemu.machine import QEMUMachine  # noqa: E402

MiB = 1024 * 1024


def host_arch():
    return 'aarch64' if platform.machine() in ('aarch64', 'arm64') else 'x86_64'


def sample_eif(workdir, arch):
    """A synthetic image: the simulator checks and measures it, it does
    not boot a kernel."""
    paths = {}
    for name, size in (('vmlinuz', 4 * MiB), ('initrd.cpio', 2 * MiB)):
        paths[name] = os.path.join(workdir, name)
        with open(paths[name], 'wb') as f:
            f.write((name.encode() * (size // len(name) + 1))[:size])
    eif = os.path.join(workdir, 'sample.eif')
    subprocess.run([os.path.join(BUILD, 'qemu-eif'), 'build',
                    '--kernel', paths['vmlinuz'],
                    '--initrd', paths['initrd.cpio'],
                    '--arch', arch, '--name', 'sample', '--version', '1.0',
                    '-o', eif], check=True)
    return eif


def real_enclave_eif():
    """The sample real enclave, or None and why not"""
    p = subprocess.run([sys.executable, os.path.join(
        TOP, 'tests', 'nitro', 'enclave', 'build-image.py'),
        '--qemu-eif', os.path.join(BUILD, 'qemu-eif'),
        '--out', os.path.join(BUILD, 'obj', 'tests', 'nitro', 'enclave')],
        capture_output=True, text=True, check=False)
    if p.returncode:
        return None, p.stderr.strip().splitlines()[-1]
    return p.stdout.strip(), None


# The parent side of the echo, run with the simulator preloaded
ECHO = """
import socket, sys
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.settimeout(30)
s.connect((int(sys.argv[1]), 5000))
s.sendall(b'hello from the parent')
print(s.recv(100).decode())
"""


def vsock_echo(wrapper, cid):
    p = subprocess.run(wrapper + [sys.executable, '-c', ECHO, str(cid)],
                       capture_output=True, text=True, timeout=60,
                       check=False)
    return p.stdout.strip() if p.returncode == 0 else \
        f'failed: {p.stderr.strip()}'


def launch(wrapper, arch, args, workdir, prefix):
    """Print the command line after @prefix and launch it: the machine
    and its enclave's CID"""
    print(prefix + ' '.join([f'qemu-system-{arch}'] + args))
    vm = QEMUMachine(os.path.join(BUILD, f'qemu-system-{arch}'),
                     args=args, wrapper=wrapper, base_temp_dir=workdir)
    vm.launch()
    try:
        cid = vm.cmd('qom-get', path='/machine/nitro-vsock',
                     property='enclave-cid')
    except Exception:
        vm.shutdown()
        raise
    return vm, cid


def attestation(wrapper, sim_dir, arch, eif, mem, workdir):
    """Launch @eif in production mode, ask it for an attestation document
    with a fresh nonce and verify it: the line to print, and whether it
    verified"""
    args = ['-accel', 'nitro,debug-mode=off', '-M', 'nitro', '-m', mem,
            '-kernel', eif]
    print('demo: attestation: the same image in production mode (a '
          'debug-mode enclave attests zero PCRs, as on Nitro)')
    vm, cid = launch(wrapper, arch, args, workdir, 'demo: attestation: ')
    try:
        nonce = os.urandom(32).hex()
        doc = os.path.join(workdir, 'attestation.cbor')
        p = subprocess.run(wrapper + [
            sys.executable,
            os.path.join(TOP, 'tests/nitro/enclave/attest-request.py'),
            str(cid), nonce, doc],
            capture_output=True, text=True, timeout=180, check=False)
        if p.returncode or not p.stdout.startswith('ok '):
            return f'failed: {(p.stderr or p.stdout).strip()}', False
        pcrs = []
        for i in range(3):
            pcrs += ['--pcr', f'{i}={qom_pcr(vm, i)}']
    finally:
        vm.shutdown()
    root = os.path.join(sim_dir, 'attestation', 'root.pem')
    print(f'demo: attestation: qemu-eif verify-attestation --root {root} '
          f'--nonce {nonce[:16]}... --pcr 0=... --pcr 1=... --pcr 2=...')
    p = subprocess.run([os.path.join(BUILD, 'qemu-eif'),
                        'verify-attestation', '--root', root,
                        '--nonce', nonce, *pcrs, doc],
                       capture_output=True, text=True, check=False)
    if p.returncode:
        return f'REJECTED: {p.stderr.strip()}', False
    return 'signature valid, PCR0-2 = qom-get, nonce echoed', True


def reserve_hugepages(mem_bytes):
    """The simulator, like the driver, needs real huge pages."""
    d = '/sys/kernel/mm/hugepages/hugepages-2048kB'
    need = mem_bytes // (2 * MiB)
    with open(f'{d}/free_hugepages') as f:
        free = int(f.read())
    with open(f'{d}/resv_hugepages') as f:
        free -= int(f.read())
    if free >= need:
        return
    with open(f'{d}/nr_hugepages') as f:
        total = int(f.read())
    print(f'demo: reserving {need - free} more 2 MiB huge pages')
    try:
        with open(f'{d}/nr_hugepages', 'w') as f:
            f.write(str(total + need - free))
    except OSError as e:
        sys.exit(f'demo: cannot reserve huge pages ({e}); as root run: '
                 f'echo {total + need - free} > {d}/nr_hugepages')


def wait_console(path, what, timeout=10):
    """Give the enclave's console @timeout seconds to show @what."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, 'rb') as f:
            if what in f.read():
                return
        time.sleep(0.1)


def qom_pcr(vm, n, timeout=30):
    """PCR @n, once the machine has measured the image."""
    deadline = time.monotonic() + timeout
    while True:
        res = vm.qmp('qom-get', path='/machine', property=f'pcr{n}')
        if 'return' in res:
            return res['return']
        if time.monotonic() > deadline or \
           'still measuring' not in res['error']['desc']:
            raise RuntimeError(res['error']['desc'])
        time.sleep(0.02)


def parse_size(s):
    units = {'M': MiB, 'G': 1024 * MiB}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units \
        else int(s)


def main():
    arch = host_arch()
    mem = os.environ.get('MEM', '256M')
    cpus = os.environ.get('CPUS', '2')
    real = os.path.exists('/dev/nitro_enclaves')
    workdir = tempfile.mkdtemp(prefix='nitro-demo-')
    wrapper = []
    sim_dir = None
    boot = 'sim'

    if real:
        eif = os.environ.get('EIF')
        if not eif:
            sys.exit('demo: this is a Nitro Enclaves parent instance; '
                     'run: make demo EIF=path/to/app.eif')
        print('demo: launching on the Nitro Enclaves driver')
    else:
        eif = os.environ.get('EIF')
        if not eif:
            eif, why = real_enclave_eif()
            if eif:
                boot = 'qemu'
                print('demo: booting a real enclave (Debian kernel, our '
                      'init) in -M nitro-enclave under TCG')
            else:
                print(f'demo: no real enclave ({why}): the simulator plays '
                      f'the enclave instead')
                eif = sample_eif(workdir, arch)
        reserve_hugepages(parse_size(mem))
        sim_dir = os.path.join(workdir, 'sim')
        wrapper = ['env', f'LD_PRELOAD={BUILD}/libnitro-sim.so',
                   f'NITRO_SIM_DIR={sim_dir}', f'NITRO_SIM_BOOT={boot}']
        print(f'demo: no /dev/nitro_enclaves here: running on the simulator '
              f'(NITRO_SIM_DIR={sim_dir})')

    console = os.path.join(workdir, 'console.log')
    args = ['-accel', 'nitro,debug-mode=on', '-M', 'nitro', '-m', mem,
            '-smp', cpus, '-kernel', eif, '-serial', f'file:{console}']
    vm, cid = launch(wrapper, arch, args, workdir, 'demo: ')
    try:
        print(f'demo: enclave running, CID {cid}')
        if boot == 'qemu':
            wait_console(console, b'echo server on port 5000', 60)
        else:
            wait_console(console, b'heartbeat')
        with open(console, errors='replace') as f:
            for line in f:
                print(f'demo: console: {line.rstrip()}')
        for i in range(3):
            pcr = qom_pcr(vm, i)
            print(f'demo: PCR{i} {pcr}')
        accel = vm.cmd('query-accelerators')['enabled']
        print(f'demo: query-accelerators: {accel}')
        if sim_dir:
            with open(os.path.join(sim_dir, 'events.jsonl')) as f:
                for line in f:
                    ev = json.loads(line)
                    if ev['event'] == 'start':
                        print(f"demo: simulator: started CID {ev['cid']} "
                              f"with vCPUs {ev['vcpus']}, "
                              f"{ev['mem_size'] // MiB} MiB in "
                              f"{ev['regions']} region(s), "
                              f"debug={ev['debug']}")
        if boot == 'qemu':
            print(f'demo: parent -> enclave vsock echo on port 5000: '
                  f'{vsock_echo(wrapper, cid)}')
        vm.shutdown()
        print('demo: QEMU quit, the enclave was terminated')
        attested = True
        if boot == 'qemu':
            line, attested = attestation(wrapper, sim_dir, arch, eif, mem,
                                         workdir)
            print(f'demo: attestation: {line}')
    finally:
        vm.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if attested else 1


if __name__ == '__main__':
    sys.exit(main())
