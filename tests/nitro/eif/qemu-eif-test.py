#!/usr/bin/env python3
#
# qemu-eif build/describe round trips, checked against an independent
# reading of the image and PCRs recomputed with hashlib.
#
# Copyright (c) 2026 Nitro Enclaves for QEMU contributors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import hashlib
import json
import os
import signal
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from eifsig import add_section, cbor_head, cbor_text, sign

QEMU_EIF = sys.argv[1]
CMDLINES = {
    'x86_64': 'reboot=k panic=30 pci=off nomodules console=ttyS0 '
              'i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd '
              'random.trust_cpu=on',
    'aarch64': 'reboot=k panic=30 pci=off nomodules console=ttyS0 '
               'random.trust_cpu=on root=/dev/ram0',
}
PCR2_ONE_RAMDISK = ('21b9efbc184807662e966d34f390821309eeac6802309798826296'
                    'bf3e8bec7c10edb30948c90ba67310f7b964fc500a')
TYPES = {1: 'kernel', 2: 'cmdline', 3: 'ramdisk', 4: 'signature',
         5: 'metadata'}


def run(*args, ok=True, stdin=None):
    # Nothing may block: a FIFO as input must be refused, not read
    p = subprocess.run([QEMU_EIF, *args], capture_output=True, stdin=stdin,
                       text=True, check=False, timeout=30)
    if ok and p.returncode != 0:
        sys.exit(f'qemu-eif {" ".join(args)} failed: {p.stderr}')
    if not ok:
        lines = p.stderr.splitlines()
        if p.returncode == 0 or len(lines) != 1 or p.stdout:
            sys.exit(f'qemu-eif {" ".join(args)}: expected one error line, '
                     f'got rc {p.returncode}, {p.stderr!r}, {p.stdout!r}')
        return lines[0]
    return p.stdout


def extend(data):
    return hashlib.sha384(bytes(48) + hashlib.sha384(data).digest()).hexdigest()


def parse(path):
    """Read an image independently of the library"""
    with open(path, 'rb') as f:
        img = f.read()
    magic, version, flags, _, _, _, count = struct.unpack_from('>4sHHQQHH',
                                                               img)
    assert magic == b'.eif', magic
    offsets = struct.unpack_from('>32Q', img, 28)
    sizes = struct.unpack_from('>32Q', img, 28 + 256)
    crc, = struct.unpack_from('>I', img, 544)
    assert crc == zlib.crc32(img[:544] + img[548:]), 'bad CRC'
    sections = []
    for i in range(count):
        typ, sflags, size = struct.unpack_from('>HHQ', img, offsets[i])
        assert sflags == 0 and size == sizes[i]
        data = img[offsets[i] + 12:offsets[i] + 12 + size]
        sections.append((TYPES[typ], offsets[i], size, data))
    return version, flags, crc, len(img), sections


def check(tmp, arch, n, cmdline=None, name=None):
    kernel = os.path.join(tmp, 'kernel')
    initrds = [os.path.join(tmp, f'initrd{i}') for i in range(n)]
    out = os.path.join(tmp, f'{arch}-{n}.eif')
    args = ['build', '--kernel', kernel, '--arch', arch, '-o', out]
    for i in initrds:
        args += ['--initrd', i]
    if cmdline is not None:
        args += ['--cmdline', cmdline]
    if name:
        args += ['--name', name, '--version', '7.1',
                 '--metadata', '{"owner": "test", "n": [1, 2]}']
    assert run(*args) == ''

    version, flags, crc, size, sections = parse(out)
    assert version == 4 and flags == (1 if arch == 'aarch64' else 0)
    assert [s[0] for s in sections] == \
        ['kernel', 'cmdline', 'metadata'] + ['ramdisk'] * n
    files = [open(p, 'rb').read() for p in [kernel] + initrds]
    want_cmdline = (CMDLINES[arch] if cmdline is None else cmdline).encode()
    assert sections[0][3] == files[0]
    assert sections[1][3] == want_cmdline
    assert [s[3] for s in sections[3:]] == files[1:]

    desc = json.loads(run('describe', out))
    assert desc['EifVersion'] == 4 and desc['Arch'] == arch
    assert desc['Size'] == size and desc['CheckCRC'] is True
    assert desc['CRC32'] == f'0x{crc:08x}'
    assert desc['IsSigned'] is False
    assert desc['Cmdline'] == want_cmdline.decode()
    assert desc['Sections'] == [{'Type': s[0], 'Offset': s[1], 'Size': s[2]}
                                for s in sections]
    boot = files[0] + want_cmdline + files[1]
    pcrs = desc['Measurements']
    assert pcrs['PCR0'] == extend(boot + b''.join(files[2:])), pcrs
    assert pcrs['PCR1'] == extend(boot)
    assert pcrs['PCR2'] == extend(b''.join(files[2:]))
    assert 'PCR8' not in pcrs
    if n == 1:
        assert pcrs['PCR2'] == PCR2_ONE_RAMDISK
    meta = desc['Metadata']
    assert meta == json.loads(sections[2][3])
    assert meta['BuildMetadata']['BuildTool'] == 'qemu-eif'
    if name:
        assert meta['ImageName'] == name and meta['ImageVersion'] == '7.1'
        assert meta['CustomMetadata'] == {'owner': 'test', 'n': [1, 2]}
    else:
        assert meta['ImageName'] == f'{arch}-{n}'
    with open(out, 'rb') as f:
        assert json.loads(run('describe', '-', stdin=f)) == desc
    return out


def corrupt(tmp, good, offset, data, expected):
    with open(good, 'rb') as f:
        img = bytearray(f.read())
    img[offset:offset + len(data)] = data
    bad = os.path.join(tmp, 'bad.eif')
    with open(bad, 'wb') as f:
        f.write(img)
    err = run('describe', bad, ok=False)
    assert expected in err, (expected, err)


def flip(tmp, good, offset, expected):
    """corrupt() with the byte at @offset inverted: random data may already
    hold any given value there."""
    with open(good, 'rb') as f:
        byte = f.read()[offset]
    corrupt(tmp, good, offset, bytes([byte ^ 0xff]), expected)


def truncate(tmp, good, size, expected):
    with open(good, 'rb') as f:
        img = f.read()[:size]
    bad = os.path.join(tmp, 'bad.eif')
    with open(bad, 'wb') as f:
        f.write(img)
    err = run('describe', bad, ok=False)
    assert expected in err, (expected, err)


def signed(tmp, good):
    """PCR8 of a signed image; a malformed signature section"""
    path = os.path.join(tmp, 'signed.eif')
    pem = sign(good, path)
    with open(good, 'rb') as f:
        img = f.read()
    desc = json.loads(run('describe', path))
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    assert desc['IsSigned'] is True
    assert desc['SignatureCheck'] is True, desc
    assert desc['Measurements']['PCR8'] == extend(der), desc
    assert desc['Sections'][-1]['Type'] == 'signature'

    # No signing certificate: rejected with the validator's message
    sig = cbor_head(4, 1) + cbor_head(5, 1) + cbor_text('signature') + \
        cbor_head(2, 1) + b'\0'
    with open(path, 'wb') as f:
        f.write(add_section(img, 4, sig))
    err = run('describe', path, ok=False)
    assert err.endswith(f'{path}: section {len(desc["Sections"]) - 1} '
                        f'(signature) at offset {len(img)}: entry 0 has no '
                        'signing_certificate'), err


def not_regular(tmp, kernel, initrd):
    """FIFOs, directories and devices are refused, never read"""
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    out = os.path.join(tmp, 'x.eif')
    for path, kind in [(fifo, 'is a FIFO'), (tmp, 'is a directory'),
                       ('/dev/null', 'is a character device')]:
        for args, expected in [
                (['build', '--kernel', path, '--initrd', initrd, '-o', out],
                 f'kernel: {path}: {kind}'),
                (['build', '--kernel', kernel, '--initrd', initrd,
                  '--initrd', path, '-o', out], f'ramdisk: {path}: {kind}'),
                (['describe', path], f'{path}: {kind}')]:
            err = run(*args, ok=False)
            assert err.endswith(expected), (err, expected)
            assert not os.path.exists(out)
    os.unlink(fifo)
    assert_no_temp(tmp)


def wrong_arch_kernel(tmp, initrd):
    """A kernel of the other architecture: refused by build; an image that
    holds one anyway is refused by describe (and so by its loaders)"""
    arm = bytearray(os.urandom(300000))
    arm[0x202:0x206] = b'\0\0\0\0'
    arm[0x38:0x3c] = b'ARM\x64'
    kernel = os.path.join(tmp, 'arm64-Image')
    with open(kernel, 'wb') as f:
        f.write(arm)
    out = os.path.join(tmp, 'mixed.eif')
    err = run('build', '--kernel', kernel, '--initrd', initrd,
              '--arch', 'x86_64', '-o', out, ok=False)
    assert f"kernel '{kernel}' is a Linux kernel for aarch64, not x86_64" \
        in err, err
    assert not os.path.exists(out)
    run('build', '--kernel', kernel, '--initrd', initrd, '--arch', 'aarch64',
        '-o', out)
    with open(out, 'rb') as f:
        img = bytearray(f.read())
    struct.pack_into('>H', img, 6, 0)   # flags: x86_64
    struct.pack_into('>I', img, 544, zlib.crc32(img[:544] + img[548:]))
    with open(out, 'wb') as f:
        f.write(img)
    err = run('describe', out, ok=False)
    assert 'section 0 (kernel) is a Linux kernel for aarch64 in an image ' \
        'for x86_64' in err, err
    os.unlink(out)


def metadata_json(tmp, kernel, initrd):
    """describe prints JSON for any metadata section"""
    out = os.path.join(tmp, 'meta.eif')
    run('build', '--kernel', kernel, '--initrd', initrd, '-o', out)
    with open(out, 'rb') as f:
        img = f.read()
    _, _, _, _, sections = parse(out)
    meta_offset = sections[2][1]
    for text, error in [(b'{"a": 1e999}', 'the number at $.a is out of range'),
                        (b'[-1e400]', 'the number at $[0] is out of range'),
                        (b'{"a": ', 'JSON parse error'),
                        (b'not json', 'JSON parse error'),
                        (b'{"a": "\xff"}', 'JSON parse error'),
                        (b'{}\0', 'NUL byte')]:
        # Replace the metadata section (the last before the ramdisk)
        before = img[:meta_offset]
        after = img[sections[3][1]:]
        count, = struct.unpack_from('>H', img, 26)
        new = bytearray(before + struct.pack('>HHQ', 5, 0, len(text)) + text +
                        after)
        delta = len(text) - sections[2][2]
        struct.pack_into('>Q', new, 28 + 256 + 8 * 2, len(text))
        for i in range(3, count):
            struct.pack_into('>Q', new, 28 + 8 * i, sections[i][1] + delta)
        struct.pack_into('>I', new, 544, zlib.crc32(new[:544] + new[548:]))
        bad = os.path.join(tmp, 'bad-meta.eif')
        with open(bad, 'wb') as f:
            f.write(new)
        desc = json.loads(run('describe', bad))
        assert desc['Metadata'] is None, desc
        assert error in desc['MetadataError'], (error, desc['MetadataError'])
        assert desc['Measurements']['PCR0']
    os.unlink(bad)
    os.unlink(out)


def assert_no_temp(tmp):
    temps = [f for f in os.listdir(tmp) if f.startswith('.')]
    assert not temps, temps


def failed_build(tmp, kernel, initrd):
    """A build that fails leaves the previous output as it was"""
    out = os.path.join(tmp, 'previous.eif')
    with open(out, 'wb') as f:
        f.write(b'previous')
    for bad in (['--initrd', initrd + '.missing'], ['--initrd', tmp]):
        run('build', '--kernel', kernel, '--initrd', initrd, *bad, '-o', out,
            ok=False)
        with open(out, 'rb') as f:
            assert f.read() == b'previous'
        assert_no_temp(tmp)
    os.unlink(out)


def default_signals():
    """The three signals' default actions: a test run under nohup would
    otherwise start the build with SIGHUP ignored, which it keeps"""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def interrupted_build(tmp, initrd):
    """A build killed by SIGINT, SIGTERM or SIGHUP leaves no file.

    The image is written to a tmpfs where there is one, so that a build
    that is not interrupted in time does not write gigabytes to disk."""
    big = os.path.join(tmp, 'big')
    with open(big, 'wb') as f:
        f.truncate(4 << 30)
    shm = '/dev/shm' if os.path.isdir('/dev/shm') else None
    with tempfile.TemporaryDirectory(dir=shm) as outdir:
        out = os.path.join(outdir, 'big.eif')
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            p = subprocess.Popen([QEMU_EIF, 'build', '--kernel', big,
                                  '--initrd', initrd, '-o', out],
                                 stderr=subprocess.PIPE,
                                 preexec_fn=default_signals)
            # Interrupt it once it writes its temporary file
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                temps = [f for f in os.listdir(outdir)
                         if f.startswith('.big.eif.')]
                if temps and os.path.getsize(os.path.join(outdir, temps[0])):
                    break
                assert p.poll() is None, 'the build ended before the signal'
                time.sleep(0.001)
            p.send_signal(sig)
            p.wait(timeout=300)
            p.stderr.close()
            assert p.returncode == -sig, (sig, p.returncode)
            assert not os.path.exists(out), sig
            assert_no_temp(outdir)
    os.unlink(big)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, 'kernel'), 'wb') as f:
            f.write(os.urandom(300000))
        for i in range(3):
            with open(os.path.join(tmp, f'initrd{i}'), 'wb') as f:
                f.write(os.urandom(100000 + i))

        for arch in ('x86_64', 'aarch64'):
            for n in (1, 2, 3):
                good = check(tmp, arch, n)
        check(tmp, 'x86_64', 2, cmdline='console=ttyS0 quiet', name='app')
        check(tmp, 'aarch64', 1, cmdline='', name='app')

        # Corrupted images: one line, the right message
        corrupt(tmp, good, 0, b'EIF.', 'bad magic')
        corrupt(tmp, good, 4, b'\x00\x09', 'unsupported version 9')
        flip(tmp, good, 1000, 'CRC mismatch')
        corrupt(tmp, good, 548, b'\x00\x07', 'section 0 at offset 548 has '
                'unknown type 7')
        truncate(tmp, good, 1000, 'beyond the end of the image at 1000')
        truncate(tmp, good, 100, 'image of 100 bytes is smaller than the '
                 '548-byte header')

        # Bad arguments
        kernel = os.path.join(tmp, 'kernel')
        initrd = os.path.join(tmp, 'initrd0')
        out = os.path.join(tmp, 'x.eif')
        for args, expected in [
                ([], 'expected a command'),
                (['frobnicate'], 'expected a command'),
                (['build', '--kernel', kernel, '-o', out], 'at least one'),
                (['build', '--bogus'], "unknown option '--bogus'"),
                (['build', '--kernel'], "option '--kernel' needs an argument"),
                (['build', '--kernel', kernel, '--initrd', initrd,
                  '--arch', 'mips', '-o', out], "unknown architecture 'mips'"),
                (['build', '--kernel', kernel, '--initrd', initrd,
                  '--metadata', '[1]', '-o', out], 'not a JSON object'),
                (['build', '--kernel', kernel, '--initrd', initrd,
                  '--metadata', '{', '-o', out], '--metadata: '),
                (['build', '--kernel', kernel + '.missing', '--initrd',
                  initrd, '-o', out], 'kernel: cannot open'),
                (['build', '--kernel', kernel, '--initrd', tmp, '-o', out],
                 f'ramdisk: {tmp}: is a directory'),
                (['build', '--kernel', kernel, '--initrd', initrd,
                  '--metadata', '{"a": [1, {"b": 1e999}]}', '-o', out],
                 '--metadata: the number at $.a[1].b is out of range'),
                (['build', '--kernel', kernel, '--initrd', initrd,
                  '--metadata', '@' + tmp, '-o', out],
                 f'--metadata: {tmp}: is a directory'),
                (['build', '--kernel', kernel, '--initrd', initrd,
                  '-o', kernel], 'is also an input'),
                (['describe'], 'describe takes one image file'),
                (['describe', out], 'cannot open'),
        ]:
            err = run(*args, ok=False)
            assert expected in err, (args, expected, err)
            assert not os.path.exists(out), args
        assert os.path.getsize(kernel) == 300000

        signed(tmp, good)
        not_regular(tmp, kernel, initrd)
        metadata_json(tmp, kernel, initrd)
        wrong_arch_kernel(tmp, initrd)
        failed_build(tmp, kernel, initrd)
        interrupted_build(tmp, initrd)
    print('qemu-eif: all checks passed')


main()
