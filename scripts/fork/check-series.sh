#!/usr/bin/env bash
# Check that the exported series can be bisected: build every commit of
# build/export (made by `make patches`), in order, incrementally.
#
# The commits are checked out into build/series/tree and built in
# build/series/obj, with the configuration of `make` (build/obj's, see
# build.sh), filtered for each commit: options that the commit's
# meson_options.txt does not have yet are left out, and until the commit
# that adds configs/devices/*/nitro.mak, the devices are those of it that
# QEMU already has (the emulated nitro-enclave machine), so that the
# EIF library and its users are compiled from the first commit that
# changes them.  The layout mirrors build/ so that ccache serves what
# `make` compiled.
#
# The first run compiles QEMU a few times over (the configuration header
# changes along the series); later runs mostly hit ccache.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/fork/checkout.sh"
repo="$top/build/export"
# build/'s real path: configure refuses a path with a space, which the
# checkout's may have (its build/ is then a link to a mirror, see build.sh)
dir="$(realpath "$top/build")/series"
src="$dir/tree"
obj="$dir/obj"

die() {
    echo "check-series: $*" >&2
    exit 1
}

[ -d "$repo/.git" ] || die "no exported series in build/export: run make patches"
[ -f "$top/build/obj/.fork-configure" ] || die "no configured build in build/obj: run make"

# The configuration of `make`, one argument a line (each starts with --).
mapfile -t args < <(sed 's/ --/\n--/g' "$top/build/obj/.fork-configure")

base=$(git -C "$repo" rev-list --max-parents=0 HEAD)
mapfile -t commits < <(git -C "$repo" rev-list --reverse "$base"..HEAD)
[ ${#commits[@]} -gt 0 ] || die "the series in build/export is empty"

rm -rf "$dir"
mkdir -p "$dir"
git clone -q --no-checkout "$repo" "$src"

# The devices of configs/devices/ARCH-softmmu/NAME.mak that the pristine
# base already knows, for the commits before that file exists.
early_devices() {
    local mak=$1 line sym
    while IFS= read -r line; do
        sym=${line%%=*}
        sym=${sym#CONFIG_}
        if git -C "$repo" grep -q "^config $sym\$" "$base" -- '*Kconfig*'; then
            echo "$line"
        fi
    done < <(grep '^CONFIG_' "$mak" || true)
}

# The configure arguments for the commit checked out in $src.
commit_args() {
    local a opt arch name
    for a in "${args[@]}"; do
        case $a in
        --enable-*|--disable-*)
            opt=${a#--enable-}
            opt=${opt#--disable-}
            opt=${opt%%=*}
            grep -q "^option('${opt//-/_}'" "$src/meson_options.txt" || continue
            ;;
        --with-devices-*=*)
            arch=${a#--with-devices-}
            name=${arch#*=}
            arch=${arch%%=*}
            if [ ! -f "$src/configs/devices/$arch-softmmu/$name.mak" ]; then
                early_devices "$top/configs/devices/$arch-softmmu/$name.mak" \
                    >"$src/configs/devices/$arch-softmmu/series-check.mak"
                a="--with-devices-$arch=series-check"
            fi
            ;;
        esac
        printf '%s\n' "$a"
    done
}

export CCACHE_BASEDIR="$dir" CCACHE_NOHASHDIR=1
configured=
n=0
for c in "${commits[@]}"; do
    n=$((n + 1))
    subject=$(git -C "$src" log -1 --format=%s "$c")
    git -C "$src" checkout -q "$c"
    mapfile -t cargs < <(commit_args)
    start=$(date +%s)
    log="$dir/build-$n.log"
    if [ "${cargs[*]}" != "$configured" ]; then
        rm -rf "$obj"
        mkdir -p "$obj"
        if ! (cd "$obj" && "$src/configure" "${cargs[@]}") >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            die "[$n/${#commits[@]}] $subject: configure fails (log: $log)"
        fi
        configured="${cargs[*]}"
    fi
    if ! ninja -C "$obj" >>"$log" 2>&1; then
        grep -E -m 20 'error|FAILED' "$log" >&2 || tail -n 30 "$log" >&2
        die "[$n/${#commits[@]}] $subject: does not build (log: $log)"
    fi
    echo "check-series: [$n/${#commits[@]}] $subject: builds ($(($(date +%s) - start)) s)"
done
echo "check-series: every commit of the ${#commits[@]} builds"
