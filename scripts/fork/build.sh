#!/usr/bin/env bash
# Build the fork: dependencies, source tree, configure (only when needed),
# ninja.  Arguments are ninja targets (tests, say); without them, what
# `make` promises is built.  Concurrent builds of one checkout wait for
# each other.
#
# Results, as links into the meson build directory build/obj:
# build/qemu-system-x86_64, build/qemu-system-aarch64, build/qemu-eif, the
# simulator build/libnitro-sim.so and its CLI build/nitro-sim; and
# build/qemu-nitro, a link to the script in the tree, which finds the
# emulators next to itself.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/fork/checkout.sh"

# QEMU's configure and its Python venv refuse or break on a path with a
# space or a colon.  Then the build happens in a mirror of the checkout
# under /var/tmp whose path has neither: links to the checkout's entries
# and a real build/, which the checkout's build links to (the tests find
# the checkout two levels above the build, as they do without a mirror).
case "$top" in
*[[:space:]:]*)
    mirror=/var/tmp/qemu-nitro-$(printf %s "$top" | sha256sum | cut -c1-16)
    if [ ! -L "$top/build" ]; then
        rm -rf "$top/build" "$mirror"
        mkdir -p "$mirror/build"
        ln -s "$mirror/build" "$top/build"
    fi
    for entry in "$top"/* "$top"/.[!.]*; do
        name=${entry##*/}
        [ -e "$entry" ] && [ "$name" != build ] || continue
        ln -sfn "$entry" "$mirror/$name"
    done
    printf '%s\n' "$top" >"$mirror/.nitro-mirror-of"
    ;;
esac
mkdir -p "$top/build"
build=$(cd "$top/build" && pwd -P)
obj="$build/obj"

# Dependencies: installed when root, otherwise the missing ones are named.
"$top/scripts/fork/deps.sh"

exec 9>"$build/.lock"
flock 9

state=$("$top/scripts/fork/prepare-tree.sh")

# ccache, when installed, keeps rebuilds of a re-created tree short.
# Paths are hashed relative to the build directory, so clones share the
# cache.
cc=
if command -v ccache >/dev/null; then
    cc="ccache cc"
    export CCACHE_BASEDIR="$build" CCACHE_NOHASHDIR=1
fi

# Debian's python: it sees the system's meson and pycotap (the +ds base has
# no bundled wheels), whatever python3 comes first in PATH.
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)

configure_args=(
    --python="$python"
    ${cc:+--cc="$cc"}
    --target-list=x86_64-softmmu,aarch64-softmmu
    --without-default-features
    --without-default-devices
    --with-devices-x86_64=nitro
    --with-devices-aarch64=nitro
    --disable-install-blobs
    --firmwarepath=/usr/share/qemu:/usr/share/seabios
    --disable-download
    --disable-docs
    --disable-tools
    --disable-guest-agent
    --enable-nitro
    --enable-fdt=system
    --enable-libcbor
    --enable-isal
    --enable-gnutls
    --enable-vhost-user
    --enable-pixman
    --enable-werror
    ${QEMU_CONFIGURE_EXTRA:-}
)
want="${configure_args[*]}"

if [ "$state" = recreated ] || [ ! -f "$obj/build.ninja" ] ||
   [ "$(cat "$obj/.fork-configure" 2>/dev/null)" != "$want" ]; then
    rm -rf "$obj"
    mkdir -p "$obj"
    (cd "$obj" && "$build/tree/configure" "${configure_args[@]}")
    echo "$want" >"$obj/.fork-configure"
fi

# What `make` promises; build.sh TARGET... builds only those.
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(qemu-system-x86_64 qemu-system-aarch64 contrib/qemu-eif/qemu-eif
             contrib/nitro-sim/libnitro-sim.so contrib/nitro-sim/nitro-sim
             contrib/vhost-user-vsock/vhost-user-vsock)
fi
ninja -C "$obj" "${targets[@]}"

# Run from the build tree, QEMU looks for firmware in qemu-bundle/ under
# the --firmwarepath directories: the +ds base ships none, Debian's
# SeaBIOS (for the x86 machines QEMU's generic tests start) is linked in.
if [ -d /usr/share/seabios ]; then
    mkdir -p "$obj/qemu-bundle/usr/share"
    ln -sfn /usr/share/seabios "$obj/qemu-bundle/usr/share/seabios"
fi
# Nor the firmware of -M nitro-enclave (microvm): Debian's qemu-system-data
# has it.  Only these files are linked, so the other machines keep theirs.
mkdir -p "$obj/qemu-bundle/usr/share/qemu"
for f in qboot.rom bios-microvm.bin linuxboot_dma.bin pvh.bin; do
    if [ -e "/usr/share/qemu/$f" ]; then
        ln -sfn "/usr/share/qemu/$f" "$obj/qemu-bundle/usr/share/qemu/$f"
    fi
done

for t in qemu-system-x86_64 qemu-system-aarch64 contrib/qemu-eif/qemu-eif \
         contrib/nitro-sim/libnitro-sim.so contrib/nitro-sim/nitro-sim \
         contrib/vhost-user-vsock/vhost-user-vsock; do
    if [ -e "$obj/$t" ]; then
        ln -sfn "obj/$t" "$top/build/$(basename "$t")"
    fi
done
ln -sfn tree/contrib/qemu-nitro/qemu-nitro "$top/build/qemu-nitro"
