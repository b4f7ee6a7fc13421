#!/usr/bin/env python3
#
# libvirt's system daemon runs an enclave, following the steps of
# docs/system/nitro.rst ("libvirt's system daemon"): `make install`, the
# users and directories that Debian's libvirt-daemon-system creates,
# qemu.conf, hugetlbfs mounted before libvirtd starts, virtlogd, the
# console and simulator directories owned by libvirt-qemu, the
# documented domain XML with the simulator's <qemu:env>, then virsh
# define, start, the CID and PCRs with qemu-monitor-command, a changed
# XML re-defined thanks to its <uuid>, destroy; then virt-install
# --import and virt-xml with the documented command lines.  QEMU runs as
# libvirt-qemu in its own mount namespace (its own /dev), its output goes
# through virtlogd.
#
# Installing libvirt-daemon-system would upgrade system packages here
# (systemd), so the test runs in a private root instead: in new mount
# and PID namespaces, /etc, /var and /usr/local are overlays whose
# changes stay in a temporary directory, /run is a tmpfs; the daemons
# die with the namespace.  Nothing of the system changes.  The install
# step of make install (scripts/fork/install.sh, on the build that meson
# made for this test, so that a mutant in the build is what runs) runs
# outside, into a DESTDIR that the private root's /usr/local shows.
#
# An aarch64 domain needs a newer libvirt than Debian 12's (see
# libvirt_backports.py): the private root then shows bookworm-backports'
# libvirt, unpacked under the build directory, over /usr and /etc, as if
# it were installed.
#
# Usage: libvirt-system-test.py ARCH, with QEMU_BUILD_ROOT set (the
# fork's build/obj: the checkout is two levels up).  TAP output; skipped
# (with the reason) without root, libvirt or huge pages, or when the
# newer libvirt that an aarch64 domain needs cannot be had.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import libvirt_backports
from qemu_test.nitro import reserve_hugepages, sim_events
from taptest import Tap, sample_eif, wait_for

# the checkout: this file is its scripts/fork/tests/libvirt-system-test.py
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0'
DOMAIN = 'nitro-app'
URI = 'qemu:///system'
SIM_LIB = '/usr/local/lib/nitro-sim/libnitro-sim.so'
SIM_DIR = '/var/lib/nitro-sim'
EIF = '/var/lib/nitro/app.eif'
CONSOLE = '/var/log/nitro/nitro-app.console'

# The qemu.conf of the chapter; on a parent instance group = "ne" (the
# group of /dev/nitro_enclaves).  A container has no writable cgroups.
QEMU_CONF = '''\
user = "libvirt-qemu"
group = "libvirt-qemu"
cgroup_device_acl = [
    "/dev/null", "/dev/full", "/dev/zero",
    "/dev/random", "/dev/urandom",
    "/dev/ptmx", "/dev/kvm",
    "/dev/nitro_enclaves"
]
cgroup_controllers = [ ]
'''

# printed at the end, unless the test turns out to be skipped
results = []
tap = Tap(out=results.append, max_diag=40)


def skip(reason):
    print(f'1..0 # SKIP {reason}')
    sys.exit(0)


def run(*cmd, check=True, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and res.returncode:
        raise RuntimeError(f'{" ".join(cmd)}: exit {res.returncode}: '
                           f'{res.stdout}{res.stderr}')
    return res


def virsh(*args):
    res = run('virsh', '-c', URI, *args, check=False, timeout=120)
    print(f'# virsh {" ".join(args)}: exit {res.returncode}')
    return res


def qmp(command, **arguments):
    cmd = {'execute': command}
    if arguments:
        cmd['arguments'] = arguments
    res = virsh('qemu-monitor-command', DOMAIN, json.dumps(cmd))
    if res.returncode:
        raise RuntimeError(res.stderr)
    return json.loads(res.stdout)['return']


def sim_env(arch):
    """The simulator's environment of the chapter; and the simulated host's
    arch when it is not this host's (an aarch64 domain on an x86 host)."""
    env = [('LD_PRELOAD', SIM_LIB), ('NITRO_SIM_DIR', SIM_DIR)]
    if arch != os.uname().machine:
        env.append(('NITRO_SIM_ARCH', arch))
    return env


def domain_xml(arch, memory_mib=None):
    """The documented XML with the simulator's <qemu:env> of the chapter."""
    ET.register_namespace('qemu', QEMU_NS)
    src = os.path.join(TOP, 'docs', 'system', f'nitro-domain-{arch}.xml')
    dom = ET.parse(src).getroot()
    cl = dom.find(f'{{{QEMU_NS}}}commandline')
    for name, value in sim_env(arch):
        ET.SubElement(cl, f'{{{QEMU_NS}}}env', name=name, value=value)
    if memory_mib:
        dom.find('memory').text = str(memory_mib)
    return ET.tostring(dom, encoding='unicode')


def make_install(tmp, top):
    """make install (PREFIX=/usr/local) of this build: what make install
    runs once make is done (the build itself, and make install with it,
    are tested by nitro-install; meson built what this test needs).
    Outside the private root, into a DESTDIR that becomes part of the
    private root's /usr/local."""
    res = run(os.path.join(top, 'scripts', 'fork', 'install.sh'),
              check=False, stdin=subprocess.DEVNULL, timeout=900,
              env=dict(os.environ, PREFIX='/usr/local',
                       DESTDIR=os.path.join(tmp, 'installed')))
    with open(os.path.join(tmp, 'make-install.log'), 'w') as f:
        f.write(f'exit {res.returncode}\n{res.stdout[-1500:]}'
                f'{res.stderr[-1500:]}')


def private_root(tmp, libvirt_tree):
    """Overlays over /etc, /var and /usr/local (with what make install
    installed), a tmpfs on /run; with @libvirt_tree, libvirt's packages
    unpacked there over /usr and /etc.  The layers that come from @tmp
    and @libvirt_tree, which may live anywhere (under /var, say, which
    overlayfs refuses as a layer over /var), are copied to the private
    /run first (libvirt_backports.layer_copies), and the overlays' upper
    and work directories are made there too."""
    run('mount', '-t', 'tmpfs', 'tmpfs', '/run')
    if libvirt_tree:
        os.makedirs('/run/nitro-usr')
        for cmd in libvirt_backports.usr_overlay(libvirt_tree,
                                                 '/run/nitro-usr'):
            run(*cmd)
    for d in ('/etc', '/var', '/usr/local'):
        name = d.replace('/', '-')
        up = '/run/nitro-upper' + name
        work = '/run/nitro-work' + name
        os.makedirs(up)
        os.makedirs(work)
        extras = [extra + d for extra in (libvirt_tree,
                                          os.path.join(tmp, 'installed'))
                  if extra and os.path.isdir(extra + d)]
        scratch = '/run/nitro-layers' + name
        os.makedirs(scratch)
        for cmd in libvirt_backports.layer_copies(extras, scratch):
            run(*cmd)
        lower = ':'.join([f'{scratch}/{i}' for i in range(len(extras))] +
                         [d])
        run('mount', '-t', 'overlay', 'overlay', '-o',
            f'lowerdir={lower},upperdir={up},workdir={work}', d)


def prepare(arch, tmp):
    """What the chapter asks for, before libvirtd starts."""
    with open(os.path.join(tmp, 'make-install.log')) as f:
        log = f.read()
    tap(log.startswith('exit 0') and
        os.path.exists(f'/usr/local/bin/qemu-system-{arch}'),
        f'make install puts qemu-system-{arch} in /usr/local/bin', log)

    # What Debian's libvirt-daemon-system creates (its postinst)
    run('addgroup', '--quiet', '--system', 'libvirt')
    run('addgroup', '--quiet', '--system', 'kvm')
    run('adduser', '--quiet', '--system', '--ingroup', 'kvm',
        '--disabled-password', '--home', '/var/lib/libvirt',
        '--no-create-home', 'libvirt-qemu')
    run('addgroup', '--quiet', '--system', 'libvirt-qemu')
    run('adduser', '--quiet', 'libvirt-qemu', 'libvirt-qemu')
    for d in ('/var/log/libvirt/qemu', '/var/lib/libvirt/qemu',
              '/var/cache/libvirt/qemu'):
        os.makedirs(d, exist_ok=True)
    with open('/etc/libvirt/qemu.conf', 'w') as f:
        f.write(QEMU_CONF)

    # hugetlbfs, mounted before libvirtd starts (it looks once)
    os.makedirs('/run/hugepages')
    run('mount', '-t', 'hugetlbfs', '-o', 'pagesize=2M', 'none',
        '/run/hugepages')

    # The image, the console's and the simulator's directories
    for d in ('/var/lib/nitro', '/var/log/nitro', SIM_DIR):
        os.makedirs(d, exist_ok=True)
    shutil.chown('/var/log/nitro', 'libvirt-qemu', 'libvirt-qemu')
    shutil.chown(SIM_DIR, 'libvirt-qemu', 'libvirt-qemu')
    return sample_eif('/usr/local/bin/qemu-eif', '/var/lib/nitro', arch, EIF,
                      'init.cpio')


def start_daemons():
    run('virtlogd', '--daemon')
    run('libvirtd', '--daemon')
    ok = wait_for(lambda: virsh('version').returncode == 0)
    tap(ok, "virtlogd and libvirt's system daemon (qemu:///system) run")
    return ok


def qemu_pid():
    path = f'/run/libvirt/qemu/{DOMAIN}.pid'
    with open(path) as f:
        return int(f.read().strip())


def run_domain(arch, described):
    xml = '/var/lib/nitro/nitro-app.xml'
    with open(xml, 'w') as f:
        f.write(domain_xml(arch))
    res = virsh('define', xml)
    tap(res.returncode == 0, 'virsh define', res.stdout + res.stderr)
    res = virsh('start', DOMAIN)
    if not tap(res.returncode == 0, 'virsh start', res.stdout + res.stderr):
        log = f'/var/log/libvirt/qemu/{DOMAIN}.log'
        if os.path.exists(log):
            with open(log) as f:
                print('# ' + f.read()[-2000:].replace('\n', '\n# '))
        return

    pid = qemu_pid()
    user = run('ps', '-o', 'user=', '-p', str(pid)).stdout.strip()
    tap(user == 'libvirt-qemu', 'QEMU runs as libvirt-qemu', user)
    tap(os.readlink(f'/proc/{pid}/ns/mnt') != os.readlink('/proc/self/ns/mnt'),
        'QEMU has its own mount namespace (its own /dev)')
    log = f'/var/log/libvirt/qemu/{DOMAIN}.log'
    with open(log) as f:
        text = f.read()
    tap('needs -accel nitro' in text,
        "QEMU's output reaches the domain log through virtlogd", text[-1500:])

    start = wait_for(lambda: sim_events(SIM_DIR, 'start'))
    tap(bool(start), 'the enclave started on the simulator')
    cid = qmp('qom-get', path='/machine/nitro-vsock', property='enclave-cid')
    tap(start and cid == start[0]['cid'],
        'virsh qemu-monitor-command reads the CID', f'{cid} vs {start}')
    want = described['Measurements']
    pcrs = {n: qmp('qom-get', path='/machine', property=n.lower())
            for n in ('PCR0', 'PCR1', 'PCR2')}
    tap(all(pcrs[n].lower() == want[n].lower() for n in pcrs),
        'virsh qemu-monitor-command reads the PCRs qemu-eif describes',
        f'{pcrs} vs {want}')

    def console():
        if not os.path.exists(CONSOLE):
            return False
        with open(CONSOLE, 'rb') as f:
            return b'heartbeat ok' in f.read()
    tap(wait_for(console), f'the debug console reaches {CONSOLE}')

    res = virsh('destroy', DOMAIN)
    stops = wait_for(lambda: sim_events(SIM_DIR, 'stop'))
    tap(res.returncode == 0 and stops and stops[0]['reason'] == 'fd-closed',
        'virsh destroy terminates the enclave', f'{res.stderr} {stops}')

    # The changed XML is defined again, over the same domain (its <uuid>)
    with open(xml, 'w') as f:
        f.write(domain_xml(arch, memory_mib=256))
    res = virsh('define', xml)
    dumped = virsh('dumpxml', DOMAIN).stdout
    tap(res.returncode == 0 and "<memory unit='KiB'>262144</memory>" in dumped,
        'a changed XML is re-defined over the domain',
        res.stdout + res.stderr)
    virsh('undefine', DOMAIN)


def virt_install_cmd(arch):
    """The virt-install command line of docs/system/nitro.rst."""
    console = '/var/log/nitro/nitro-vi.console'
    cmd = ['virt-install', '--connect', URI, '--name', 'nitro-vi',
           '--import', '--osinfo', 'detect=off,require=off',
           '--arch', arch, '--machine', 'nitro', '--virt-type', 'qemu',
           '--memory', '512', '--vcpus', '2',
           '--memorybacking', 'hugepages=on,source.type=memfd',
           '--boot', f'kernel={EIF}',
           '--controller', 'usb,model=none', '--memballoon', 'none',
           '--network', 'none', '--graphics', 'none', '--console', 'none',
           '--disk', 'none', '--events', 'on_reboot=destroy',
           '--xml', 'xpath.delete=./pm',
           '--qemu-commandline',
           '-accel nitro,debug-mode=on -device nitro-heartbeat '
           f'-chardev file,id=enclave-console,path={console} '
           '-device nitro-serial-vsock,chardev=enclave-console',
           '--noautoconsole']
    for name, value in sim_env(arch):
        cmd += ['--qemu-commandline', f'env={name}={value}']
    if arch == 'x86_64':
        cmd += ['--features', 'acpi=on',
                '--xml', "./clock/timer[@name='hpet']/@present=yes"]
    else:
        cmd += ['--features', 'acpi=off']
    return cmd


def run_virt_install(arch):
    if not shutil.which('virt-install'):
        tap(True, 'virt-install --import # SKIP virtinst is not installed')
        return
    res = run(*virt_install_cmd(arch), check=False, timeout=300)
    tap(res.returncode == 0 and
        virsh('domstate', 'nitro-vi').stdout.strip() == 'running',
        'virt-install --import creates and starts a nitro domain',
        res.stdout + res.stderr)
    starts = wait_for(lambda: sim_events(SIM_DIR, 'start')[1:])
    tap(len(starts) == 1 and starts[0]['mem_size'] == 512 << 20,
        'its enclave has 512 MiB', str(starts))
    virsh('destroy', 'nitro-vi')

    res = run('virt-xml', '--connect', URI, 'nitro-vi', '--edit',
              '--memory', 'memory=256,currentMemory=256', check=False)
    virsh('start', 'nitro-vi')
    starts = wait_for(lambda: sim_events(SIM_DIR, 'start')[2:])
    tap(res.returncode == 0 and len(starts) == 1 and
        starts[0]['mem_size'] == 256 << 20,
        'virt-xml --memory memory=256,currentMemory=256 gives it 256 MiB',
        res.stdout + res.stderr + str(starts))
    virsh('destroy', 'nitro-vi')
    virsh('undefine', 'nitro-vi')


def inside(arch, tmp, libvirt_tree):
    private_root(tmp, libvirt_tree)
    print(f'# libvirt {run("virsh", "--version").stdout.strip()}')
    described = prepare(arch, tmp)
    if start_daemons():
        run_domain(arch, described)
        run_virt_install(arch)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == '--inside':
        try:
            inside(*sys.argv[2:])
        except Exception as e:  # pylint: disable=broad-except
            tap(False, f'{type(e).__name__}: {e}')
        print('\n'.join(results))
        return tap.plan()

    arch = sys.argv[1] if len(sys.argv) == 2 else ''
    if arch not in ('x86_64', 'aarch64'):
        print('usage: libvirt-system-test.py x86_64|aarch64', file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        skip('needs root: a private root with mount namespaces')
    for tool in ('unshare', 'virsh', 'libvirtd', 'virtlogd', 'adduser'):
        if not shutil.which(tool):
            skip(f'{tool} is missing (Debian: libvirt-daemon, '
                 'libvirt-daemon-driver-qemu, libvirt-clients, adduser)')
    build = os.path.dirname(os.environ['QEMU_BUILD_ROOT'])
    libvirt_tree = ''
    if libvirt_backports.needed(arch):
        try:
            libvirt_tree = libvirt_backports.tree(build)[0]
        except libvirt_backports.Unavailable as e:
            version = run('virsh', '--version').stdout.strip()
            skip(f'libvirt {version} passes -no-acpi (removed from QEMU '
                 f'9.0) to an {arch} domain, and a libvirt >= '
                 f'{libvirt_backports.MIN_VERSION} cannot be had: {e}')
    reason = reserve_hugepages(256)
    if reason:
        skip(reason)
    top = os.path.dirname(build)
    tmp = tempfile.mkdtemp(prefix='nitro-lvsys-')
    try:
        make_install(tmp, top)
        # The namespace's init is a shell that waits for the test, and so
        # reaps the orphans: the daemons, QEMU, the simulator's processes
        # (libvirt >= 11 waits for QEMU's whole process group to go)
        res = subprocess.run(['unshare', '--mount', '--propagation',
                              'private', '--pid', '--fork', '--mount-proc',
                              'sh', '-c', '"$@" & wait $!', 'sh',
                              sys.executable, os.path.abspath(__file__),
                              '--inside', arch, tmp, libvirt_tree],
                             stdin=subprocess.DEVNULL, timeout=1200)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res.returncode


if __name__ == '__main__':
    sys.exit(main())
