#!/bin/sh
#
# The QTEST_QEMU_BINARY of tests/qtest/nitro-qtest.py, as
# "nitro-qtest-qemu.sh EMULATOR": libqtest runs it with the emulator's
# arguments.  Every emulator runs on the simulator (NITRO_SIM_LIB); a
# -M nitro one also gets what the machine needs and QEMU's generic qtests
# do not give it: -accel nitro, before libqtest's -accel qtest (QEMU takes
# the first accelerator that initialises); the image, NITRO_QTEST_EIF;
# 64 MiB of RAM (huge pages), unless the test asks for its own -m; and,
# with -nodefaults, the heartbeat device without which it refuses to
# start.  With NITRO_QTEST_RUNNING set, its -S is dropped: the enclave
# starts.
#
# SPDX-License-Identifier: GPL-2.0-or-later

qemu=$1
shift
case " $* " in
*" -M nitro "* | *" -machine nitro "*)
    if [ -n "$NITRO_QTEST_RUNNING" ]; then
        for arg; do
            shift
            [ "$arg" = -S ] || set -- "$@" "$arg"
        done
    fi
    case " $* " in
    *" -nodefaults "*)
        set -- -device nitro-heartbeat "$@"
        ;;
    esac
    set -- -accel nitro -kernel "$NITRO_QTEST_EIF" -m 64M "$@"
    ;;
esac
LD_PRELOAD=$NITRO_SIM_LIB exec "$qemu" "$@"
