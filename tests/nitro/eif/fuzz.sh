#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fuzz the EIF parser (hw/core/eif*.c) with libFuzzer under ASan and UBSan.
#
#   fuzz.sh [--source DIR] [--build DIR] [--qemu-eif PATH]
#           [--runs N | --time SECONDS | --long]
#
# Builds build/obj/tests/nitro/eif/fuzz-eif with clang outside meson (the
# few QEMU functions the library calls are stubbed in fuzz-eif.c), makes a seed
# corpus with qemu-eif (plus a signed image), then runs the fuzzer:
# --runs N executions (default 300000; what `meson test` does), --time
# SECONDS, or --long (1 hour, corpus kept in build/obj/tests/nitro/eif/
# fuzz-corpus).  Exits 77 (skipped) when clang or libFuzzer is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
build=
qemu_eif=
limit=(-runs=300000)
long=

while [ $# -gt 0 ]; do
    case $1 in
    --source) src=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --qemu-eif) qemu_eif=$2; shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --time) limit=(-max_total_time="$2"); shift 2 ;;
    --long) limit=(-max_total_time=3600); long=1; shift ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
# Run from the fork's checkout, the default build is build/obj of the tree
if [ -z "$build" ]; then
    build=$src/build/obj
    [ -f "$src/build/tree/hw/core/eif.c" ] && src=$src/build/tree
fi
qemu_eif=${qemu_eif:-$build/contrib/qemu-eif/qemu-eif}

cc=${CLANG:-clang}
if ! command -v "$cc" >/dev/null; then
    echo "SKIP: $cc not found (install clang and libclang-rt-dev)"
    exit 77
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long s) { return 0; }' |
        "$cc" -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
    echo "SKIP: $cc cannot link libFuzzer (install libclang-rt-dev)"
    exit 77
fi

out=$build/tests/nitro/eif
mkdir -p "$out"
# shellcheck disable=SC2046
"$cc" -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -std=gnu11 -D_GNU_SOURCE \
    -D_FILE_OFFSET_BITS=64 -Wno-unused-command-line-argument \
    -iquote "$build" -iquote "$src" -iquote "$src/include" \
    -iquote "$src/host/include/$(uname -m)" \
    -iquote "$src/host/include/generic" \
    -isystem "$src/linux-headers" \
    $(pkg-config --cflags --libs glib-2.0 zlib) \
    "$src"/hw/core/eif*.c "$here/fuzz-eif.c" \
    $(pkg-config --libs glib-2.0 zlib) \
    $(grep -q '#define CONFIG_ISAL' "$build/config-host.h" &&
      pkg-config --libs libisal) \
    -o "$out/fuzz-eif"

# Seeds: images made by qemu-eif, and one with a signature section
seeds=$out/fuzz-seeds
rm -rf "$seeds"
mkdir -p "$seeds"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 300 /dev/urandom >"$tmp/k"
head -c 100 /dev/urandom >"$tmp/i1"
printf 'ramdisk' >"$tmp/i2"
: >"$tmp/empty"
"$qemu_eif" build --kernel "$tmp/k" --initrd "$tmp/i1" -o "$seeds/x86-1.eif"
"$qemu_eif" build --kernel "$tmp/k" --initrd "$tmp/i1" --initrd "$tmp/i2" \
    --initrd "$tmp/empty" --arch aarch64 --cmdline 'console=ttyS0' \
    --name n --version 1 --metadata '{"a": 1}' -o "$seeds/arm-3.eif"
python3 - "$seeds/x86-1.eif" "$seeds/signed.eif" "$here/test-cert.pem" <<'PY'
import struct, sys, zlib
img = bytearray(open(sys.argv[1], 'rb').read())
pem = open(sys.argv[3], 'rb').read()
def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 256:
        return bytes([major << 5 | 24, n])
    return bytes([major << 5 | 25]) + struct.pack('>H', n)
# [{"signing_certificate": [PEM bytes...], "signature": h'00'}], as serde
sig = head(4, 1) + head(5, 2) + head(3, 19) + b'signing_certificate' + \
    head(4, len(pem)) + b''.join(head(0, b) for b in pem) + \
    head(3, 9) + b'signature' + head(2, 1) + b'\x00'
count, = struct.unpack_from('>H', img, 26)
struct.pack_into('>H', img, 26, count + 1)
struct.pack_into('>Q', img, 28 + 8 * count, len(img))
struct.pack_into('>Q', img, 28 + 256 + 8 * count, len(sig))
img += struct.pack('>HHQ', 4, 0, len(sig)) + sig
struct.pack_into('>I', img, 544, zlib.crc32(img[:544] + img[548:]))
open(sys.argv[2], 'wb').write(img)
PY

corpus=$out/fuzz-corpus
if [ -z "$long" ]; then
    corpus=$tmp/corpus
fi
mkdir -p "$corpus"
status=0
"$out/fuzz-eif" "${limit[@]}" -max_len=4096 -print_final_stats=1 \
    "$corpus" "$seeds" >"$tmp/log" 2>&1 || status=$?
grep -v '^#[0-9]' "$tmp/log" | tail -n 60
grep -h '^#[0-9]*.*DONE' "$tmp/log" || true
exit "$status"
