#!/usr/bin/env python3
#
# The real nitro_enclaves driver on QEMU's nitro-enclaves-pci: boot the
# parent VM (scripts/nitro-parent-vm, Debian's 6.12 cloud kernel) and run
# tests/nitro/parent/ne-probe.c in it, a launch step by step on the
# driver: /dev/nitro_enclaves exists, NE_CREATE_VM, NE_SET_USER_MEMORY_
# REGION, NE_ADD_VCPU and NE_START_ENCLAVE reach the device, its error
# codes reach user space, its vector 1 becomes POLLHUP, and closing the
# enclave fd releases the slot.  COMMAND's exit status comes back.
#
# Then, with the sample image (tests/nitro/enclave/, a Debian kernel and
# our init): ne-probe gives it to the driver, the device boots it from
# the donated huge pages, its heartbeat reaches ne-probe in the parent
# guest at CID 3 (one vsock backend serves the parent and the enclave),
# ne-probe gets an echo from the enclave's CID and tells this test on the
# host (the parent's vsock reaches host sockets), the enclave's echo
# server answers the host too through the device's vsock gateway, and
# its power-off becomes POLLHUP in the parent.
#
# Then ne-rules.c, the driver's rules a launcher can see (errnos, fds,
# sysfs, order), runs on the driver in the parent and on the simulator
# (contrib/nitro-sim) on the host with the parent's CPUs and pool: the
# outcomes must be the same, rule by rule, but for the differences that
# parent/ne-rules-differences.txt lists with their reasons.
#
# Last, our own launcher on the real driver: QEMU itself (with its
# libraries) in a parent of five cores, `qemu-system-x86_64 -accel nitro
# -M nitro -nographic -kernel` the sample image: its heartbeat answered by
# our accelerator on the parent's vsock, the enclave's echo from the
# parent, its CID and PCR0 over QMP, in debug mode its console (vsock
# CID 0, port 10000 + CID, as on EC2), its power-off ends QEMU, QMP `quit`
# ends it too and the slot's huge pages are free again.  Then the error
# paths with our messages (too few huge pages, a CID in use) and four
# enclaves at once, as many as the pool's four cores hold: each answers
# at its own CID, a fifth is refused (no CPU left in the pool), SIGTERM
# ends each QEMU and frees its huge pages.
#
#   parent-vm-test.py QEMU [QEMU_EIF]
#
# with the simulator's library in $NITRO_SIM_LIB for the rules.
#
# TAP; skipped (exit 77) with the reason only when the kernel package
# cannot be downloaded.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from taptest import Tap  # noqa: E402

TOP = os.path.dirname(os.path.dirname(HERE))
if os.path.basename(TOP) == 'tree' and \
   os.path.basename(os.path.dirname(TOP)) == 'build':
    TOP = os.path.dirname(os.path.dirname(TOP))
SCRIPT = os.path.join(TOP, 'scripts', 'nitro-parent-vm')


# In the parent: our QEMU launches the sample image EIF in debug mode,
# then without, then four at once (what the CPU pool's four cores hold)
# with a CID in use and a fifth refused on the way; it says what it saw,
# one "name: value" line each
ACCEL_SCRIPT = r'''
eif=$1
hp() { sed -n 's/^HugePages_Free: *//p' /proc/meminfo; }
free0=$(hp)
launch() {
    mkfifo /tmp/qmp$1.in /tmp/qmp$1.out
    qemu-system-x86_64 -accel "$2" -M nitro -m 256M -smp 2 -nographic \
        -kernel "$eif" -qmp pipe:/tmp/qmp$1 </dev/null >console$1.log \
        2>qemu$1.err &
    pid=$!
    exec 3<>/tmp/qmp$1.in 4<>/tmp/qmp$1.out
    read -r -t 900 greeting <&4
    qmp '{"execute":"qmp_capabilities"}' >/dev/null
}
qmp() {
    echo "$1" >&3
    while read -r -t 900 line <&4; do
        case "$line" in *'"return"'*|*'"error"'*) echo "$line"; return;; esac
    done
    echo "no reply"
}
get() {
    qmp '{"execute":"qom-get","arguments":{"path":"/machine","property":"'$1'"}}' |
        sed -n 's/.*"return": *"*\([0-9a-f]*\)"*.*/\1/p'
}
launch 1 nitro,debug-mode=on
echo "echo1: $(./vsock-cat 16 5000 hello-from-the-parent)"
echo "cid: $(get enclave-cid)"
echo "pcr0: $(get pcr0)"
./vsock-cat 16 5001 poweroff >/dev/null
wait $pid
echo "poweroff-exit: $?"
echo "console1: $(grep -c 'Linux version' console1.log)"
echo "free-after-poweroff: $(hp) of $free0"
launch 2 nitro
echo "echo2: $(./vsock-cat 16 5000 hello-again)"
qmp '{"execute":"quit"}' >/dev/null
wait $pid
echo "quit-exit: $?"
echo "free-after-quit: $(hp) of $free0"
qemu-system-x86_64 -accel nitro -M nitro -m 2G -smp 2 -nographic \
    -kernel "$eif" </dev/null >/dev/null 2>too-big.err
echo "too-big-exit: $?"

# Several at once: each QEMU's CID from its "started" line
start() {
    qemu-system-x86_64 -accel nitro$2 -M nitro -m 256M -smp 2 -nographic \
        -kernel "$eif" </dev/null >/dev/null 2>many$1.err &
    echo $! >many$1.pid
}
cid_of() {
    sed -n 's/.*started the enclave with CID \([0-9]*\).*/\1/p' many$1.err
}
started() {
    while [ -z "$(cid_of $1)" ] && kill -0 "$(cat many$1.pid)"; do
        sleep 1
    done
    cid_of $1
}
for n in 1 2 3; do start $n; done
for n in 1 2 3; do started $n >/dev/null; done
qemu-system-x86_64 -accel nitro,requested-cid=$(cid_of 1) -M nitro -m 256M \
    -smp 2 -nographic -kernel "$eif" </dev/null >/dev/null 2>cid-in-use.err
echo "cid-in-use-exit: $?"
start 4
started 4 >/dev/null
qemu-system-x86_64 -accel nitro -M nitro -m 256M -smp 2 -nographic \
    -kernel "$eif" </dev/null >/dev/null 2>fifth.err
echo "fifth-exit: $?"
for n in 1 2 3 4; do
    echo "many-echo: $(cid_of $n) $(./vsock-cat $(cid_of $n) 5000 hi-$n)"
done
echo "free-with-four: $(hp) of $free0"
for n in 1 2 3 4; do kill -TERM "$(cat many$n.pid)"; done
for n in 1 2 3 4; do wait "$(cat many$n.pid)"; echo "many-exit: $?"; done
echo "free-after-four: $(hp) of $free0"
for f in qemu1.err qemu2.err many1.err many2.err many3.err many4.err; do
    sed "s/^/$f: /" $f
done
echo "cid-in-use-says: $(tr '\n' ' ' <cid-in-use.err)"
echo "fifth-says: $(tr '\n' ' ' <fifth.err)"
echo "too-big-says: $(tr '\n' ' ' <too-big.err)"
echo "console1-starts: $(head -c 200 console1.log | tr -c '[:print:]' ' ')"
'''


def accel_inside(check, qemu, qemu_eif, eif, vsock_cat, tmp):
    """Our -accel nitro in the parent, on the real driver"""
    script = os.path.join(tmp, 'accel.sh')
    with open(script, 'w', encoding='utf-8') as f:
        f.write(ACCEL_SCRIPT)
    pcr0 = subprocess.run([qemu_eif, 'describe', eif], capture_output=True,
                          text=True, check=False).stdout
    m = re.search(r'"PCR0": *"([0-9a-f]{96})"', pcr0)
    pcr0 = m.group(1) if m else None
    start = time.monotonic()
    # five cores: CPU 0's for the parent, four for the pool; huge pages
    # for four enclaves of 256 MiB and more
    p = subprocess.run([SCRIPT, '--qemu', qemu, '--with-qemu',
                        '--cpus', '10', '--memory', '3G',
                        '--copy', vsock_cat, '--copy', eif, '--copy', script,
                        '--', 'sh', 'accel.sh', os.path.basename(eif)],
                       capture_output=True, text=True, timeout=1500,
                       check=False)
    out, diag = p.stdout, p.stdout + p.stderr
    print(f'# our QEMU in the parent: {time.monotonic() - start:.0f} s')

    def val(name):
        m = re.search(rf'^{name}: (.*)$', out, re.M)
        return m.group(1).strip() if m else None

    check(val('echo1') == 'hello-from-the-parent',
          'our accelerator in the parent answered the heartbeat: the '
          'enclave\'s echo from the parent', diag)
    check(val('cid') == '16', 'its CID over QMP', diag)
    check(pcr0 and val('pcr0') == pcr0, 'its PCR0 over QMP', diag)
    check(val('poweroff-exit') == '0', 'its power-off ends QEMU', diag)
    free = val('free-after-poweroff') or ''
    check(re.fullmatch(r'(\d+) of \1', free), 'and frees its huge pages',
          diag)
    check(val('echo2') == 'hello-again' and val('quit-exit') == '0',
          'QMP quit ends QEMU', diag)
    free = val('free-after-quit') or ''
    check(re.fullmatch(r'(\d+) of \1', free),
          'and releases the slot: its huge pages are free', diag)
    check(val('console1') == '1', 'in debug mode its console reaches '
          'our QEMU in the parent (vsock CID 0, port 10016): Linux version',
          diag)
    check(val('too-big-exit') == '1' and
          re.search(r'does not fit in the free huge pages.*Reserve them as '
                    r'root with: echo \d+ > /sys/kernel/mm/hugepages/',
                    val('too-big-says') or ''),
          'too few huge pages are refused, with the fix', diag)
    many = re.findall(r'^many-echo: (\d+) (.*)$', out, re.M)
    cids = {c for c, _ in many}
    check(len(cids) == 4 and all(e == f'hi-{n}'
                                 for n, (_, e) in enumerate(many, 1)),
          'four enclaves at once, each with its CID, each answering',
          diag)
    check(val('cid-in-use-exit') == '1' and
          'is already used by another enclave' in
          (val('cid-in-use-says') or ''),
          'a CID in use is refused, and says so', diag)
    check(val('fifth-exit') == '1' and
          'no CPU is left in the CPU pool' in (val('fifth-says') or ''),
          'a fifth enclave is refused: no CPU is left in the pool', diag)
    free = val('free-with-four') or ''
    m = re.fullmatch(r'(\d+) of (\d+)', free)
    check(m and int(m.group(2)) - int(m.group(1)) == 4 * 128,
          'the four hold 4 x 256 MiB of huge pages', diag)
    exits = re.findall(r'^many-exit: (.*)$', out, re.M)
    free = val('free-after-four') or ''
    check(exits == ['0'] * 4 and re.fullmatch(r'(\d+) of \1', free),
          'SIGTERM ends each of them; all their huge pages are free', diag)


def real_enclave(check, qemu, qemu_eif, probe, tmp):
    """The sample image, booted by the device from the donated memory:
    its path, or None when it cannot be built"""
    p = subprocess.run([sys.executable,
                        os.path.join(HERE, 'enclave', 'build-image.py'),
                        '--qemu-eif', qemu_eif, '--out', tmp, '--test'],
                       capture_output=True, text=True, check=False)
    if p.returncode == 77:
        print(f'# the sample image cannot be built: {p.stderr.strip()}')
        return None
    check(p.returncode == 0, 'the sample image builds', p.stderr)
    if p.returncode:
        return None
    eif = p.stdout.strip()
    d = os.path.join(tmp, 'enclaves')
    os.mkdir(d)
    told = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    told.bind(os.path.join(d, 'parent.vsock_7000'))
    told.listen(1)
    proc = subprocess.Popen([SCRIPT, '--qemu', qemu, '--enclave-dir', d,
                             '--copy', probe, '--copy', eif, '--',
                             './ne-probe', os.path.basename(eif)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 900

    def wait_readable(sock):
        while time.monotonic() < deadline and proc.poll() is None:
            if select.select([sock], [], [], 1)[0]:
                return True
        return False

    def gateway(port):
        """a stream to the enclave's @port, through the device's backend"""
        while time.monotonic() < deadline and proc.poll() is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(os.path.join(d, 'enclave-16.vsock'))
                s.sendall(f'CONNECT {port}\n'.encode())
                if wait_readable(s) and s.recv(64).startswith(b'OK '):
                    return s
            except OSError:
                pass
            s.close()
            time.sleep(0.1)
        return None

    line = b''
    if wait_readable(told):
        conn, _ = told.accept()
        while not line.endswith(b'\n') and wait_readable(conn):
            data = conn.recv(64)
            if not data:
                break
            line += data
        conn.close()
    ok = check(line == b'echo ok\n', 'the parent answered the heartbeat of '
               'the enclave booted from the donated memory, got an echo '
               'from it, and told the host over vsock', f'got {line!r}')
    echo = b''
    s = gateway(5000) if ok else None
    if s:
        s.sendall(b'hello, enclave')
        while len(echo) < 14 and wait_readable(s):
            data = s.recv(64)
            if not data:
                break
            echo += data
    check(echo == b'hello, enclave', 'its echo server answers over vsock',
          f'got {echo!r}')
    s = gateway(5001) if echo else None
    if s:
        s.sendall(b'poweroff\n')
    try:
        out, err = proc.communicate(timeout=max(deadline - time.monotonic(),
                                                1))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    for step, what in [('heartbeat', 'the enclave reaches the parent at '
                        'CID 3: its heartbeat, from its CID'),
                       ('parent-echo', 'the parent reaches the enclave\'s '
                        'CID: echo')]:
        m = re.search(rf'^{step}: (.*)$', out, re.M)
        check(m and 'FAIL' not in m.group(1), what, out + err)
    m = re.search(r'^stopped: (.*)$', out, re.M)
    check(m and 'FAIL' not in m.group(1) and proc.returncode == 0,
          'its power-off is POLLHUP in the parent', out + err)
    return eif


RULES_MARK = '--- ne-rules'


def rule_outcomes(text):
    """{rule: outcome} of ne-rules' output, None if it did not finish"""
    rules = dict(re.findall(r'^([a-z0-9-]+): (.*)$', text, re.M))
    return rules if re.search(r'^end$', text, re.M) else None


def simulator_rules(check, rules_src, tmp, va_bits):
    """ne-rules on the simulator, as the parent is: {rule: outcome}"""
    lib = os.environ.get('NITRO_SIM_LIB')
    exe = os.path.join(tmp, 'ne-rules-sim')
    if not check(lib and os.path.exists(lib), 'the simulator is built',
                 f'NITRO_SIM_LIB is {lib!r}'):
        return None
    subprocess.run(['cc', '-O2', '-o', exe, rules_src], check=True)
    d = '/sys/kernel/mm/hugepages/hugepages-2048kB'
    try:
        with open(f'{d}/free_hugepages', encoding='ascii') as f:
            free = int(f.read())
        if free < 33:
            # 64 MiB and one page: the memory of ne-rules
            with open(f'{d}/nr_hugepages', encoding='ascii') as f:
                total = int(f.read())
            with open(f'{d}/nr_hugepages', 'w', encoding='ascii') as f:
                f.write(str(total + 33 - free))
    except OSError as e:
        check(False, 'ne-rules has 33 free huge pages on the host', str(e))
        return None
    sim_dir = os.path.join(tmp, 'sim')
    env = dict(os.environ, LD_PRELOAD=lib, NITRO_SIM_DIR=sim_dir,
               NITRO_SIM_CPUS='2-3', NITRO_SIM_TOPOLOGY='consecutive',
               NITRO_SIM_HOST_CPUS='4', NITRO_SIM_VA_BITS=va_bits)
    p = subprocess.run([exe], capture_output=True, text=True, env=env,
                       timeout=300, check=False)
    rules = rule_outcomes(p.stdout)
    check(rules is not None, 'ne-rules runs on the simulator',
          p.stdout + p.stderr)
    return rules


def compare_rules(check, real, sim):
    """the driver's outcomes against the simulator's"""
    listed = {}
    with open(os.path.join(HERE, 'parent', 'ne-rules-differences.txt'),
              encoding='utf-8') as f:
        for line in f:
            m = re.match(r'^([a-z0-9-]+): (.*)$', line)
            if m:
                listed[m.group(1)] = m.group(2)
    check(real.keys() == sim.keys(), 'ne-rules ran the same rules on the '
          'driver and on the simulator',
          f'only on the driver: {sorted(real.keys() - sim.keys())}, only on '
          f'the simulator: {sorted(sim.keys() - real.keys())}')
    same = [r for r in real if real[r] == sim.get(r)]
    differ = [f'{r}: driver "{real[r]}", simulator "{sim.get(r)}"'
              for r in real if r not in same and r not in listed]
    gone = [r for r in listed if r in same or r not in real]
    print(f'# ne-rules: {len(real)} rules; the simulator gives the '
          f'driver\'s outcome for {len(same)}, {len(real) - len(same)} are '
          'listed differences')
    check(not differ, 'the simulator gives the driver\'s outcome for every '
          'rule not listed in ne-rules-differences.txt', '\n'.join(differ))
    check(not gone, 'every listed difference is still one',
          f'the same now, or no such rule: {gone}')


def main():
    qemu = sys.argv[1]
    tap = Tap()

    def check(ok, what, diag):
        """a result, with its diagnosis only when it failed"""
        return tap(ok, what, '' if ok else diag)

    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, 'ne-probe')
        vsock_cat = os.path.join(tmp, 'vsock-cat')
        rules = os.path.join(tmp, 'ne-rules')
        for exe in [probe, vsock_cat, rules]:
            subprocess.run(['cc', '-static', '-O2', '-o', exe,
                            os.path.join(HERE, 'parent',
                                         os.path.basename(exe) + '.c')],
                           check=True)
        p = subprocess.run([SCRIPT, '--qemu', qemu, '--copy', probe,
                            '--copy', rules, '--',
                            'sh', '-c', 'ls -l /dev/nitro_enclaves && '
                            'cat /sys/module/nitro_enclaves/parameters/'
                            'ne_cpus && ./ne-probe; s=$?; '
                            'grep -qw la57 /proc/cpuinfo && b=56 || b=47; '
                            f'echo "{RULES_MARK} va-bits $b"; ./ne-rules; '
                            'exit $((s + 40))'],
                           capture_output=True, text=True, timeout=1500)
        if p.returncode == 77:
            print(f'1..0 # SKIP {p.stderr.strip()}')
            return 0
        out, _, rules_out = p.stdout.partition(RULES_MARK)
        diag = p.stdout + p.stderr
        check(re.search(r'^c\S+ .* /dev/nitro_enclaves$', out, re.M),
              'the real driver probed the device: /dev/nitro_enclaves', diag)
        check(re.search(r'^(2-3|2,3)$', out, re.M),
              'ne_cpus is the second core', diag)
        for step in ['open', 'create-vm', 'start-without-memory',
                     'set-user-memory-region', 'add-vcpu', 'image-load-info',
                     'start-without-image', 'start', 'stopped']:
            m = re.search(rf'^{step}: (.*)$', out, re.M)
            check(m and 'FAIL' not in m.group(1), f'ne-probe: {step}',
                  m.group(0) if m else diag)
        check(p.returncode == 40, 'COMMAND\'s exit status comes back',
              f'status {p.returncode}')
        real = rule_outcomes(rules_out)
        check(real is not None, 'ne-rules runs on the driver', diag)
        m = re.match(r' va-bits (\d+)', rules_out)
        sim = simulator_rules(check, os.path.join(HERE, 'parent',
                                                  'ne-rules.c'),
                              tmp, m.group(1) if m else '47')
        if real and sim:
            compare_rules(check, real, sim)
        m = re.search(r'driver ready after ([0-9.]+) s', p.stderr)
        if m:
            print(f'# start to driver ready: {m.group(1)} s')
        eif = real_enclave(check, qemu, sys.argv[2], probe, tmp) \
            if len(sys.argv) > 2 else None
        if eif:
            accel_inside(check, qemu, sys.argv[2], eif, vsock_cat, tmp)
    return tap.plan()


if __name__ == '__main__':
    sys.exit(main())
