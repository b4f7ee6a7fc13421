#!/usr/bin/env python3
#
# Signed enclave images as nitro-cli makes them: `qemu-eif build
# --signing-certificate --private-key` and `qemu-eif sign` write a
# signature section that an independent reading here (Python's
# cryptography and cbor2) accepts - the certificate file as is, an
# untagged COSE_Sign1 whose ECDSA signature verifies with its key over
# the PCR0 payload serde_cbor writes - and PCR8 as nitro-cli documents it
# (SHA-384 of 48 zero bytes and of SHA-384 of the certificate's DER),
# equal to `qemu-eif pcr --signing-certificate`.  describe checks the
# signature and says why a changed one, or one taken from another image,
# does not verify.  `qemu-eif pcr --input` is nitro-cli's PCR of a file.
#
# Usage: sign-test.py QEMU_EIF
#
# SPDX-License-Identifier: GPL-2.0-or-later

import datetime
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import \
    encode_dss_signature
from cryptography.x509.oid import NameOID

from eifsig import CURVES, pcr0, pcr0_payload, sections

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))
from taptest import Tap  # noqa: E402

QEMU_EIF = sys.argv[1]


def run(*args, ok=True):
    p = subprocess.run([QEMU_EIF, *args], capture_output=True, text=True,
                       check=False, timeout=60)
    if ok and p.returncode != 0:
        raise AssertionError(f'qemu-eif {" ".join(args)} failed: '
                             f'{p.stderr}')
    if not ok:
        assert p.returncode == 1, (p.returncode, p.stderr)
        return p.stderr.strip()
    return p.stdout


def extend(data):
    return hashlib.sha384(bytes(48) +
                          hashlib.sha384(data).digest()).hexdigest()


def make_signer(tmp, name, curve):
    """A key (PKCS#8 for P-384, SEC1 for P-256) and its self-signed
    certificate, made here, not by qemu-eif"""
    key = ec.generate_private_key(CURVES[curve][0])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA384()))
    fmt = serialization.PrivateFormat.PKCS8 if curve == 'P-384' else \
        serialization.PrivateFormat.TraditionalOpenSSL
    key_path = os.path.join(tmp, f'{name}.key')
    cert_path = os.path.join(tmp, f'{name}.pem')
    with open(key_path, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, fmt,
                                  serialization.NoEncryption()))
    with open(cert_path, 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path, cert


def check_signed(path, cert_path, cert, curve):
    """The signature section, read and verified independently"""
    with open(path, 'rb') as f:
        img = f.read()
    assert struct.unpack_from('>I', img, 544)[0] == \
        zlib.crc32(img[:544] + img[548:]), 'bad CRC'
    sigs = [data for typ, _, data in sections(img) if typ == 4]
    assert len(sigs) == 1, len(sigs)
    entries = cbor2.loads(sigs[0])
    assert isinstance(entries, list) and len(entries) == 1, entries
    entry = entries[0]
    assert list(entry) == ['signing_certificate', 'signature'], entry.keys()
    with open(cert_path, 'rb') as f:
        assert bytes(entry['signing_certificate']) == f.read()
    cose = cbor2.loads(bytes(entry['signature']))
    assert isinstance(cose, list), 'the COSE_Sign1 is tagged'
    prot, unprot, payload, sig = cose
    _, alg, digest, half = CURVES[curve]
    assert cbor2.loads(prot) == {1: alg}, cbor2.loads(prot)
    assert unprot == {}, unprot
    assert payload == pcr0_payload(pcr0(img)), payload.hex()
    assert len(sig) == 2 * half
    tbs = cbor2.dumps(['Signature1', prot, b'', payload])
    der = encode_dss_signature(int.from_bytes(sig[:half], 'big'),
                               int.from_bytes(sig[half:], 'big'))
    cert.public_key().verify(der, tbs, ec.ECDSA(digest))

    desc = json.loads(run('describe', path))
    pcr8 = extend(cert.public_bytes(serialization.Encoding.DER))
    assert desc['Measurements']['PCR8'] == pcr8, desc['Measurements']
    assert desc['Measurements']['PCR0'] == pcr0(img).hex()
    assert desc['SignatureCheck'] is True, desc
    assert json.loads(run('pcr', '--signing-certificate', cert_path)) == \
        {'PCR8': pcr8}
    return img


def replace_section(img, data):
    """@img with the data of its last section (the signature) replaced"""
    img = bytearray(img)
    count, = struct.unpack_from('>H', img, 26)
    off, = struct.unpack_from('>Q', img, 28 + 8 * (count - 1))
    del img[off + 12:]
    struct.pack_into('>Q', img, 28 + 256 + 8 * (count - 1), len(data))
    struct.pack_into('>Q', img, off + 4, len(data))
    img += data
    struct.pack_into('>I', img, 544, zlib.crc32(img[:544] + img[548:]))
    return bytes(img)


def describe_error(tmp, img):
    path = os.path.join(tmp, 'tampered.eif')
    with open(path, 'wb') as f:
        f.write(img)
    desc = json.loads(run('describe', path))
    assert desc['SignatureCheck'] is False, desc
    return desc['SignatureError']


def subtest(tap, what, fn):
    try:
        fn()
    except Exception as e:  # pylint: disable=broad-except
        tap(False, what, f'{type(e).__name__}: {e}')
        return
    tap(True, what)


def main():
    tap = Tap()
    with tempfile.TemporaryDirectory(prefix='qemu eif sign ') as tmp:
        kernel = os.path.join(tmp, 'kernel')
        initrd = os.path.join(tmp, 'initrd')
        other = os.path.join(tmp, 'other')
        for path, size in ((kernel, 3000), (initrd, 5000), (other, 700)):
            with open(path, 'wb') as f:
                f.write(os.urandom(size))
        key, cert_path, cert = make_signer(tmp, 'signer', 'P-384')
        key2, cert2_path, cert2 = make_signer(tmp, 'other', 'P-256')
        signed = os.path.join(tmp, 'signed.eif')
        unsigned = os.path.join(tmp, 'unsigned.eif')
        build = ['build', '--kernel', kernel, '--initrd', initrd,
                 '--arch', 'x86_64']

        def test1():
            run(*build, '--signing-certificate', cert_path,
                '--private-key', key, '-o', signed)
            check_signed(signed, cert_path, cert, 'P-384')
        subtest(tap, 'build --signing-certificate --private-key: '
                'signed as nitro-cli signs, PCR8 of the certificate', test1)

        def test2():
            run(*build, '-o', unsigned)
            desc = json.loads(run('describe', unsigned))
            assert 'SignatureCheck' not in desc and \
                'PCR8' not in desc['Measurements'], desc
            out = os.path.join(tmp, 'signed-copy.eif')
            run('sign', '--eif-path', unsigned, '--signing-certificate',
                cert_path, '--private-key', key, '-o', out)
            check_signed(out, cert_path, cert, 'P-384')
            run('sign', '--eif-path', out, '--signing-certificate',
                cert2_path, '--private-key', key2)
            check_signed(out, cert2_path, cert2, 'P-256')
        subtest(tap, 'sign: an unsigned image, then re-signed with '
                'another key (ES256), in place', test2)

        def read_signed():
            with open(signed, 'rb') as f:
                return f.read()

        def test3():
            img = read_signed()
            sig = [d for t, _, d in sections(img) if t == 4][0]
            entry = cbor2.loads(sig)[0]
            cose = cbor2.loads(bytes(entry['signature']))
            cose[3] = bytes([cose[3][0] ^ 1]) + cose[3][1:]
            entry['signature'] = list(cbor2.dumps(cose))
            err = describe_error(tmp, replace_section(
                img, cbor2.dumps([entry])))
            assert 'does not verify with the signing certificate' in err, err
        subtest(tap, 'describe: a changed signature does not verify', test3)

        def test4():
            img = read_signed()
            out = os.path.join(tmp, 'other.eif')
            run('build', '--kernel', kernel, '--initrd', other, '--arch',
                'x86_64', '--signing-certificate', cert_path,
                '--private-key', key, '-o', out)
            with open(out, 'rb') as f:
                sig = [d for t, _, d in sections(f.read()) if t == 4][0]
            err = describe_error(tmp, replace_section(img, sig))
            assert err == "the signature does not sign this image's PCR0", err
        subtest(tap, 'describe: a signature of another image', test4)

        def test5():
            out = os.path.join(tmp, 'mismatch.eif')
            err = run(*build, '--signing-certificate', cert_path,
                      '--private-key', key2, '-o', out, ok=False)
            assert f'{key2} is not the private key of {cert_path}' in err, \
                err
            assert not os.path.exists(out)
        subtest(tap, "a key that is not the certificate's is refused, "
                'and nothing is written', test5)

        def test6():
            with open(kernel, 'rb') as f:
                expected = extend(f.read())
            assert json.loads(run('pcr', '--input', kernel)) == \
                {'PCR': expected}
            err = run('pcr', '--signing-certificate', kernel, ok=False)
            assert 'is not a PEM certificate' in err, err
        subtest(tap, 'pcr --input: the PCR of a file\'s bytes', test6)

    return tap.plan()


if __name__ == '__main__':
    sys.exit(main())
