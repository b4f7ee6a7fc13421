#!/usr/bin/env python3
#
# The parent's side of the sample enclave's attestation service (vsock
# port 5005, init.c): one request once the service listens.
#
# Usage: attest-request.py CID LINE OUT, run where the enclave's vsock is
# (on the simulator: with it preloaded).  LINE is the request, "NONCE
# [USER_DATA]" in hex.  Prints the answer's status line ("ok N" or "error
# REASON") and, for "ok N", writes the N bytes of the document to OUT.
# Exit status 0 once an answer came, 1 when the service could not be
# reached within two minutes.
#
# SPDX-License-Identifier: GPL-2.0-or-later

import errno
import socket
import sys
import time

PORT = 5005
# errors of a connect to a service that is not listening yet
NOT_YET = (errno.ECONNRESET, errno.ECONNREFUSED, errno.ETIMEDOUT)


def connect(cid, deadline):
    while True:
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.connect((cid, PORT))
            return s
        except OSError as e:
            s.close()
            if e.errno not in NOT_YET or time.monotonic() > deadline:
                sys.exit(f'cannot connect to CID {cid} port {PORT}: {e}')
        time.sleep(0.1)


def main():
    cid, line, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    s = connect(cid, time.monotonic() + 120)
    s.sendall(line.encode() + b'\n')
    f = s.makefile('rb')
    status = f.readline().decode().strip()
    print(status, flush=True)
    if status.startswith('ok '):
        with open(out, 'wb') as d:
            d.write(f.read(int(status.split()[1])))
    return 0


if __name__ == '__main__':
    sys.exit(main())
