#!/usr/bin/env python3
#
# Benchmark: launching enclaves of growing image size on the simulator.
#
# For 16 MiB, 256 MiB and 1 GiB images, as an EIF and as direct kernel
# boot, prints the time from exec of QEMU to NE_START_ENCLAVE (from the
# simulator's event log), the floor for the same bytes (one warm read of
# the input files), their ratio, and QEMU's peak RSS (VmHWM: hugetlb
# guest RAM is not part of it).  Targets: ratio <= 1.5 at 1 GiB, peak
# memory within 64 MiB of the 16 MiB case.  It prints figures; it does
# not fail on them.
#
# It also prints the hugetlb floor: the same bytes read into freshly
# mapped huge pages, one thread per core, which is the least any loader
# has to do (the kernel clears each huge page on its first touch), and
# the ratio of the launch time to it.
#
# RAM uses the machine's default page policy: where 1 GiB pages are free
# (the benchmark tries to reserve them), the 1 GiB images run in a mix of
# 1 GiB and 2 MiB pages; they are run again with hugepage-size=2M.  The
# pages column says what was donated.
#
# Last, the time from exec of QEMU to the heartbeat of a real enclave
# (the sample image of tests/nitro/enclave/, booted by the simulator in
# -M nitro-enclave under TCG, NITRO_SIM_BOOT=qemu, on 2 vCPUs; the arm64
# one in -M virt), from the simulator's event log (the enclave's connect
# to port 9000), best of 3.  Targets: 6 s on x86_64, 15 s on aarch64.
# With --real-enclave, only that.
#
# Then the EC2 parent in a VM (scripts/nitro-parent-vm, x86_64 hosts): its
# start to the real nitro_enclaves driver ready, and our launch of the
# sample image on that driver, from exec of QEMU in the parent (which it
# tells the host over vsock) to the device's ENCLAVE_START (its image file
# on the host), next to the same launch on the simulator (exec to
# NE_START_ENCLAVE); best of 3.  With --parent-vm, only those.
#
# Usage: tests/bench/nitro-launch-bench.py [BUILD_DIR] [--real-enclave]
#                                        [--parent-vm]
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import mmap
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ARGS = [a for a in sys.argv[1:] if not a.startswith('--')]
REAL_ONLY = '--real-enclave' in sys.argv[1:]
PARENT_ONLY = '--parent-vm' in sys.argv[1:]
TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.abspath(ARGS[0] if ARGS else 'build')
sys.path.insert(0, os.path.join(BUILD, 'tree', 'python'))

from qemu.machine import QEMUMachine  # noqa: E402

MiB = 1024 * 1024
ARCH = 'x86_64'
# exec -> heartbeat of the real sample enclave, seconds
BOOT_TARGET = {'x86_64': 6, 'aarch64': 15}


def make_file(path, size):
    chunk = os.urandom(MiB)
    with open(path, 'wb') as f:
        for _ in range(size // MiB):
            f.write(chunk)
    return path


def warm_read(paths):
    """Seconds for one read of @paths from the page cache (best of 3)."""
    best = None
    for _ in range(3):
        t = time.perf_counter()
        for p in paths:
            with open(p, 'rb', buffering=0) as f:
                while f.read(4 * MiB):
                    pass
        t = time.perf_counter() - t
        best = t if best is None else min(best, t)
    return best


def hugetlb_read(paths):
    """Seconds to read @paths into fresh 2 MiB huge pages on every core
    (best of 3)."""
    sizes = [os.path.getsize(p) for p in paths]
    total = -(-sum(sizes) // (2 * MiB)) * 2 * MiB
    cpus = os.sysconf('SC_NPROCESSORS_ONLN')
    best = None
    for _ in range(3):
        fd = os.memfd_create('bench', os.MFD_HUGETLB)
        os.ftruncate(fd, total)
        mem = mmap.mmap(fd, total)
        view = memoryview(mem)
        # (file, file offset, destination offset, length) per thread
        jobs, dst = [], 0
        for path, size in zip(paths, sizes):
            step = -(-size // cpus)
            for off in range(0, size, step):
                jobs.append((path, off, dst + off, min(step, size - off)))
            dst += size
        t = time.perf_counter()
        threads = [threading.Thread(target=read_into, args=(view, *job))
                   for job in jobs]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t = time.perf_counter() - t
        view.release()
        mem.close()
        os.close(fd)
        best = t if best is None else min(best, t)
    return best


def read_into(view, path, off, dst, length):
    with open(path, 'rb', buffering=0) as f:
        done = 0
        while done < length:
            n = min(4 * MiB, length - done)
            done += os.preadv(f.fileno(), [view[dst + done:dst + done + n]],
                              off + done)


def reserve(mem, size_kb=2048):
    d = f'/sys/kernel/mm/hugepages/hugepages-{size_kb}kB'
    need = mem // (size_kb * 1024)
    try:
        with open(f'{d}/nr_hugepages') as f:
            total = int(f.read())
        if total < need:
            with open(f'{d}/nr_hugepages', 'w') as f:
                f.write(str(need))
    except OSError:
        pass


def page_mix(regions):
    """'1G+32x2M': the huge pages of the donated regions."""
    sizes = {}
    for r in regions:
        sizes[r['page_size']] = sizes.get(r['page_size'], 0) + \
            r['size'] // r['page_size']
    return '+'.join(f"{n}x{p // MiB}M" if p < 1024 * MiB else
                    f"{n}x{p // (1024 * MiB)}G"
                    for p, n in sorted(sizes.items(), reverse=True))


def launch(workdir, args, mem, machine=''):
    sim = tempfile.mkdtemp(prefix='bench-sim-', dir='/tmp')
    wrapper = ['env', f'LD_PRELOAD={BUILD}/libnitro-sim.so',
               f'NITRO_SIM_DIR={sim}', 'NITRO_SIM_HEARTBEAT=none']
    vm = QEMUMachine(os.path.join(BUILD, f'qemu-system-{ARCH}'),
                     args=['-accel', 'nitro', '-M',
                           'nitro,external-heartbeat=on,allow-small-memory=on'
                           + machine,
                           '-m',
                           f'{mem // MiB}M', '-nodefaults'] + args,
                     wrapper=wrapper, base_temp_dir=workdir)
    t0 = time.time()
    vm.launch()
    try:
        with open(f'/proc/{vm.get_pid()}/status') as f:
            hwm = [int(line.split()[1]) for line in f
                   if line.startswith('VmHWM:')][0] * 1024
    finally:
        vm.shutdown()
    with open(os.path.join(sim, 'events.jsonl')) as f:
        events = [json.loads(line) for line in f]
    start = [e for e in events if e.get('cmd') == 'NE_START_ENCLAVE'][0]
    regions = [e for e in events if e['event'] == 'region']
    subprocess.run(['rm', '-rf', sim])
    return start['ts'] - t0, hwm, page_mix(regions)


def sample_image(arch, what):
    """The sample enclave image (tests/nitro/enclave/), or None when it
    cannot be built (said as why @what is not measured)"""
    p = subprocess.run([sys.executable, os.path.join(
        TOP, 'tests', 'nitro', 'enclave', 'build-image.py'),
        '--qemu-eif', os.path.join(BUILD, 'qemu-eif'), '--arch', arch,
        '--out', os.path.join(BUILD, 'obj', 'tests', 'nitro', 'enclave')],
        capture_output=True, text=True, check=False)
    if p.returncode:
        print(f'{what}: not measured ({p.stderr.strip()})')
        return None
    return p.stdout.strip()


def real_enclave(workdir, arch):
    """Seconds from exec of QEMU to the heartbeat of the real enclave"""
    eif = sample_image(arch, f'real enclave ({arch})')
    if not eif:
        return
    best = None
    reserve(512 * MiB)
    for _ in range(3):
        sim = tempfile.mkdtemp(prefix='bench-sim-', dir='/tmp')
        console = os.path.join(sim, 'console.log')
        wrapper = ['env', f'LD_PRELOAD={BUILD}/libnitro-sim.so',
                   f'NITRO_SIM_DIR={sim}', 'NITRO_SIM_BOOT=qemu',
                   f'NITRO_SIM_ARCH={arch}']
        vm = QEMUMachine(os.path.join(BUILD, f'qemu-system-{arch}'),
                         args=['-accel', 'nitro,debug-mode=on', '-M', 'nitro',
                               '-m', '256M', '-kernel', eif,
                               '-serial', f'file:{console}'],
                         wrapper=wrapper, base_temp_dir=workdir)
        t0 = time.time()
        vm.launch()
        hb = None
        try:
            deadline = time.monotonic() + 120
            while hb is None and time.monotonic() < deadline:
                time.sleep(0.1)
                with open(os.path.join(sim, 'events.jsonl')) as f:
                    for line in f:
                        ev = json.loads(line)
                        if ev['event'] == 'vsock' and \
                           ev['op'] == 'connect' and ev['port'] == 9000 and \
                           ev.get('result') == 0:
                            hb = ev['ts'] - t0
        finally:
            vm.shutdown()
        subprocess.run(['rm', '-rf', sim])
        if hb is None:
            print(f'real enclave ({arch}): no heartbeat within 120 s')
            return
        best = hb if best is None else min(best, hb)
    size = os.path.getsize(eif)
    print(f'real enclave {arch} ({size / MiB:.1f} MiB EIF, 256 MiB, 2 '
          f'vCPUs, TCG): exec -> heartbeat {best:.2f} s (best of 3, '
          f'target {BOOT_TARGET[arch]} s)')


# In the parent: tell the host (CID 2, port 7100) that QEMU is exec'd,
# launch the sample image, and end it once its echo server answers
PARENT_SCRIPT = r'''
./vsock-cat 2 7100 exec >/dev/null
qemu-system-x86_64 -accel nitro -M nitro -m 256M -smp 2 -nographic \
    -kernel "$1" </dev/null >/dev/null 2>&1 &
./vsock-cat 16 5000 up >/dev/null
kill -TERM $!
wait
'''


def parent_launch(workdir, eif, vsock_cat, script):
    """One parent VM: (seconds to the driver ready, seconds from exec of
    QEMU in it to ENCLAVE_START), or None"""
    encl = tempfile.mkdtemp(prefix='bench-parent-', dir=workdir)
    told = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    told.bind(os.path.join(encl, 'parent.vsock_7100'))
    told.listen(1)
    proc = subprocess.Popen([os.path.join(TOP, 'scripts', 'nitro-parent-vm'),
                             '--qemu', os.path.join(BUILD,
                                                    'qemu-system-x86_64'),
                             '--with-qemu', '--enclave-dir', encl,
                             '--copy', vsock_cat, '--copy', eif,
                             '--copy', script, '--', 'sh',
                             os.path.basename(script),
                             os.path.basename(eif)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    # as long as the parent-VM test gives one
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline and \
            not select.select([told], [], [], 1)[0]:
        continue
    t0 = time.monotonic()
    if proc.poll() is None and time.monotonic() < deadline:
        told.accept()[0].close()
    told.close()
    started = os.path.join(encl, 'enclave-16.eif')
    while not os.path.exists(started) and proc.poll() is None and \
            time.monotonic() < deadline:
        time.sleep(0.01)
    t1 = time.monotonic()
    try:
        err = proc.communicate(timeout=max(deadline - t1, 1))[1]
    except subprocess.TimeoutExpired:
        # the script, its parent VM and the vsock backend
        os.killpg(proc.pid, signal.SIGKILL)
        err = proc.communicate()[1] + '\nno end within 900 s'
    m = re.search(r'driver ready after ([0-9.]+) s', err)
    subprocess.run(['rm', '-rf', encl])
    if proc.returncode or not m:
        print(f'parent VM: failed ({err.strip()[-300:]})')
        return None
    return float(m.group(1)), t1 - t0


def parent_vm(workdir):
    """The EC2 parent in a VM, and our launch on its real driver"""
    eif = sample_image('x86_64', 'parent VM')
    if not eif:
        return
    vsock_cat = os.path.join(workdir, 'vsock-cat')
    subprocess.run(['cc', '-static', '-O2', '-o', vsock_cat,
                    os.path.join(TOP, 'tests', 'nitro', 'parent',
                                 'vsock-cat.c')], check=True)
    script = os.path.join(workdir, 'launch.sh')
    with open(script, 'w') as f:
        f.write(PARENT_SCRIPT)
    runs = [parent_launch(workdir, eif, vsock_cat, script) for _ in range(3)]
    if None in runs:
        return
    reserve(512 * MiB)
    sim = min(launch(workdir, ['-kernel', eif], 256 * MiB)[0]
              for _ in range(3))
    print(f'parent VM (TCG, 4 vCPUs, 1 GiB): start -> driver ready '
          f'{min(r[0] for r in runs):.1f} s; our launch of the sample image, '
          f'exec -> start: real driver {min(r[1] for r in runs):.2f} s, '
          f'simulator {sim:.2f} s (best of 3)')


def main():
    workdir = tempfile.mkdtemp(prefix='nitro-bench-', dir='/var/tmp')
    only = REAL_ONLY or PARENT_ONLY
    if not only:
        print(f"{'case':<18}{'to START (s)':>13}{'floor (s)':>10}"
              f"{'ratio':>7}{'hugetlb floor (s)':>19}{'ratio':>7}"
              f"{'VmHWM (MiB)':>13}  pages")
    base_hwm = {}
    for size in () if only else (16 * MiB, 256 * MiB, 1024 * MiB):
        kernel = make_file(os.path.join(workdir, 'kernel'), 8 * MiB)
        initrd = make_file(os.path.join(workdir, 'initrd'), size - 8 * MiB)
        eif = os.path.join(workdir, 'app.eif')
        subprocess.run([os.path.join(BUILD, 'qemu-eif'), 'build',
                        '--kernel', kernel, '--initrd', initrd,
                        '--arch', ARCH, '-o', eif], check=True)
        mem = size + 64 * MiB
        reserve(2 * mem)
        # where 1 GiB pages are free, RAM of 1 GiB + 64 MiB is a mix
        reserve(mem, 1024 * 1024)
        cases = [('eif', [eif], ['-kernel', eif], ''),
                 ('direct', [kernel, initrd],
                  ['-kernel', kernel, '-initrd', initrd], '')]
        if size == 1024 * MiB:
            cases += [('eif 2M', [eif], ['-kernel', eif],
                       ',hugepage-size=2M'),
                      ('direct 2M', [kernel, initrd],
                       ['-kernel', kernel, '-initrd', initrd],
                       ',hugepage-size=2M')]
        for kind, inputs, args, machine in cases:
            floor = warm_read(inputs)
            hfloor = hugetlb_read(inputs)
            elapsed, hwm, pages = launch(workdir, args, mem, machine)
            base = kind.split()[0]
            base_hwm.setdefault(base, hwm)
            print(f"{kind + ' ' + str(size // MiB) + ' MiB':<18}"
                  f"{elapsed:>13.3f}{floor:>10.3f}{elapsed / floor:>7.2f}"
                  f"{hfloor:>19.3f}{elapsed / hfloor:>7.2f}"
                  f"{hwm / MiB:>13.1f}  {pages}"
                  f"  (+{(hwm - base_hwm[base]) / MiB:.1f} MiB vs 16 MiB)")
        for p in (kernel, initrd, eif):
            os.unlink(p)
    for arch in () if PARENT_ONLY else BOOT_TARGET:
        real_enclave(workdir, arch)
    if ARCH == os.uname().machine and not REAL_ONLY:
        parent_vm(workdir)
    subprocess.run(['rm', '-rf', workdir])


if __name__ == '__main__':
    main()
