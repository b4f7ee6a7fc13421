#!/usr/bin/env python3
#
# libvirt drives -M nitro: Debian's libvirt runs the domain XML of
# docs/system/nitro-domain-<arch>.xml on the Nitro Enclaves simulator.
#
# Nothing system-wide is touched: libvirt's embedded QEMU driver
# (qemu:///embed?root=DIR) keeps its configuration, state, sockets and
# logs under a temporary directory, inside virsh itself (no daemon).  It
# runs in a private mount namespace (for its own hugetlbfs mount) and in a
# user namespace where it is not uid 0, so that it does not look for the
# system's libvirt-qemu user, cgroups or /var/lib/libvirt.
#
# The XML is the documented one with only these changes: <emulator> is
# our build, <kernel> a test EIF, the console file is in the temporary
# directory, and <qemu:env> preloads the simulator.
#
# An aarch64 domain needs a newer libvirt than Debian 12's (see
# libvirt_backports.py): the test then runs bookworm-backports' libvirt,
# unpacked under the build directory and shown over /usr in the private
# mount namespace.
#
# Usage: libvirt-test.py ARCH, with QEMU_TEST_QEMU_BINARY, QEMU_EIF,
# NITRO_SIM_LIB and QEMU_BUILD_ROOT set.  Debian's libvirt is installed
# when missing (as root); when that is impossible, or the newer libvirt
# cannot be had, the test is skipped (exit status 77) with the reason on
# its output.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import glob
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import libvirt_backports
from qemu_test.nitro import reserve_hugepages, sim_events
from taptest import sample_eif, wait_for

QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0'
PACKAGES = ['libvirt-daemon', 'libvirt-daemon-driver-qemu', 'libvirt-clients']
SRC = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DOMAIN = 'nitro-app'
# what `echo '@@virsh' 'done@@'` prints, unlike virsh's echo of the command
END = '@@virsh done@@'


def skip(reason):
    print(f'SKIP: {reason}')
    print(f'nitro-libvirt: SKIP: {reason}', file=sys.stderr)
    sys.exit(77)


def diag(text):
    print(text)
    sys.stdout.flush()


def have_libvirt():
    return (shutil.which('virsh') and
            glob.glob('/usr/lib/*/libvirt/connection-driver/'
                      'libvirt_driver_qemu.so'))


def install_libvirt():
    """Return None when libvirt is there, else why it cannot be."""
    if have_libvirt():
        return None
    if os.geteuid() != 0:
        return ('libvirt is not installed and installing it needs root: '
                'apt-get install ' + ' '.join(PACKAGES))
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    cmd = ['apt-get', 'install', '-y', '--no-install-recommends'] + PACKAGES
    diag('installing ' + ' '.join(PACKAGES))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode:
        subprocess.run(['apt-get', 'update'], env=env, capture_output=True)
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode or not have_libvirt():
        return ('cannot install Debian\'s libvirt (' + ' '.join(PACKAGES) +
                '): ' + (res.stderr.strip().splitlines() or ['?'])[-1])
    return None


class Virsh:
    """One virsh shell on the embedded QEMU driver of @root, in private
    mount and user namespaces, fed command by command; with libvirt's
    packages unpacked in @libvirt_tree shown over /usr."""

    def __init__(self, root, hugetlbfs, home, libvirt_tree=None,
                 scratch=None):
        uri = f'qemu:///embed?root={root}'
        inner = ('mount -t hugetlbfs -o pagesize=2M none "$0" && exec '
                 'unshare --user --map-user=1000 --map-group=1000 '
                 'stdbuf -oL -eL virsh -q -c "$1"')
        if libvirt_tree:
            # through a copy on a tmpfs on @scratch: see usr_overlay
            inner = ' && '.join([shlex.join(cmd) for cmd in
                                 libvirt_backports.usr_overlay(libvirt_tree,
                                                               scratch)] +
                                [inner])
        env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
               'HOME': home, 'LC_ALL': 'C'}
        self.proc = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private',
             'sh', '-c', inner, hugetlbfs, uri],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=False, env=env)

    def __call__(self, *args, timeout=120):
        line = ' '.join(shlex.quote(a) for a in args)
        self.proc.stdin.write(f"{line}\necho '@@virsh' 'done@@'\n".encode())
        self.proc.stdin.flush()
        # virsh echoes each command after its prompt, and echo prints no
        # newline: read until the marker
        buf = b''
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while END.encode() not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f'virsh {line}: timed out: {buf!r}')
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f'virsh exited: {buf!r}')
            buf += chunk
        text = buf.decode(errors='replace').split(END)[0]
        out = [got for got in text.splitlines(keepends=True)
               if not got.startswith('virsh # ') and
               got.rstrip('\n') != line and
               ': info : ' not in got and ': warning : ' not in got]
        text = ''.join(out)
        diag(f'virsh {line}\n{text}')
        self.raw = buf.decode(errors='replace').split(END)[0]
        return text

    def qmp(self, command, **arguments):
        cmd = {'execute': command}
        if arguments:
            cmd['arguments'] = arguments
        self('qemu-monitor-command', DOMAIN, json.dumps(cmd))
        # the reply, wherever virsh's line editing put it
        m = re.search(r'\{"return":.*?"id":"libvirt-\d+"\}', self.raw)
        if m:
            return json.loads(m.group(0))['return']
        raise RuntimeError(f'{command}: {self.raw!r}')

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def qmp_or_none(virsh, command, **arguments):
    try:
        return virsh.qmp(command, **arguments)
    except RuntimeError:
        return None


def domain_xml(arch, emulator, eif, console, sim_lib, sim_dir, **env):
    """The documented XML, pointed at our build and the simulator."""
    ET.register_namespace('qemu', QEMU_NS)
    tree = ET.parse(os.path.join(SRC, 'docs', 'system',
                                 f'nitro-domain-{arch}.xml'))
    dom = tree.getroot()
    dom.find('devices/emulator').text = emulator
    dom.find('os/kernel').text = eif
    cl = dom.find(f'{{{QEMU_NS}}}commandline')
    for arg in cl:
        value = arg.get('value', '')
        if value.startswith('file,id=enclave-console,'):
            arg.set('value', f'file,id=enclave-console,path={console}')
    env.update(LD_PRELOAD=sim_lib, NITRO_SIM_DIR=sim_dir, NITRO_SIM_ARCH=arch)
    for name, value in env.items():
        ET.SubElement(cl, f'{{{QEMU_NS}}}env', name=name, value=value)
    return ET.tostring(dom, encoding='unicode')


QEMU_CONF = '''\
# A private configuration: the embedded driver runs unprivileged in a
# user namespace, so user and group are the caller's (uid 1000 there).
cgroup_controllers = [ ]
namespaces = [ ]
security_driver = "none"
stdio_handler = "file"
hugetlbfs_mount = "{hugetlbfs}"
'''


def run_domain(arch, emulator, qemu_eif, sim_lib, libvirt_tree):
    """Run the documented domain of @arch with the system's libvirt, or
    the one in @libvirt_tree; return (ok, message)."""
    tmp = tempfile.mkdtemp(prefix='nlv-')
    root = os.path.join(tmp, 'root')
    hugetlbfs = os.path.join(tmp, 'hugepages')
    sim_dir = os.path.join(tmp, 'sim')
    home = os.path.join(tmp, 'home')
    for d in (os.path.join(root, 'etc'), hugetlbfs, sim_dir, home):
        os.makedirs(d)
    with open(os.path.join(root, 'etc', 'qemu.conf'), 'w') as f:
        f.write(QEMU_CONF.format(hugetlbfs=hugetlbfs))
    eif = os.path.join(tmp, 'app.eif')
    described = sample_eif(qemu_eif, tmp, arch, eif)
    console = os.path.join(tmp, 'console.log')
    xml = os.path.join(tmp, 'domain.xml')
    with open(xml, 'w') as f:
        f.write(domain_xml(arch, emulator, eif, console, sim_lib, sim_dir))

    scratch = os.path.join(tmp, 'layers')
    os.makedirs(scratch)
    virsh = Virsh(root, hugetlbfs, home, libvirt_tree, scratch)
    try:
        virsh('define', xml)
        out = virsh('start', DOMAIN)
        log = ''
        for path in glob.glob(os.path.join(root, 'log', 'qemu', '*.log')):
            with open(path) as f:
                log = f.read()
        diag('libvirt started QEMU with:\n' + log)
        if 'error:' in out:
            return False, 'virsh start failed: ' + out
        if '-accel tcg' not in log or "needs -accel nitro" not in log:
            return False, 'libvirt\'s -accel tcg was not replaced'
        start = wait_for(lambda: sim_events(sim_dir, 'start'))
        if not start:
            return False, 'the simulated enclave did not start'
        cid = virsh.qmp('qom-get', path='/machine/nitro-vsock',
                        property='enclave-cid')
        if cid != start[0]['cid']:
            return False, f'CID {cid}, the simulator says {start[0]["cid"]}'
        # qom-get pcr0 fails ("still measuring") until the PCRs are ready
        pcr0 = wait_for(lambda: qmp_or_none(virsh, 'qom-get',
                                            path='/machine',
                                            property='pcr0'))
        want = described['Measurements']['PCR0']
        if pcr0.lower() != want.lower():
            return False, f'PCR0 {pcr0}, qemu-eif says {want}'
        if not start[0].get('debug'):
            return False, 'the enclave is not in debug mode'
        heartbeats = wait_for(lambda: [e for e in sim_events(sim_dir,
                                                             'heartbeat')
                                       if e['result'] == 'ok'])
        if not heartbeats:
            return False, 'no heartbeat: ' + str(sim_events(sim_dir,
                                                            'heartbeat'))

        def console_ok():
            if not os.path.exists(console):
                return False
            with open(console, 'rb') as f:
                return b'heartbeat ok' in f.read()
        if not wait_for(console_ok):
            return False, 'the console file has no "heartbeat ok"'
        if virsh('domstate', DOMAIN).strip() != 'running':
            return False, 'the domain is not running'

        # What an enclave cannot do fails, and the domain runs on
        out = virsh('suspend', DOMAIN)
        if 'an enclave cannot be paused' not in out:
            return False, 'virsh suspend did not fail: ' + out
        out = virsh('save', DOMAIN, os.path.join(tmp, 'saved'))
        if 'cannot be migrated' not in out:
            return False, 'virsh save did not fail: ' + out
        if virsh('domstate', DOMAIN).strip() != 'running':
            return False, 'the domain stopped running after suspend/save'
        if sim_events(sim_dir, 'stop'):
            return False, 'the enclave stopped after suspend/save'

        # virsh shutdown terminates the enclave
        virsh('shutdown', DOMAIN)
        if not wait_for(lambda: virsh('domstate', '--reason', DOMAIN).strip()
                        == 'shut off (shutdown)'):
            return False, 'virsh shutdown did not end in shut off (shutdown)'
        stops = wait_for(lambda: sim_events(sim_dir, 'stop'))
        if not stops or stops[0]['reason'] != 'fd-closed':
            return False, f'enclave not terminated by shutdown: {stops}'
        virsh('undefine', DOMAIN)

        # A boot failure is a crash, and <on_crash> applies
        with open(xml, 'w') as f:
            f.write(domain_xml(arch, emulator, eif, console, sim_lib, sim_dir,
                               NITRO_SIM_HEARTBEAT='bad'))
        virsh('define', xml)
        out = virsh('start', DOMAIN)
        if 'error:' in out:
            return False, 'virsh start failed: ' + out
        if not wait_for(lambda: 'crashed' in virsh('domstate', '--reason',
                                                   DOMAIN)):
            return False, 'a heartbeat failure did not end in crashed'
        virsh('destroy', DOMAIN)
        virsh('undefine', DOMAIN)
        return True, (f'CID {cid}, heartbeat ok, console, suspend and save '
                      'refused, shutdown, crash')
    finally:
        virsh.close()
        for pidfile in glob.glob(os.path.join(root, 'run', 'qemu', '*.pid')):
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                os.kill(pid, 9)
            except (OSError, ValueError):
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ('x86_64', 'aarch64'):
        print('usage: libvirt-test.py x86_64|aarch64', file=sys.stderr)
        return 2
    arch = sys.argv[1]
    emulator = os.environ.get('QEMU_TEST_QEMU_BINARY')
    qemu_eif = os.environ.get('QEMU_EIF')
    sim_lib = os.environ.get('NITRO_SIM_LIB')
    if not emulator or not qemu_eif or not sim_lib or \
       'QEMU_BUILD_ROOT' not in os.environ:
        skip('QEMU_TEST_QEMU_BINARY, QEMU_EIF, NITRO_SIM_LIB and '
             'QEMU_BUILD_ROOT are needed')
    if os.geteuid() != 0:
        skip('needs root: huge pages and a private hugetlbfs mount')
    if not shutil.which('unshare') or not shutil.which('stdbuf'):
        skip('needs unshare (util-linux) and stdbuf (coreutils)')
    reason = install_libvirt()
    if reason:
        skip(reason)
    libvirt_tree = None
    version = subprocess.run(['virsh', '--version'], capture_output=True,
                             text=True).stdout.strip()
    if libvirt_backports.needed(arch):
        try:
            libvirt_tree, version = libvirt_backports.tree(
                os.path.dirname(os.environ['QEMU_BUILD_ROOT']))
        except libvirt_backports.Unavailable as e:
            skip(f'libvirt {version} passes -no-acpi (removed from QEMU '
                 f'9.0) to an {arch} domain, and a libvirt >= '
                 f'{libvirt_backports.MIN_VERSION} cannot be had: {e}')
        version += f' (unpacked in {libvirt_tree})'
    reason = reserve_hugepages(256)
    if reason:
        skip(reason)
    diag('libvirt ' + version)
    try:
        ok, msg = run_domain(arch, os.path.realpath(emulator), qemu_eif,
                             sim_lib, libvirt_tree)
    except Exception as e:  # pylint: disable=broad-except
        ok, msg = False, f'{type(e).__name__}: {e}'
    print(f'{"PASS" if ok else "FAIL"}: {arch} domain: {msg}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
