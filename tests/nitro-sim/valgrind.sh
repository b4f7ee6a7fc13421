#!/bin/sh
# nitro-sim tests: the launcher and the preloaded simulator under valgrind
# (memcheck).  A full debug launch: heartbeat, console, stop by closing
# the enclave fd.  TAP on stdout.
#
# usage: valgrind.sh VALGRIND NITRO-SIM-LAUNCH LIBNITRO-SIM.SO
#
# Copyright (c) 2025 Nitro Enclaves for QEMU authors
# SPDX-License-Identifier: GPL-2.0-or-later

valgrind=$1
launch=$2
lib=$3
dir=$(mktemp -d /tmp/nitro-sim-test-valgrind-XXXXXX)
trap 'rm -rf "$dir"' EXIT

echo "1..3"
out=$(NITRO_SIM_DIR=$dir LD_PRELOAD=$lib "$valgrind" -q \
      --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      --log-file="$dir/valgrind.log" \
      "$launch" --debug --console 2>&1)
rc=$?
if [ $rc -eq 77 ]; then
    echo "ok 1 # SKIP $out"
    echo "ok 2 # SKIP no huge pages"
    echo "ok 3 # SKIP no huge pages"
    exit 0
fi
case $out in
*'"launch": "ok"'*'"console": "ok"'*)
    echo "ok 1 - launch, heartbeat and console under valgrind" ;;
*) echo "not ok 1 - launch under valgrind: rc $rc: $out" ;;
esac
if [ $rc -eq 0 ] && [ ! -s "$dir/valgrind.log" ]; then
    echo "ok 2 - valgrind reports no error and no definite leak"
else
    echo "not ok 2 - valgrind (exit $rc):"
    sed 's/^/# /' "$dir/valgrind.log"
fi
if grep -q '"reason":"fd-closed"' "$dir/events.jsonl"; then
    echo "ok 3 - closing the enclave fd stopped the enclave"
else
    echo "not ok 3 - the enclave stop (fd-closed) was not logged"
fi
