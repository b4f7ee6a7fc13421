# A virtio-nsm driver over qtest: QEMU runs -M microvm with the device
# under -accel qtest, and this module drives its virtio-mmio transport
# as Linux's nsm.ko would, so that the device's requests and responses
# are tested without a guest.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import socket
import struct
import subprocess

import cbor2

from taptest import wait_for

# microvm's virtio-mmio transports
MMIO_BASE = 0xfeb00000
MMIO_STRIDE = 0x200
MMIO_COUNT = 24
VIRTIO_ID_NSM = 0x21
# Guest memory of the driver: rings, request and the 12 KiB response
DESC, AVAIL, USED, REQ, RESP = 0x10000, 0x11000, 0x12000, 0x20000, 0x30000
RESP_SIZE = 0x3000


class QTest:
    """QEMU under qtest, or the reason it did not start (self.error)"""

    def __init__(self, qemu, tmp, args):
        path = os.path.join(tmp, 'qtest.sock')
        if os.path.exists(path):
            os.unlink(path)
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(0.1)
        self.log = os.path.join(tmp, 'qemu.log')
        with open(self.log, 'w') as log:
            self.proc = subprocess.Popen(
                [qemu, '-M', 'microvm', '-accel', 'qtest', '-nodefaults',
                 '-display', 'none', '-m', '64M',
                 '-global', 'virtio-mmio.force-legacy=false',
                 '-qtest', f'unix:{path}', *args],
                stdout=log, stderr=log)
        self.sock = None
        self.error = None

        def connected():
            try:
                self.sock = srv.accept()[0]
                return True
            except socket.timeout:
                return self.proc.poll() is not None
        wait_for(connected, timeout=120)
        srv.close()
        if not self.sock:
            self.close()
            with open(self.log) as f:
                self.error = f.read().strip() or 'QEMU did not connect'
            return
        self.sock.settimeout(120)
        self.buf = b''

    def cmd(self, line):
        self.sock.sendall(line.encode() + b'\n')
        while True:
            while b'\n' not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise RuntimeError(f'QEMU closed qtest at {line!r}')
                self.buf += data
            reply, self.buf = self.buf.split(b'\n', 1)
            reply = reply.decode()
            if not reply.startswith('IRQ'):
                break
        if not reply.startswith('OK'):
            raise RuntimeError(f'{line!r}: {reply}')
        return reply

    def readl(self, addr):
        return int(self.cmd(f'readl 0x{addr:x}').split()[1], 16)

    def writel(self, addr, value):
        self.cmd(f'writel 0x{addr:x} 0x{value:x}')

    def read(self, addr, size):
        return bytes.fromhex(self.cmd(f'read 0x{addr:x} 0x{size:x}')
                             .split()[1][2:])

    def write(self, addr, data):
        self.cmd(f'write 0x{addr:x} 0x{len(data):x} 0x{data.hex()}')

    def close(self):
        if self.sock:
            self.sock.close()
        self.proc.kill()
        self.proc.wait()


class Nsm:
    """A virtio-nsm driver: one request and one response buffer at a
    time on its only queue, as Linux's nsm.ko does"""

    def __init__(self, qt):
        self.qt = qt
        self.base = None
        for i in range(MMIO_COUNT):
            base = MMIO_BASE + i * MMIO_STRIDE
            if (qt.readl(base) == 0x74726976 and
                    qt.readl(base + 8) == VIRTIO_ID_NSM):
                self.base = base
        if self.base is None:
            raise RuntimeError('no virtio-nsm on the virtio-mmio buses')
        if self.reg(0x4) != 2:
            raise RuntimeError('virtio-mmio is not version 2')
        self.set_reg(0x70, 0)
        self.set_reg(0x70, 1 | 2)
        self.set_reg(0x14, 1)
        if not self.reg(0x10) & 1:
            raise RuntimeError('no VIRTIO_F_VERSION_1')
        self.set_reg(0x24, 1)
        self.set_reg(0x20, 1)
        self.set_reg(0x24, 0)
        self.set_reg(0x20, 0)
        self.set_reg(0x70, 1 | 2 | 8)
        if not self.reg(0x70) & 8:
            raise RuntimeError('FEATURES_OK refused')
        self.set_reg(0x30, 0)
        if self.reg(0x34) < 2:
            raise RuntimeError('queue 0 is shorter than 2')
        self.set_reg(0x38, 2)
        for off, addr in ((0x80, DESC), (0x90, AVAIL), (0xa0, USED)):
            self.set_reg(off, addr)
            self.set_reg(off + 4, 0)
        self.set_reg(0x44, 1)
        self.set_reg(0x70, 1 | 2 | 4 | 8)
        self.idx = 0

    def reg(self, off):
        return self.qt.readl(self.base + off)

    def set_reg(self, off, value):
        self.qt.writel(self.base + off, value)

    def request(self, req):
        """The decoded response to the request @req (a Python object)"""
        data = cbor2.dumps(req)
        self.qt.write(REQ, data)
        self.qt.write(DESC, struct.pack('<QIHH', REQ, len(data), 0, 0) +
                      struct.pack('<QIHH', RESP, RESP_SIZE, 2, 0))
        self.idx = (self.idx + 2) & 0xffff
        self.qt.write(AVAIL, struct.pack('<HHHH', 0, self.idx, 0, 1))
        self.set_reg(0x50, 0)
        if not wait_for(lambda: struct.unpack(
                '<H', self.qt.read(USED + 2, 2))[0] == self.idx, timeout=60):
            raise RuntimeError('the device did not answer')
        used = self.qt.read(USED + 4, 16)
        length = [ln for i, ln in struct.iter_unpack('<II', used)
                  if i == 1][0]
        return cbor2.loads(self.qt.read(RESP, length))


def nsm_session(qemu, tmp, device, requests, args=()):
    """Start @qemu with @device (its options) and @args, send @requests;
    the responses, or the reason QEMU did not start"""
    qt = QTest(qemu, tmp, ['-device', device, *args])
    if qt.error:
        return qt.error
    try:
        nsm = Nsm(qt)
        return [nsm.request(r) for r in requests]
    except (OSError, RuntimeError) as e:
        # QEMU connects to qtest before it creates the devices
        if qt.proc.wait(timeout=120) is None:
            raise
        with open(qt.log) as f:
            return f.read().strip() or str(e)
    finally:
        qt.close()


def attestation(qemu, tmp, device, nonce=b'nonce-1', user_data=b'user',
                public_key=b'pk', args=()):
    got = nsm_session(qemu, tmp, device, [{'Attestation': {
        'nonce': nonce, 'user_data': user_data, 'public_key': public_key}}],
                      args)
    if isinstance(got, str):
        raise RuntimeError(got)
    return got[0]['Attestation']['document']
