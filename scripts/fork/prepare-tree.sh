#!/usr/bin/env bash
# Make build/tree the pinned QEMU base + our overlay + patches/*.patch.
#
# The tree is unpacked once.  It is re-created from scratch only when the
# base pin (base.conf) or an already-applied patch changes, or when an
# overlay file that the tree carries was removed from the repo.  Patches
# appended to the series are applied to the existing tree, and only overlay
# files whose content changed are copied, so mtimes (and ninja's rebuild)
# stay minimal.
#
# Prints "recreated" on stdout when the tree was made anew.
# prepare-tree.sh --list only lists the overlay files.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/fork/base.conf"
tree="$top/build/tree"
base_file="$tree/.fork-base"
applied_file="$tree/.fork-patches"
list_file="$tree/.fork-overlay"

# Everything in the repo except what only the repo needs is overlay.
overlay_files() {
    (cd "$top" && find . \
        \( -path ./.git -o -path ./build -o -path ./download \
           -o -path ./patches -o -path ./.ci -o -path ./scripts/fork \) -prune \
        -o -type f \
        ! -path ./Makefile ! -path ./README.md ! -path ./.gitignore \
        ! -name '*~' ! -name '*.orig' ! -name '*.rej' ! -name '.*.swp' \
        -print | sed 's|^\./||' | LC_ALL=C sort)
}

if [ "${1:-}" = --list ]; then
    overlay_files
    exit 0
fi

want_base=$(sha256sum <"$top/scripts/fork/base.conf" | cut -d' ' -f1)

# The series as "name sha256" lines, in the order of patches/series (the
# order in which `make patches` exports it).  A patch that the series does
# not name would be neither applied nor exported: stop.
for p in "$top"/patches/*.patch; do
    [ -e "$p" ] || continue
    if ! sed -e 's/#.*//' "$top/patches/series" | awk '{print $1}' |
            grep -qxF "$(basename "$p")"; then
        echo "prepare-tree: patches/$(basename "$p") is in no line of" \
             "patches/series" >&2
        exit 1
    fi
done
want_patches=$(sed -e 's/#.*//' "$top/patches/series" | awk '{print $1}' |
               grep '\.patch$' | while read -r name; do
                   echo "$name $(sha256sum <"$top/patches/$name" | cut -d' ' -f1)"
               done)

files=$(overlay_files)

need_recreate() {
    [ -f "$base_file" ] && [ "$(cat "$base_file")" = "$want_base" ] || return 0
    # The applied series must be a prefix of the wanted one.
    local applied
    applied=$(cat "$applied_file" 2>/dev/null) || return 0
    [ "$applied" = "$(echo "$want_patches" | head -n "$(echo -n "$applied" | grep -c '^')")" ] ||
        return 0
    # An overlay file that disappeared must not linger in the tree (it may
    # shadow a base file): start over.
    [ -f "$list_file" ] || return 0
    if comm -23 "$list_file" <(echo "$files") | grep -q .; then
        return 0
    fi
    return 1
}

sync_overlay() {
    local dest=$1 f
    while IFS= read -r f; do
        [ -n "$f" ] || continue
        if ! cmp -s "$top/$f" "$dest/$f"; then
            mkdir -p "$dest/$(dirname "$f")"
            cp "$top/$f" "$dest/$f"
        fi
    done <<<"$files"
}

# Apply the patches of the series that $1 does not have yet.
apply_patches() {
    local dest=$1 line name applied
    applied=$(cat "$dest/.fork-patches" 2>/dev/null || true)
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        if grep -qxF "$line" <<<"$applied"; then
            continue
        fi
        name=${line%% *}
        echo "prepare-tree: applying $name" >&2
        if ! patch -d "$dest" -p1 --batch --forward --quiet \
                <"$top/patches/$name" >&2; then
            echo "prepare-tree: patch $name does not apply to QEMU $QEMU_VERSION" >&2
            exit 1
        fi
        echo "$line" >>"$dest/.fork-patches"
    done <<<"$want_patches"
}

recreated=
if need_recreate; then
    tarball=$("$top/scripts/fork/fetch-base.sh")
    echo "prepare-tree: unpacking $(basename "$tarball")" >&2
    rm -rf "$tree.new"
    mkdir -p "$tree.new"
    tar -xf "$tarball" -C "$tree.new" --strip-components=1 \
        "$QEMU_TARBALL_TOPDIR"
    sync_overlay "$tree.new"
    apply_patches "$tree.new"
    echo "$want_base" >"$tree.new/.fork-base"
    rm -rf "$tree"
    mv "$tree.new" "$tree"
    recreated=1
else
    sync_overlay "$tree"
    apply_patches "$tree"
fi
echo "$files" >"$list_file"
[ -z "$recreated" ] || echo recreated
