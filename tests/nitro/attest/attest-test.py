#!/usr/bin/env python3
#
# Attestation without AWS: virtio-nsm signs its documents with a chain
# that `qemu-eif make-attestation-chain` made, and both `qemu-eif
# verify-attestation` and an independent verifier written here (Python's
# cryptography and cbor2) accept them, and reject a changed payload, a
# wrong root, a stale certificate and a wrong nonce (the independent
# verifier is pyverify.py, which the boot test shares).  The other requests
# of the NSM API (DescribeNSM, GetRandom, DescribePCR, ExtendPCR, LockPCR,
# LockPCRs) answer as it documents them.  The device runs in
# -M microvm under qtest; nsm_qtest.py drives it as a guest driver
# would, through its virtio-mmio transport.
#
# Usage: attest-test.py QEMU_EIF QEMU_SYSTEM_X86_64
#
# SPDX-License-Identifier: GPL-2.0-or-later

import base64
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))
from taptest import Tap, sample_eif  # noqa: E402
from nsm_qtest import attestation, nsm_session  # noqa: E402
from pyverify import py_verify  # noqa: E402

QEMU_EIF, QEMU = sys.argv[1:3]

def qemu_eif(*args):
    p = subprocess.run([QEMU_EIF, *args], capture_output=True, text=True,
                       timeout=120, check=False)
    return p.returncode, p.stdout, p.stderr.strip()


def our_verify(tmp, doc, root, *args):
    """None and the payload if `qemu-eif verify-attestation` accepts
    @doc, else its reason"""
    path = os.path.join(tmp, 'doc.cbor')
    with open(path, 'wb') as f:
        f.write(doc)
    rc, out, err = qemu_eif('verify-attestation', '--root', root, *args,
                            path)
    if rc == 0 and not err:
        return None, json.loads(out)
    if rc != 1 or out or len(err.splitlines()) != 1:
        return f'unexpected: rc {rc}, stdout {out!r}, stderr {err!r}', None
    return err, None


def make_chain(directory, name, count=3, stale=False):
    """A root, intermediates and a leaf (@count certificates, the leaf
    expired yesterday if @stale), made with cryptography: (leaf key path,
    chain path, root path, root DER)"""
    now = datetime.datetime.utcnow()
    keys = [ec.generate_private_key(ec.SECP384R1()) for _ in range(count)]
    names = [x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                           f'{name} {i}')])
             for i in range(count)]
    certs = []
    for i in range(count):
        issuer = max(i - 1, 0)
        leaf = i == count - 1
        end = now + datetime.timedelta(days=-1 if leaf and stale else 30)
        certs.append(
            x509.CertificateBuilder()
            .subject_name(names[i]).issuer_name(names[issuer])
            .public_key(keys[i].public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=10))
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=not leaf,
                                                 path_length=None),
                           critical=True)
            .sign(keys[issuer], hashes.SHA384()))
    key = os.path.join(directory, f'{name}.key')
    chain = os.path.join(directory, f'{name}-chain.pem')
    with open(key, 'wb') as f:
        f.write(keys[-1].private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    with open(chain, 'wb') as f:
        for cert in reversed(certs):
            f.write(cert.public_bytes(serialization.Encoding.PEM))
    root_pem = os.path.join(directory, f'{name}-root.pem')
    with open(root_pem, 'wb') as f:
        f.write(certs[0].public_bytes(serialization.Encoding.PEM))
    return key, chain, root_pem, certs[0].public_bytes(
        serialization.Encoding.DER)


def pem_der(path):
    with open(path, 'rb') as f:
        return x509.load_pem_x509_certificate(f.read()).public_bytes(
            serialization.Encoding.DER)


def pcrs_hex(pcrs):
    return '\n'.join(f'{i}: {v.hex()}' for i, v in sorted(pcrs.items()))


def both_reject(tap, what, ours, theirs):
    tap(ours[0] is not None and theirs is not None,
        f'{what}: rejected by qemu-eif and by the independent verifier',
        f'qemu-eif: {ours[0]}\nindependent: {theirs}')


def main():
    tap = Tap()
    tmp = tempfile.mkdtemp(prefix='nitro attest-')
    try:
        run(tap, tmp)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        tap(False, 'the test runs to its end', f'{type(e).__name__}: {e}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.plan()


def run(tap, tmp):
    chain_dir = os.path.join(tmp, 'chain')
    rc, out, err = qemu_eif('make-attestation-chain', '--dir', chain_dir,
                            '--module-id', 'i-0123-enc4567')
    files = sorted(os.listdir(chain_dir)) if rc == 0 else []
    tap(rc == 0 and files == sorted(
        ['chain.pem', 'intermediate.key', 'intermediate.pem', 'leaf.key',
         'leaf.pem', 'root.key', 'root.pem']) and
        os.stat(os.path.join(chain_dir, 'leaf.key')).st_mode & 0o077 == 0,
        'make-attestation-chain writes the chain, keys private', err)
    rc, _, err2 = qemu_eif('make-attestation-chain', '--dir', chain_dir)
    tap(rc == 1 and 'exists' in err2,
        'make-attestation-chain never overwrites a chain', err2)
    root = os.path.join(chain_dir, 'root.pem')
    root_der = pem_der(root)
    leaf_cn = x509.load_pem_x509_certificate(
        open(os.path.join(chain_dir, 'leaf.pem'), 'rb').read()).subject
    tap(leaf_cn.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value ==
        'i-0123-enc4567', 'the leaf is named after --module-id')

    signed = (f'virtio-nsm-device,module-id=i-0123-enc4567,'
              f'private-key={os.path.join(chain_dir, "leaf.key")},'
              f'certificate-chain={os.path.join(chain_dir, "chain.pem")}')
    pcr3, pcr4, pcr8 = (bytes([n]) * 48 for n in (3, 4, 8))
    t0 = int(time.time())
    doc = attestation(QEMU, tmp, f'{signed},pcr3={pcr3.hex()},'
                      f'pcr4={pcr4.hex()},pcr8={pcr8.hex()}',
                      nonce=b'nonce-1')
    t1 = int(time.time())

    # The document's shape is AWS's
    cose = cbor2.loads(doc)
    payload = cbor2.loads(cose[2])
    tap(isinstance(cose, list) and len(cose) == 4 and
        cbor2.loads(cose[0]) == {1: -35} and cose[1] == {} and
        len(cose[3]) == 96,
        'the document is an untagged ES384 COSE_Sign1', repr(cose)[:200])
    with open(os.path.join(chain_dir, 'intermediate.pem'), 'rb') as f:
        inter_der = x509.load_pem_x509_certificate(f.read()).public_bytes(
            serialization.Encoding.DER)
    tap(list(payload) == ['module_id', 'digest', 'timestamp', 'pcrs',
                          'certificate', 'cabundle', 'public_key',
                          'user_data', 'nonce'] and
        payload['module_id'] == 'i-0123-enc4567' and
        payload['digest'] == 'SHA384' and
        t0 * 1000 <= payload['timestamp'] <= (t1 + 1) * 1000 and
        payload['certificate'] == pem_der(os.path.join(chain_dir,
                                                       'leaf.pem')) and
        payload['cabundle'] == [root_der, inter_der] and
        payload['public_key'] == b'pk' and payload['user_data'] == b'user' and
        payload['nonce'] == b'nonce-1',
        'the payload has AWS\'s fields, the chain root first',
        repr({k: v for k, v in payload.items()
              if k not in ('pcrs', 'certificate', 'cabundle')}))
    tap(sorted(payload['pcrs']) == list(range(16)) and
        all(len(v) == 48 for v in payload['pcrs'].values()) and
        payload['pcrs'][3] == pcr3 and payload['pcrs'][4] == pcr4 and
        payload['pcrs'][8] == pcr8 and payload['pcrs'][0] == bytes(48),
        'PCR0-15 are listed, PCR3, PCR4 and PCR8 as preset',
        pcrs_hex(payload['pcrs']))

    # Accepted by both verifiers
    err, shown = our_verify(tmp, doc, root, '--nonce', b'nonce-1'.hex(),
                            '--pcr', f'3={pcr3.hex()}',
                            '--pcr', f'8={pcr8.hex()}')
    tap(err is None and shown['module_id'] == 'i-0123-enc4567' and
        shown['pcrs']['4'] == pcr4.hex() and
        shown['nonce'] == b'nonce-1'.hex() and
        base64.b64decode(shown['cabundle'][0]) == root_der,
        'qemu-eif verify-attestation accepts it and prints the payload',
        err or json.dumps({k: v for k, v in shown.items()
                           if k not in ('certificate', 'cabundle')}))
    reason = py_verify(doc, root_der, nonce=b'nonce-1')
    tap(reason is None, 'the independent verifier accepts it', reason)

    # A changed payload byte, a wrong root, a wrong nonce
    tampered = bytearray(cose[2])
    tampered[-1] ^= 1
    bad = cbor2.dumps([cose[0], cose[1], bytes(tampered), cose[3]])
    both_reject(tap, 'a changed payload byte', our_verify(tmp, bad, root),
                py_verify(bad, root_der))
    other = os.path.join(tmp, 'other')
    qemu_eif('make-attestation-chain', '--dir', other)
    other_root = os.path.join(other, 'root.pem')
    both_reject(tap, 'a wrong root', our_verify(tmp, doc, other_root),
                py_verify(doc, pem_der(other_root)))
    both_reject(tap, 'a wrong nonce',
                our_verify(tmp, doc, root, '--nonce', b'nonce-2'.hex()),
                py_verify(doc, root_der, nonce=b'nonce-2'))
    err, _ = our_verify(tmp, doc, root, '--pcr', f'4={pcr3.hex()}')
    tap(err is not None and 'PCR4' in err,
        'qemu-eif rejects a PCR that is not the --pcr value', err)

    # A stale leaf certificate
    key, chain, stale_root, stale_der = make_chain(tmp, 'stale', stale=True)
    stale = attestation(QEMU, tmp, f'virtio-nsm-device,private-key={key},'
                              f'certificate-chain={chain}')
    both_reject(tap, 'a stale leaf certificate',
                our_verify(tmp, stale, stale_root),
                py_verify(stale, stale_der))
    err, _ = our_verify(tmp, stale, stale_root, '--time',
                        str(int(time.time()) - 2 * 86400))
    tap(err is None, 'qemu-eif accepts it at a --time when it was valid',
        err)

    # Debug mode: zero PCRs
    dbg = cbor2.loads(cbor2.loads(attestation(
        QEMU, tmp, f'{signed},debug-mode=on'))[2])
    tap(sorted(dbg['pcrs']) == list(range(16)) and
        all(v == bytes(48) for v in dbg['pcrs'].values()),
        'debug-mode=on: every PCR of the document is zero',
        pcrs_hex(dbg['pcrs']))

    # The PCRs of an image, checked with --eif
    described = sample_eif(QEMU_EIF, tmp, 'x86_64',
                           os.path.join(tmp, 'app.eif'))
    m = described['Measurements']
    doc_eif = attestation(QEMU, tmp, f'{signed},pcr0={m["PCR0"]},'
                          f'pcr1={m["PCR1"]},pcr2={m["PCR2"]}')
    err, _ = our_verify(tmp, doc_eif, root, '--eif',
                        os.path.join(tmp, 'app.eif'))
    tap(err is None, 'qemu-eif accepts the PCRs of the image (--eif)', err)
    err, _ = our_verify(tmp, doc, root, '--eif',
                        os.path.join(tmp, 'app.eif'))
    tap(err is not None and 'PCR0' in err,
        'qemu-eif rejects PCRs that are not the image\'s', err)

    # The preset PCRs are read-only and read as preset
    got = nsm_session(QEMU, tmp, f'{signed},pcr3={pcr3.hex()}', [
        {'DescribePCR': {'index': 3}},
        {'ExtendPCR': {'index': 3, 'data': b'x'}},
        {'ExtendPCR': {'index': 16, 'data': b'x'}},
    ])
    tap(not isinstance(got, str) and
        got[0] == {'DescribePCR': {'data': pcr3, 'lock': True}} and
        got[1] == {'Error': 'ReadOnlyIndex'} and 'ExtendPCR' in got[2],
        'DescribePCR reads a preset PCR, locked; ExtendPCR refuses it',
        repr(got)[:600])

    # The other requests of the NSM API, as an application sends them
    zero = bytes(48)
    pcr16 = hashlib.sha384(zero + b'abc').digest()
    got = nsm_session(QEMU, tmp, signed, [
        'DescribeNSM',
        'GetRandom',
        'GetRandom',
        {'ExtendPCR': {'index': 16, 'data': b'abc'}},
        {'DescribePCR': {'index': 16}},
        {'LockPCR': {'index': 16}},
        {'DescribePCR': {'index': 16}},
        {'ExtendPCR': {'index': 16, 'data': b'abc'}},
        {'LockPCRs': {'range': 18}},
        {'ExtendPCR': {'index': 17, 'data': b'abc'}},
        {'DescribePCR': {'index': 32}},
        {'ExtendPCR': {'index': 32, 'data': b'abc'}},
        'DescribeNSM',
    ])
    tap(isinstance(got, list) and len(got) == 13, 'the NSM answers each '
        'request of the API', repr(got)[:600])
    if isinstance(got, list) and len(got) == 13:
        nsm = got[0].get('DescribeNSM', {})
        tap(nsm.get('digest') == 'SHA384' and nsm.get('max_pcrs') == 32 and
            nsm.get('module_id') == 'i-0123-enc4567' and
            sorted(nsm.get('locked_pcrs', [])) == list(range(16)) and
            all(isinstance(nsm.get(f'version_{v}'), int)
                for v in ('major', 'minor', 'patch')),
            'DescribeNSM: version, module_id, 32 PCRs, 0-15 locked, SHA384',
            got[0])
        rnd = [g.get('GetRandom', {}).get('random') for g in got[1:3]]
        tap(all(isinstance(r, bytes) and len(r) >= 32 for r in rnd) and
            rnd[0] != rnd[1], 'GetRandom: random bytes, new each time',
            got[1:3])
        tap(got[3] == {'ExtendPCR': {'data': pcr16}} and
            got[4] == {'DescribePCR': {'data': pcr16, 'lock': False}},
            'ExtendPCR 16: SHA-384 of the PCR and the data; DescribePCR '
            'reads it', got[3:5])
        tap(got[5] == 'LockPCR' and
            got[6] == {'DescribePCR': {'data': pcr16, 'lock': True}} and
            got[7] == {'Error': 'ReadOnlyIndex'},
            'LockPCR 16: locked, and no longer extended', got[5:8])
        tap(got[8] == 'LockPCRs' and got[9] == {'Error': 'ReadOnlyIndex'} and
            sorted(got[12].get('DescribeNSM', {}).get('locked_pcrs', [])) ==
            list(range(18)),
            'LockPCRs 18: PCRs 0 to 17 locked', [got[8], got[9], got[12]])
        tap(got[10] == {'Error': 'InvalidIndex'} and
            got[11] == {'Error': 'InvalidIndex'},
            'PCR 32 does not exist: InvalidIndex', got[10:12])

    # The largest request with a chain just under the limit still fits
    big_key, big_chain, big_root = make_chain(tmp, 'big', count=13)[:3]
    got = nsm_session(QEMU, tmp, f'virtio-nsm-device,private-key={big_key},'
                      f'certificate-chain={big_chain}', [{'Attestation': {
                          'nonce': b'n' * 1300, 'user_data': b'u' * 1300,
                          'public_key': b'p' * 1300}}])
    big = got[0].get('Attestation', {}).get('document') \
        if isinstance(got, list) else None
    err = our_verify(tmp, big, big_root)[0] if big else got
    tap(big is not None and err is None,
        'a 4 KiB request with a 5 KiB chain gets a document that verifies',
        err)

    # Without a key the document is upstream's, and it does not verify
    unsigned = attestation(QEMU, tmp, 'virtio-nsm-device')
    err, _ = our_verify(tmp, unsigned, root)
    tap(cbor2.loads(cbor2.loads(unsigned)[0]) == {1: -1} and
        err is not None and 'ES384' in err and
        py_verify(unsigned, root_der) is not None,
        'without a key the document is unsigned, and rejected', err)

    # What the device refuses, with a reason
    p256 = os.path.join(tmp, 'p256.key')
    with open(p256, 'wb') as f:
        f.write(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    reversed_chain = os.path.join(tmp, 'reversed.pem')
    with open(reversed_chain, 'w') as f:
        for name in ('root.pem', 'intermediate.pem', 'leaf.pem'):
            f.write(open(os.path.join(chain_dir, name)).read())
    chain_pem = os.path.join(chain_dir, 'chain.pem')
    long_key, long_chain = make_chain(tmp, 'long', count=16)[:2]
    for options, expect in (
            (f'private-key={os.path.join(chain_dir, "leaf.key")}',
             'needs certificate-chain'),
            (f'private-key={p256},certificate-chain={chain_pem}', 'P-384'),
            (f'private-key={os.path.join(chain_dir, "root.key")},'
             f'certificate-chain={chain_pem}', 'not the one of private-key'),
            (f'private-key={os.path.join(chain_dir, "leaf.key")},'
             f'certificate-chain={reversed_chain}', 'from the leaf to the'),
            (f'private-key={long_key},certificate-chain={long_chain}',
             'more than 5120'),
            ('pcr3=12', 'is not 96 hex digits'),
            (f'debug-mode=on,pcr4={pcr4.hex()}', 'no effect')):
        got = nsm_session(QEMU, tmp, f'virtio-nsm-device,{options}', [])
        tap(isinstance(got, str) and expect in got,
            f'virtio-nsm refuses {options.split("=")[0]}... ({expect})',
            got)


if __name__ == '__main__':
    sys.exit(main())
