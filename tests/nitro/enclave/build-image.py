#!/usr/bin/env python3
#
# Build the sample enclave image: a real Debian kernel and our init.
#
#   build-image.py --qemu-eif QEMU_EIF --out DIR [--cache DIR] [--test]
#                  [--arch x86_64|aarch64]
#
# The kernel is Debian's 6.12 cloud kernel from bookworm-backports
# (linux-image-6.12.*-cloud-amd64 or -arm64 with --arch aarch64, the
# default on an arm64 host: the first with the NSM driver nsm.ko,
# /dev/nsm), found and downloaded through the private apt configuration
# of scripts/nitro-parent-vm (download/apt-backports) for the host's
# architecture.  The package is downloaded with
# `apt-get download` (never installed) into the cache directory; only its
# vmlinuz and the modules that virtio-mmio, virtio-vsock and the NSM need
# (dependencies from their modinfo) are extracted.  The arm64 package
# of an amd64 host comes through a private apt configuration in
# download/apt-arm64 (the system's Debian archive and its backports,
# arm64 only; the system's apt setup is not changed).  init.c is compiled statically (by
# Debian's aarch64-linux-gnu-gcc for arm64 on another host) and packed
# with the modules into a newc initramfs whose entries have fixed owners
# and times, so the same package and sources always give the same image
# and PCRs.  qemu-eif packs the EIF with the official kernel command
# line of the architecture, plus cryptomgr.notests (no crypto self-tests:
# half of the kernel's boot under TCG) and, with --test, "nitro_test"
# (init's test commands).
#
# Prints the path of the EIF.  Exit status 77 (skip) with the reason when
# the kernel package cannot be had (no apt, no archive).
#
# Copyright (c) 2026 Nitro Enclaves for QEMU authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import fcntl
import glob
import importlib.machinery
import importlib.util
import lzma
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
# The tests run the copy in build/tree: cache in the checkout's download/
# all the same, so that build/tree stays the base plus the overlay
if os.path.basename(TOP) == 'tree' and \
   os.path.basename(os.path.dirname(TOP)) == 'build':
    TOP = os.path.dirname(os.path.dirname(TOP))
# Debian's name of the architecture, the official command line, the C
# compiler for a static init
ARCHES = {
    'x86_64': ('amd64', 'reboot=k panic=30 pci=off nomodules console=ttyS0 '
               'i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd '
               'random.trust_cpu=on', 'x86_64-linux-gnu-gcc'),
    'aarch64': ('arm64', 'reboot=k panic=30 pci=off nomodules console=ttyS0 '
                'random.trust_cpu=on root=/dev/ram0', 'aarch64-linux-gnu-gcc'),
}
HOST_ARCH = 'aarch64' if os.uname().machine == 'aarch64' else 'x86_64'
# The sample's own kernel options, for a faster boot under TCG: the
# crypto self-tests of every algorithm (crypto_algapi_init) are more than
# half of the instructions of Debian's kernel up to init
SAMPLE_OPTIONS = ' cryptomgr.notests'
# what init loads: the transport of the command-line devices, vsock and
# the NSM (/dev/nsm, for the attestation service); a module the package
# does not have is built in (or, for nsm, absent: no attestation)
WANTED = ['virtio_mmio', 'vmw_vsock_virtio_transport', 'nsm']
# where they and their dependencies are in the package
MODULE_DIRS = ['drivers/virtio', 'net/vmw_vsock', 'drivers/misc']
SKIP = 77


class Unavailable(Exception):
    """The kernel package cannot be had"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def apt_options(arch):
    """apt options for the packages of @arch: none for the host's; for
    another, a private configuration of the system's Debian archive for
    that architecture only (its lists fetched once)"""
    deb_arch = ARCHES[arch][0]
    if arch == HOST_ARCH:
        return []
    p = subprocess.run(['apt-cache', 'policy'], capture_output=True,
                       text=True, check=False)
    codename = uri = None
    with open('/etc/os-release', encoding='utf-8') as f:
        for line in f:
            if line.startswith('VERSION_CODENAME='):
                codename = line.split('=', 1)[1].strip().strip('"')
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 3 and f[2] == f'{codename}/main':
            uri = f[1]
            break
    if not uri:
        raise Unavailable(f'no Debian {codename} archive in the apt sources')
    apt_dir = os.path.join(TOP, 'download', f'apt-{deb_arch}')
    os.makedirs(os.path.join(apt_dir, 'lists', 'partial'), exist_ok=True)
    os.makedirs(os.path.join(apt_dir, 'cache', 'archives', 'partial'),
                exist_ok=True)
    os.makedirs(os.path.join(apt_dir, 'sources'), exist_ok=True)
    with open(os.path.join(apt_dir, 'sources', 'debian.list'), 'w',
              encoding='utf-8') as f:
        for suite in [codename, f'{codename}-backports']:
            f.write(f'deb [arch={deb_arch} signed-by=/usr/share/keyrings/'
                    f'debian-archive-keyring.gpg] {uri} {suite} main\n')
    opts = ['-o', 'Dir::Etc::SourceList=/dev/null',
            '-o', f'Dir::Etc::SourceParts={apt_dir}/sources',
            '-o', f'Dir::State::Lists={apt_dir}/lists',
            '-o', f'Dir::Cache={apt_dir}/cache',
            '-o', f'APT::Architectures::={deb_arch}']
    if not glob.glob(os.path.join(apt_dir, 'lists', '*backports*Packages*')):
        p = subprocess.run(['apt-get', *opts, '-q', 'update'],
                           capture_output=True, text=True, check=False)
        if p.returncode:
            raise Unavailable(f'apt-get update for {deb_arch} failed: '
                              f'{p.stderr.strip()}')
    return opts


def newest_kernel(opts, deb_arch='amd64'):
    """The newest linux-image-6.12.*-cloud-@deb_arch that apt with @opts
    knows"""
    def search():
        p = subprocess.run(['apt-cache', *opts, 'search', '--names-only',
                            rf'^linux-image-6\.12\..*-cloud-{deb_arch}$'],
                           capture_output=True, text=True, check=False)
        return [line.split()[0] for line in p.stdout.splitlines()]

    names = search()
    if not names:
        subprocess.run(['apt-get', *opts, '-q', 'update'],
                       capture_output=True, check=False)
        names = search()
    if not names:
        raise Unavailable(f'apt knows no linux-image-6.12.*-cloud-{deb_arch} '
                          '(no bookworm-backports?)')

    def key(name):
        v = name.split('-')[2].split('+')[0]
        return [int(x) for x in v.split('.') if x.isdigit()]
    return max(names, key=key)


def cloud_kernel(cache, arch):
    """The .deb of bookworm-backports' newest 6.12 cloud kernel for @arch
    in @cache (the one there, else downloaded: for the host's arch with
    scripts/nitro-parent-vm's apt configuration)"""
    deb_arch = ARCHES[arch][0]
    debs = sorted(glob.glob(os.path.join(
        cache, f'linux-image-6.12.*-cloud-{deb_arch}_*.deb')))
    if debs:
        return debs[-1]
    if arch != HOST_ARCH:
        opts = apt_options(arch)
        return download(newest_kernel(opts, deb_arch) + f':{deb_arch}',
                        cache, opts)
    # imported here: nitro-parent-vm imports this file
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        HERE))), 'scripts', 'nitro-parent-vm')
    loader = importlib.machinery.SourceFileLoader('nitro_parent_vm', path)
    parent_vm = importlib.util.module_from_spec(
        importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(parent_vm)
    try:
        opts = parent_vm.apt_opts()
        return download(newest_kernel(opts, deb_arch), cache, opts)
    except parent_vm.Unavailable as e:
        raise Unavailable(str(e)) from e


def download(pkg, cache, opts=()):
    """@pkg's .deb in @cache, downloaded once (apt-get with @opts)"""
    base = pkg.split(':')[0]
    debs = glob.glob(os.path.join(cache, base + '_*.deb'))
    if debs:
        return debs[0]
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        p = subprocess.run(['apt-get', *opts, 'download', pkg], cwd=tmp,
                           capture_output=True, text=True, check=False)
        debs = glob.glob(os.path.join(tmp, base + '_*.deb'))
        if p.returncode or not debs:
            raise Unavailable(f'apt-get download {pkg} failed: '
                              f'{p.stderr.strip()}')
        dest = os.path.join(cache, os.path.basename(debs[0]))
        os.rename(debs[0], dest)
    return dest


def extract(deb, dest, patterns):
    """Extract the members matching @patterns from the data of @deb"""
    fsys = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb],
                            stdout=subprocess.PIPE)
    run(['tar', '-x', '-C', dest, '--wildcards', *patterns],
        stdin=fsys.stdout)
    if fsys.wait():
        raise RuntimeError(f'dpkg-deb --fsys-tarfile {deb} failed')


def modinfo(data, key):
    """A field of a module's .modinfo section (NUL-separated key=value)"""
    for field in data.split(b'\0'):
        if field.startswith(key.encode() + b'='):
            return field[len(key) + 1:].decode()
    return None


def kernel_files(deb, work, wanted=WANTED, module_dirs=MODULE_DIRS):
    """vmlinuz and the modules to load, dependencies first, from @deb:
    the modules @wanted, found in @module_dirs

    The package has no modules.dep (depmod writes it at installation):
    the dependencies come from each module's own modinfo."""
    root = os.path.join(work, 'root')
    os.makedirs(root)
    extract(deb, root, ['./boot/vmlinuz-*'] +
            ['./lib/modules/*/kernel/' + d + '/*' for d in module_dirs])
    vmlinuz = glob.glob(os.path.join(root, 'boot', 'vmlinuz-*'))[0]
    mods = {}
    for path in glob.glob(os.path.join(root, 'lib', 'modules', '*', 'kernel',
                                       '**', '*.ko*'), recursive=True):
        if path.endswith('.xz'):
            with lzma.open(path) as f:
                data = f.read()
        else:
            with open(path, 'rb') as f:
                data = f.read()
        name = modinfo(data, 'name') or \
            os.path.basename(path).split('.ko')[0].replace('-', '_')
        mods[name] = data
    order = []

    def add(name):
        if name in order:
            return
        if name not in mods:
            raise RuntimeError(f'module {name} is not in {module_dirs}')
        for dep in filter(None, (modinfo(mods[name], 'depends') or
                                 '').split(',')):
            add(dep)
        order.append(name)

    for name in wanted:
        if name in mods:            # else built in
            add(name)
    return vmlinuz, [(name + '.ko', mods[name]) for name in order]


def cpio_newc(entries):
    """A newc archive of (name, mode, data); fixed owner, times, inodes"""
    out = bytearray()

    def add(ino, name, mode, data):
        nb = name.encode() + b'\0'
        hdr = ('070701' + '%08x' * 13) % (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0)
        out.extend(hdr.encode() + nb)
        out.extend(b'\0' * (-len(out) % 4))
        out.extend(data)
        out.extend(b'\0' * (-len(out) % 4))

    for i, (name, mode, data) in enumerate(entries, 1):
        add(i, name, mode, data)
    add(0, 'TRAILER!!!', 0, b'')
    return bytes(out)


def build(qemu_eif, out, cache, test, arch):
    os.makedirs(cache, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    name = ('enclave-test' if test else 'enclave') + \
        ('' if arch == 'x86_64' else '-' + arch) + '.eif'
    eif = os.path.join(out, name)
    _, official, compiler = ARCHES[arch]
    if arch == HOST_ARCH:
        compiler = 'cc'
    elif not shutil.which(compiler):
        raise Unavailable(f'no {compiler} (Debian package '
                          f'gcc-{compiler[:-4]}) to compile the init')
    with open(os.path.join(cache, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deb = cloud_kernel(cache, arch)
        stamp = f'{deb} {os.path.getmtime(os.path.join(HERE, "init.c"))} ' \
                f'{test}{SAMPLE_OPTIONS}\n'
        if os.path.exists(eif) and os.path.exists(eif + '.stamp'):
            with open(eif + '.stamp', encoding='utf-8') as f:
                if f.read() == stamp:
                    return eif
        with tempfile.TemporaryDirectory() as work:
            vmlinuz, modules = kernel_files(deb, work)
            init = os.path.join(work, 'init')
            run([compiler, '-static', '-O2', '-s', '-o', init,
                 os.path.join(HERE, 'init.c')])
            with open(init, 'rb') as f:
                init_data = f.read()
            entries = [('dev', 0o40755, b''), ('proc', 0o40755, b''),
                       ('sys', 0o40755, b''), ('init', 0o100755, init_data),
                       ('modules', 0o40755, b'')]
            entries += [('modules/' + n, 0o100644, d) for n, d in modules]
            order = ''.join(n + '\n' for n, _ in modules).encode()
            entries.append(('modules/order', 0o100644, order))
            initrd = os.path.join(work, 'initrd.cpio')
            with open(initrd, 'wb') as f:
                f.write(cpio_newc(entries))
            cmdline = official + SAMPLE_OPTIONS + \
                (' nitro_test' if test else '')
            env = dict(os.environ, SOURCE_DATE_EPOCH='0')
            run([qemu_eif, 'build', '--kernel', vmlinuz, '--initrd', initrd,
                 '--cmdline', cmdline, '--name', 'nitro-sample-enclave',
                 '--arch', arch,
                 '-o', eif + '.tmp'], env=env, stdout=subprocess.DEVNULL)
            os.rename(eif + '.tmp', eif)
        with open(eif + '.stamp', 'w', encoding='utf-8') as f:
            f.write(stamp)
    return eif


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--qemu-eif', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--cache', default=os.path.join(TOP, 'download',
                                                    'enclave-kernel'))
    ap.add_argument('--test', action='store_true')
    ap.add_argument('--arch', choices=sorted(ARCHES), default=HOST_ARCH)
    args = ap.parse_args()
    try:
        print(build(args.qemu_eif, args.out, args.cache, args.test,
                    args.arch))
    except Unavailable as e:
        print(f'build-image: the Debian kernel cannot be had: {e}',
              file=sys.stderr)
        sys.exit(SKIP)


if __name__ == '__main__':
    main()
