# Signature sections of enclave images, for tests: the CBOR that the
# official builder writes (serde_cbor of [{"signing_certificate": [PEM
# bytes], "signature": bytes}]), and appending a section to an image.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import struct
import zlib

# A self-signed certificate for tests, in PEM
TEST_CERT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         'test-cert.pem')


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 256:
        return bytes([major << 5 | 24, n])
    return bytes([major << 5 | 25]) + struct.pack('>H', n)


def cbor_text(text):
    return cbor_head(3, len(text)) + text.encode()


def signature(pem):
    """A signature section's data with one entry for @pem"""
    cert = cbor_head(4, len(pem)) + b''.join(cbor_head(0, b) for b in pem)
    return (cbor_head(4, 1) + cbor_head(5, 2) +
            cbor_text('signing_certificate') + cert +
            cbor_text('signature') + cbor_head(2, 1) + b'\0')


def add_section(img, typ, data):
    """Append a section to an image and fix its CRC"""
    img = bytearray(img)
    count, = struct.unpack_from('>H', img, 26)
    struct.pack_into('>H', img, 26, count + 1)
    struct.pack_into('>Q', img, 28 + 8 * count, len(img))
    struct.pack_into('>Q', img, 28 + 256 + 8 * count, len(data))
    img += struct.pack('>HHQ', typ, 0, len(data)) + data
    struct.pack_into('>I', img, 544, zlib.crc32(img[:544] + img[548:]))
    return img


def sign(src, dst):
    """Write @src, signed with the test certificate, to @dst; return the
    certificate's PEM"""
    with open(TEST_CERT, 'rb') as f:
        pem = f.read()
    with open(src, 'rb') as f:
        img = f.read()
    with open(dst, 'wb') as f:
        f.write(add_section(img, 4, signature(pem)))
    return pem
