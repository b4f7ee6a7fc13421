#
# An attestation document verifier independent of QEMU, written from the
# format AWS documents with Debian's python3-cryptography and
# python3-cbor2: the COSE_Sign1 (ES384) signature by the payload's
# certificate, the chain from cabundle[0], which must be the given root,
# each certificate's validity now, and optionally the nonce.
# attest-test.py and the boot test of the sample enclave
# (tests/functional/generic/test_nitro_boot.py) use it.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import datetime

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import \
    encode_dss_signature


def py_verify(doc, root_der, nonce=None):
    """None if @doc verifies up to @root_der independently of QEMU (and
    has @nonce, if given), else the reason"""
    try:
        cose = cbor2.loads(doc)
        if isinstance(cose, cbor2.CBORTag):
            cose = cose.value
        prot, unprot, payload_b, sig = cose
        if cbor2.loads(prot) != {1: -35} or unprot != {}:
            return 'not ES384'
        payload = cbor2.loads(payload_b)
        leaf = x509.load_der_x509_certificate(payload['certificate'])
        if len(sig) != 96:
            return 'signature length'
        leaf.public_key().verify(
            encode_dss_signature(int.from_bytes(sig[:48], 'big'),
                                 int.from_bytes(sig[48:], 'big')),
            cbor2.dumps(['Signature1', prot, b'', payload_b]),
            ec.ECDSA(hashes.SHA384()))
        if payload['cabundle'][0] != root_der:
            return 'cabundle[0] is not the root'
        chain = [x509.load_der_x509_certificate(c)
                 for c in payload['cabundle']] + [leaf]
        for issuer, cert in zip([chain[0]] + chain, chain):
            if cert.issuer != issuer.subject:
                return f'{cert.subject} not issued by {issuer.subject}'
            issuer.public_key().verify(cert.signature,
                                       cert.tbs_certificate_bytes,
                                       ec.ECDSA(cert.signature_hash_algorithm))
        for cert in chain[:-1]:
            if not cert.extensions.get_extension_for_class(
                    x509.BasicConstraints).value.ca:
                return f'{cert.subject} is not a CA'
        now = datetime.datetime.utcnow()
        for cert in chain:
            if not cert.not_valid_before <= now <= cert.not_valid_after:
                return f'{cert.subject} is not valid now'
        if nonce is not None and payload.get('nonce') != nonce:
            return 'wrong nonce'
        return None
    except InvalidSignature:
        return 'bad signature'
    except Exception as e:  # any malformed document is a rejection
        return f'{type(e).__name__}: {e}'
