#!/usr/bin/env python3
#
# -M nitro-enclave loads an EIF made by qemu-eif without writing any file:
# QEMU runs with HOME pointing at an empty private directory, which must
# still be empty afterwards, and TMPDIR at a directory that does not exist
# (the old loader failed there: it wrote the kernel and the initrd to
# temporary files, and removed them once loaded).
#
# The machine cannot start here: it needs a vhost-user vsock backend.  Its
# devices are created after the EIF is loaded, so the test stops there,
# without the 'vsock' machine option: getting the vsock error proves that
# the EIF was validated and measured and that the x86 Linux loader read
# the kernel and the initrd (from memfds) and put them into fw_cfg.  Bad
# images must fail at loading with the library's errors.
#
# Copyright (c) 2026 Nitro Enclaves for QEMU contributors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import struct
import subprocess
import sys
import tempfile

QEMU_EIF, QEMU = sys.argv[1], sys.argv[2]
FIRMWARE = None
VSOCK_ERROR = 'A valid chardev id for vhost-user-vsock device must be provided'


def bzimage():
    """A kernel that the x86 Linux loader accepts (boot protocol 2.15)"""
    img = bytearray(os.urandom(64 * 1024))
    img[0x1f1] = 4                               # setup_sects
    img[0x202:0x206] = b'HdrS'
    img[0x206:0x208] = struct.pack('<H', 0x020f)
    img[0x211] = 0x01                            # LOADED_HIGH
    img[0x228:0x22c] = bytes(4)
    img[0x236:0x238] = bytes(2)                  # xloadflags
    return bytes(img)


def qemu(private, firmware, *args):
    # TMPDIR does not even exist: creating a temporary file fails (even
    # for root, whom permissions would not stop), and whatever QEMU might
    # write (say to HOME) would appear in the empty private directory
    env = dict(os.environ, TMPDIR=os.path.join(private, 'missing'),
               HOME=private)
    p = subprocess.run([QEMU, '-M', 'nitro-enclave', '-m', '256M',
                        '-nodefaults', '-display', 'none', '-L', firmware,
                        *args],
                       capture_output=True, text=True, env=env, timeout=30,
                       check=False)
    left = os.listdir(private)
    if left:
        sys.exit(f'files appeared in the private directory: {left} '
                 f'({args})')
    return p.returncode, p.stderr


def expect(private, args, message):
    rc, err = qemu(private, FIRMWARE, *args)
    if rc == 0 or message not in err:
        sys.exit(f'{args}: expected "{message}", got rc {rc}: {err}')
    print(f'ok: {message}')


def main():
    global FIRMWARE
    with tempfile.TemporaryDirectory() as tmp:
        private = os.path.join(tmp, 'private')
        os.mkdir(private)
        # Stand-ins for the firmware that the +ds source does not ship:
        # the machine loads them, nothing runs them
        FIRMWARE = os.path.join(tmp, 'firmware')
        os.mkdir(FIRMWARE)
        for name, size in (('qboot.rom', 64 * 1024),
                           ('linuxboot_dma.bin', 512), ('pvh.bin', 512)):
            with open(os.path.join(FIRMWARE, name), 'wb') as f:
                f.write(bytes(size))
        files = {}
        for name, data in (('kernel', bzimage()),
                           ('initrd', os.urandom(100000)),
                           ('initrd2', os.urandom(5000)),
                           ('extra', os.urandom(3000))):
            files[name] = os.path.join(tmp, name)
            with open(files[name], 'wb') as f:
                f.write(data)

        eif = os.path.join(tmp, 'app.eif')
        arm = os.path.join(tmp, 'arm.eif')
        for out, arch in ((eif, 'x86_64'), (arm, 'aarch64')):
            subprocess.run([QEMU_EIF, 'build', '--kernel', files['kernel'],
                            '--initrd', files['initrd'],
                            '--initrd', files['initrd2'], '--arch', arch,
                            '-o', out], check=True)

        # Loaded (with -initrd and -append as well), then stopped by vsock
        expect(private, ['-kernel', eif], VSOCK_ERROR)
        expect(private, ['-kernel', eif, '-initrd', files['extra'],
                         '-append', 'quiet'], VSOCK_ERROR)

        # Rejected at loading
        expect(private, ['-kernel', arm], 'is built for aarch64')
        with open(eif, 'rb') as f:
            img = bytearray(f.read())
        img[2000] ^= 0xff
        bad = os.path.join(tmp, 'bad.eif')
        with open(bad, 'wb') as f:
            f.write(img)
        expect(private, ['-kernel', bad], f"EIF '{bad}': CRC mismatch")
        with open(bad, 'wb') as f:
            f.write(img[:5000])
        expect(private, ['-kernel', bad], 'beyond the end of the image at '
               '5000')
        expect(private, ['-kernel', files['kernel']], 'bad magic')
        expect(private, ['-kernel', eif, '-initrd', bad + '.missing'],
               f"initrd: cannot open '{bad}.missing'")

        # Not regular files: refused, never read (a FIFO would block)
        fifo = os.path.join(tmp, 'fifo')
        os.mkfifo(fifo)
        for path, kind in ((fifo, 'is a FIFO'), (tmp, 'is a directory'),
                           ('/dev/null', 'is a character device')):
            expect(private, ['-kernel', path], f'{path}: {kind}')
            expect(private, ['-kernel', eif, '-initrd', path],
                   f'initrd: {path}: {kind}')
    print('nitro-enclave: EIF loading checks passed')


main()
