#!/usr/bin/env bash
# Export our work as a `git format-patch` series against pristine QEMU.
#
# Builds a throw-away git repository in build/export: the pinned base as
# the first commit, then one commit per overlay directory (new files do not
# break the build on their own), then the patches of patches/ in order with
# `git am`.  The series lands in build/patches/.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/fork/base.conf"
repo="$top/build/export"
out="$top/build/patches"
tarball=$("$top/scripts/fork/fetch-base.sh")

rm -rf "$repo" "$out"
mkdir -p "$repo"
tar -xf "$tarball" -C "$repo" --strip-components=1 "$QEMU_TARBALL_TOPDIR"

git_() {
    git -C "$repo" -c user.name="Nitro Enclaves for QEMU" \
        -c user.email=nitro-qemu@invalid -c commit.gpgsign=false "$@"
}
git_ init -q
git_ add -A
git_ commit -q -m "Import QEMU $QEMU_VERSION ($QEMU_TARBALL_NAME)"
base=$(git_ rev-parse HEAD)

# One commit per overlay directory, e.g. accel/nitro, hw/core, tests/qtest.
files=$(cd "$top" && scripts/fork/prepare-tree.sh --list)
groups=$(echo "$files" | awk -F/ '{ print (NF > 2 ? $1 "/" $2 : $1) }' | sort -u)
for g in $groups; do
    while IFS= read -r f; do
        case "$f" in "$g"/*|"$g") ;; *) continue ;; esac
        mkdir -p "$repo/$(dirname "$f")"
        cp "$top/$f" "$repo/$f"
        git_ add "$f"
    done <<<"$files"
    msg="$g: Nitro Enclaves support

Add $g of the Nitro Enclaves work."
    history=$(git -C "$top" log --format='  %s' -- "$g" 2>/dev/null | head -n 20 || true)
    if [ -n "$history" ]; then
        msg="$msg

Squashed from the fork's history:
$history"
    fi
    git_ commit -q -m "$msg"
done

for p in "$top"/patches/*.patch; do
    [ -e "$p" ] || continue
    git_ am -q --committer-date-is-author-date "$p"
done

git_ format-patch -q -o "$out" "$base"..HEAD
echo "export-patches: $(ls "$out" | wc -l) patches against QEMU $QEMU_VERSION in $out"
