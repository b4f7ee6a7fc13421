# Signature sections of enclave images, for tests, made here with
# Python's cryptography, independently of qemu-eif: the CBOR that the
# official builder writes (serde_cbor of [{"signing_certificate": [PEM
# bytes], "signature": [COSE_Sign1 bytes]}]), the COSE_Sign1 of PCR0
# (untagged [protected {1: alg}, {}, payload, r || s]), and appending a
# section to an image.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import datetime
import hashlib
import struct
import zlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature
from cryptography.x509.oid import NameOID

# The curves that sign images: COSE algorithm, digest, size of r and s
CURVES = {'P-384': (ec.SECP384R1(), -35, hashes.SHA384(), 48),
          'P-256': (ec.SECP256R1(), -7, hashes.SHA256(), 32)}


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 256:
        return bytes([major << 5 | 24, n])
    if n < 65536:
        return bytes([major << 5 | 25]) + struct.pack('>H', n)
    return bytes([major << 5 | 26]) + struct.pack('>I', n)


def cbor_text(text):
    return cbor_head(3, len(text)) + text.encode()


def cbor_bytes(data):
    return cbor_head(2, len(data)) + data


def cbor_byte_values(data):
    """A Vec<u8> as serde_cbor writes it: an array of byte values"""
    return cbor_head(4, len(data)) + b''.join(cbor_head(0, b) for b in data)


def sections(img):
    """(type, offset, data) of each section of @img"""
    count, = struct.unpack_from('>H', img, 26)
    offsets = struct.unpack_from('>32Q', img, 28)
    out = []
    for i in range(count):
        typ, _, size = struct.unpack_from('>HHQ', img, offsets[i])
        out.append((typ, offsets[i],
                    img[offsets[i] + 12:offsets[i] + 12 + size]))
    return out


def pcr0(img):
    """PCR0: kernel, cmdline and ramdisks in file order"""
    h = hashlib.sha384()
    for typ, _, data in sections(img):
        if typ in (1, 2, 3):
            h.update(data)
    return hashlib.sha384(bytes(48) + h.digest()).digest()


def pcr0_payload(value):
    """PcrInfo { register_index: 0, register_value: PCR0 }, serde_cbor"""
    return (cbor_head(5, 2) + cbor_text('register_index') + cbor_head(0, 0) +
            cbor_text('register_value') + cbor_byte_values(value))


def sig_structure(prot, payload):
    return (cbor_head(4, 4) + cbor_text('Signature1') + cbor_bytes(prot) +
            cbor_bytes(b'') + cbor_bytes(payload))


def make_signer(name='qemu-eif test', curve='P-384', days=30, offset=-1):
    """A key and its self-signed certificate (PEM), valid for @days from
    @offset days from now"""
    key = ec.generate_private_key(CURVES[curve][0])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime.now(datetime.timezone.utc) + \
        datetime.timedelta(days=offset)
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .sign(key, hashes.SHA384()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


def cose_sign1(key, value, curve='P-384'):
    """The COSE_Sign1 of PCR0 @value with @key"""
    _, alg, digest, half = CURVES[curve]
    prot = cbor_head(5, 1) + cbor_head(0, 1) + cbor_head(1, -1 - alg)
    payload = pcr0_payload(value)
    r, s = decode_dss_signature(key.sign(sig_structure(prot, payload),
                                         ec.ECDSA(digest)))
    sig = r.to_bytes(half, 'big') + s.to_bytes(half, 'big')
    return (cbor_head(4, 4) + cbor_bytes(prot) + cbor_head(5, 0) +
            cbor_bytes(payload) + cbor_bytes(sig))


def signature(pem, cose=b'\0'):
    """A signature section's data with one entry for @pem and @cose"""
    return (cbor_head(4, 1) + cbor_head(5, 2) +
            cbor_text('signing_certificate') + cbor_byte_values(pem) +
            cbor_text('signature') + cbor_byte_values(cose))


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


def sign(src, dst, signer=None, value=None):
    """Write @src, signed with @signer (a new one by default) over PCR0
    @value (@src's by default), to @dst; return the certificate's PEM"""
    key, pem = signer or make_signer()
    with open(src, 'rb') as f:
        img = f.read()
    cose = cose_sign1(key, value or pcr0(img))
    with open(dst, 'wb') as f:
        f.write(add_section(img, 4, signature(pem, cose)))
    return pem
