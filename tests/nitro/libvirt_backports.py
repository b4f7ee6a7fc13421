# A libvirt newer than Debian 12's, for the aarch64 domain of the libvirt
# tests (libvirt-test.py, libvirt-system-test.py), without touching the
# system.
#
# Debian 12's libvirt 9.0 passes -no-acpi, which QEMU 9.0 removed, to an
# aarch64 domain (it refuses ACPI there without UEFI); libvirt 11.3 from
# bookworm-backports passes -machine acpi=off, which the nitro machine
# accepts.  Installing it would upgrade the system's libvirt and systemd,
# so its packages are downloaded with apt-get through a private apt
# configuration (the Debian archive the system already uses, plus
# <codename>-backports) and unpacked with dpkg-deb under the build
# directory (build/libvirt-bpo/root), once: later runs reuse the tree.
# The tests show that tree over /usr (an overlay) in the private mount
# namespace where they run libvirt, so that libvirt finds its drivers,
# helpers and data at the paths it was built for.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import glob
import os
import shutil
import subprocess

# libvirt known to pass -machine acpi=off to an aarch64 domain
MIN_VERSION = '11.3'
# what virsh, libvirtd, virtlogd and the QEMU driver need of libvirt's
# packages; their other dependencies are in Debian 12 at the versions that
# its libvirt 9.0 installed
PACKAGES = ['libvirt0', 'libvirt-common', 'libvirt-clients',
            'libvirt-daemon', 'libvirt-daemon-common', 'libvirt-daemon-log',
            'libvirt-daemon-driver-qemu']


class Unavailable(Exception):
    """The newer libvirt cannot be had; the message says why."""


def _run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _older(version, than):
    return _run('dpkg', '--compare-versions', version, 'lt',
                than).returncode == 0


def needed(arch):
    """Whether the system's libvirt is too old for an @arch domain (on
    Debian: elsewhere the tests take the system's as it is)."""
    if arch != 'aarch64' or not shutil.which('dpkg-query'):
        return False
    res = _run('dpkg-query', '-W', '-f=${Version}', 'libvirt0')
    return res.returncode != 0 or _older(res.stdout, MIN_VERSION)


def _apt(top, *args, **kw):
    """apt-get or apt-cache on the private configuration under @top."""
    apt = os.path.join(top, 'apt')
    opts = ['-o', f'Dir::Etc::SourceList={apt}/sources.list',
            '-o', 'Dir::Etc::SourceParts=/dev/null',
            '-o', f'Dir::State::Lists={apt}/lists',
            '-o', f'Dir::Cache={apt}/cache',
            '-o', 'APT::Sandbox::User=root',
            '-o', 'Acquire::http::Timeout=30', '-o', 'Acquire::Retries=1']
    res = _run(args[0], *opts, *args[1:], **kw)
    if res.returncode:
        lines = res.stderr.strip().splitlines()
        why = [line for line in lines if line[:2] in ('E:', 'W:')] or \
            lines or ['?']
        raise Unavailable(f'{" ".join(args)}: {why[0]}')
    return res.stdout


def _fetch(top, root):
    with open('/etc/os-release') as f:
        codename = dict(line.rstrip('\n').split('=', 1) for line in f
                        if '=' in line).get('VERSION_CODENAME', '')
    # the Debian archive of the system's apt sources, as fetch-base.sh
    uri = ''
    for line in _run('apt-cache', 'policy').stdout.splitlines():
        words = line.split()
        if len(words) > 2 and words[2] == f'{codename}/main':
            uri = words[1]
            break
    if not codename or not uri:
        raise Unavailable('no Debian archive in the apt sources')
    apt = os.path.join(top, 'apt')
    for d in ('lists/partial', 'cache/archives/partial'):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, 'sources.list'), 'w') as f:
        f.write('deb [signed-by=/usr/share/keyrings/debian-archive-keyring'
                f'.gpg] {uri} {codename}-backports main\n')
    _apt(top, 'apt-get', '-q', '--error-on=any', 'update')
    version = ''
    for line in _apt(top, 'apt-cache', 'policy', 'libvirt0').splitlines():
        if line.strip().startswith('Candidate:'):
            version = line.split()[1]
    if version in ('', '(none)') or _older(version, MIN_VERSION):
        raise Unavailable(f'{codename}-backports has no libvirt >= '
                          f'{MIN_VERSION} ({version or "none"})')

    debs = os.path.join(top, 'debs')
    shutil.rmtree(debs, ignore_errors=True)
    os.makedirs(debs)
    _apt(top, 'apt-get', '-q', 'download',
         *[f'{p}={version}' for p in PACKAGES], cwd=debs)
    new = root + '.new'
    shutil.rmtree(new, ignore_errors=True)
    for deb in glob.glob(os.path.join(debs, '*.deb')):
        if _run('dpkg-deb', '-x', deb, new).returncode:
            raise Unavailable(f'dpkg-deb -x {deb} failed')

    # the system has the shared libraries it needs
    libdir = os.path.dirname(glob.glob(f'{new}/usr/lib/*/libvirt.so.0')[0])
    missing = set()
    for exe in ('usr/bin/virsh', 'usr/sbin/libvirtd', 'usr/sbin/virtlogd',
                'usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so'):
        for path in glob.glob(os.path.join(new, exe)):
            env = dict(os.environ, LD_LIBRARY_PATH=libdir)
            out = _run('ldd', path, env=env).stdout
            missing.update(line.split()[0] for line in out.splitlines()
                           if 'not found' in line)
    if missing:
        raise Unavailable(f'libvirt {version} needs libraries that are not '
                          f'installed: {" ".join(sorted(missing))}')
    # Shown over /usr, its driver modules replace the system's, which
    # the newer libvirt cannot load: an opaque directory hides them
    os.setxattr(os.path.join(libdir, 'libvirt'), 'trusted.overlay.opaque',
                b'y')
    with open(os.path.join(new, 'VERSION'), 'w') as f:
        f.write(version + '\n')
    shutil.rmtree(root, ignore_errors=True)
    os.rename(new, root)
    shutil.rmtree(debs, ignore_errors=True)


def tree(build_dir):
    """The unpacked packages (usr/, etc/) under @build_dir and their
    version, fetched on the first call; raises Unavailable."""
    top = os.path.join(build_dir, 'libvirt-bpo')
    root = os.path.join(top, 'root')
    if not os.path.exists(os.path.join(root, 'VERSION')):
        if os.geteuid() != 0:
            raise Unavailable('fetching it with apt-get needs root')
        _fetch(top, root)
    with open(os.path.join(root, 'VERSION')) as f:
        return root, f.read().strip()


def layer_copies(layers, scratch):
    """The commands that copy the directories @layers to a tmpfs mounted
    on the empty directory @scratch, as @scratch/0, @scratch/1...: the
    copies to use as overlay layers.  overlayfs refuses a lower layer
    inside another (ELOOP), as @root/var is inside /var when the checkout
    lives under /var; a copy on a file system of its own never is, and
    its path has no character that the mount options would split."""
    cmds = [['mount', '-t', 'tmpfs', 'tmpfs', scratch]]
    for i, layer in enumerate(layers):
        cmds.append(['cp', '-a', layer, os.path.join(scratch, str(i))])
    return cmds


def usr_overlay(root, scratch):
    """The commands that show @root's usr/ over /usr, through a copy on a
    tmpfs mounted on the empty directory @scratch (layer_copies)."""
    return layer_copies([os.path.join(root, 'usr')], scratch) + [
        ['mount', '-t', 'overlay', 'overlay', '-o',
         f'lowerdir={scratch}/0:/usr', '/usr']]
