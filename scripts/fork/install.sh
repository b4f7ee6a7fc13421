#!/usr/bin/env bash
# Install or uninstall the built fork, like any QEMU (`make install`,
# `make uninstall`).
#
#   install.sh [--uninstall]    with PREFIX (default /usr/local), DESTDIR
#
# Installed under DESTDIR/PREFIX: what QEMU's own `meson install` installs
# for this build (the emulators qemu-system-x86_64 and
# qemu-system-aarch64, their data files under share/qemu), plus our tools
# bin/qemu-eif, bin/qemu-nitro, bin/nitro-sim, bin/vhost-user-vsock and
# the simulator's preload library lib/nitro-sim/libnitro-sim.so.  QEMU's binaries are relocatable: they
# find their data files relative to themselves, so one build installs
# under any PREFIX.
#
# Uninstalling removes the files that installing this build puts there,
# and the directories that held them once they are empty.
set -euo pipefail

# The real path: meson names its files by it, also when the checkout is
# reached through a symlink, a bind mount or after a move
top=$(cd "$(dirname "$0")/../.." && pwd -P)
obj="$top/build/obj"
meson="$obj/pyvenv/bin/meson"

die() {
    echo "install: $*" >&2
    exit 1
}

uninstall=
case "${1:-}" in
--uninstall) uninstall=1 ;;
'') ;;
*) die "unknown argument '$1' (usage: install.sh [--uninstall])" ;;
esac

prefix=${PREFIX:-/usr/local}
case $prefix in
/*) ;;
*) die "PREFIX must be an absolute path, not '$prefix'" ;;
esac
prefix=${prefix%/}
dest="${DESTDIR:-}$prefix"

tools=(contrib/qemu-eif/qemu-eif contrib/nitro-sim/nitro-sim
       contrib/nitro-sim/libnitro-sim.so
       contrib/vhost-user-vsock/vhost-user-vsock)
for t in qemu-system-x86_64 qemu-system-aarch64 "${tools[@]}"; do
    [ -e "$obj/$t" ] || die "$t is not built: run make first"
done

# QEMU's own install into a staging directory, at the prefix QEMU was
# configured with, then ours next to it.  `make` builds the emulators, not
# all that meson installs (trace-events-all): build it first.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mapfile -t generated < <("$meson" introspect --installed "$obj" |
    python3 -c 'import json, os, sys
obj = os.path.realpath(sys.argv[1])
for src in json.load(sys.stdin):
    src = os.path.realpath(src)
    if src.startswith(obj + "/"):
        print(os.path.relpath(src, obj))' "$obj")
# Without targets ninja would build everything, the tests too
if [ ${#generated[@]} -gt 0 ]; then
    ninja -C "$obj" "${generated[@]}" >/dev/null
fi
"$meson" install -C "$obj" --no-rebuild --quiet --destdir "$stage" >/dev/null
built_prefix=$("$meson" introspect --buildoptions "$obj" |
    python3 -c 'import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
root="$stage$built_prefix"
install -m 755 -D "$obj/contrib/qemu-eif/qemu-eif" "$root/bin/qemu-eif"
install -m 755 -D "$obj/contrib/nitro-sim/nitro-sim" "$root/bin/nitro-sim"
install -m 755 -D "$top/contrib/qemu-nitro/qemu-nitro" "$root/bin/qemu-nitro"
# The vsock backend of -M nitro-enclave, which the simulator's real-boot
# mode runs (it looks in PREFIX/bin)
install -m 755 -D "$obj/contrib/vhost-user-vsock/vhost-user-vsock" \
    "$root/bin/vhost-user-vsock"
install -m 644 -D "$obj/contrib/nitro-sim/libnitro-sim.so" \
    "$root/lib/nitro-sim/libnitro-sim.so"

mapfile -t files < <(cd "$root" && find . \( -type f -o -type l \) -printf '%P\n' | LC_ALL=C sort)

if [ -z "$uninstall" ]; then
    for f in "${files[@]}"; do
        if [ -L "$root/$f" ]; then
            mkdir -p "$dest/$(dirname "$f")"
            cp -P "$root/$f" "$dest/$f"
        else
            install -D -m "$(stat -c %a "$root/$f")" "$root/$f" "$dest/$f"
        fi
    done
    echo "install: ${#files[@]} files under $dest"
    exit 0
fi

n=0
for f in "${files[@]}"; do
    if [ -e "$dest/$f" ] || [ -L "$dest/$f" ]; then
        rm -f "$dest/$f"
        n=$((n + 1))
    fi
done
# The directories of the install (share/icons/hicolor/..., share/qemu,
# lib/nitro-sim...), deepest first, when nothing else is left in them.
mapfile -t dirs < <(cd "$root" && find . -mindepth 1 -type d -printf '%P\n' |
    LC_ALL=C sort -r)
for d in "${dirs[@]}"; do
    [ ! -d "$dest/$d" ] || rmdir --ignore-fail-on-non-empty "$dest/$d"
done
echo "uninstall: $n files removed from $dest"
