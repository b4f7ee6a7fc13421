#!/usr/bin/env bash
# Export our work as a `git format-patch` series against pristine QEMU,
# ready for review upstream.
#
# Builds a throw-away git repository in build/export: the pinned base as
# the first commit, then one commit per line of patches/series, in that
# order: a patch of patches/ with the overlay files that go with it, or
# overlay files only with the commit message of a patches/*.msg.  Every
# commit has git's user.name and user.email as author and a
# Signed-off-by of them, and adds its new files to the MAINTAINERS
# section of the work.  The series lands in build/patches/, and QEMU's
# checkpatch must pass on every patch of it.
#
# The repository stays, for `make check-series` (every commit builds).
#
# export-patches.sh --no-checkpatch leaves the style check out (for
# `make check-series`, which only builds the commits).
set -euo pipefail

checkpatch=1
case "${1:-}" in
--no-checkpatch) checkpatch= ;;
'') ;;
*) echo "usage: export-patches.sh [--no-checkpatch]" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/fork/checkout.sh"
. "$top/scripts/fork/base.conf"
repo="$top/build/export"
out="$top/build/patches"
series="$top/patches/series"

die() {
    echo "export-patches: $*" >&2
    exit 1
}

name=$(git -C "$top" config user.name || true)
email=$(git -C "$top" config user.email || true)
if [ -z "$name" ] || [ -z "$email" ]; then
    die "git's user.name and user.email must be set: they are the author and the Signed-off-by of every patch (git config --global user.name 'Your Name'; git config --global user.email you@example.com)"
fi

# The MAINTAINERS section of the work, after the emulated nitro-enclave
# machine's.
section="AWS Nitro Enclaves (-accel nitro, -M nitro)"
section_after="nitro-enclave"

# --- the series: names, their overlay files, checks -------------------------

mapfile -t lines < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$series" | grep -v '^$')
mapfile -t overlay < <(cd "$top" && scripts/fork/prepare-tree.sh --list)

matches() {
    case $2 in
    */) [[ $1 == "$2"* ]] ;;
    *) [[ $1 == $2 ]] ;;
    esac
}

declare -A owner        # overlay file -> index of its line in the series
globs=()                # the glob patterns of the series
for i in "${!lines[@]}"; do
    read -ra words <<<"${lines[$i]}"     # no pathname expansion of globs
    entry=${words[0]}
    [ -f "$top/patches/$entry" ] || die "patches/series names $entry, which patches/ does not have"
    for p in "${words[@]:1}"; do
        n=0
        for f in "${overlay[@]}"; do
            [ -z "${owner[$f]:-}" ] && matches "$f" "$p" || continue
            owner[$f]=$i
            n=$((n + 1))
        done
        [ $n -gt 0 ] || die "pattern '$p' of $entry in patches/series takes no overlay file"
        case $p in *[*?[]*) globs+=("$p") ;; esac
    done
done
for f in "${overlay[@]}"; do
    [ -n "${owner[$f]:-}" ] || die "overlay file $f is in no commit of patches/series: add it to the line of the commit that needs it"
done
for p in "$top"/patches/*.patch; do
    [ -e "$p" ] || continue
    printf '%s\n' "${lines[@]}" | grep -q "^$(basename "$p")\( \|$\)" ||
        die "patches/$(basename "$p") is in no line of patches/series"
done

# --- the repository ---------------------------------------------------------

tarball=$("$top/scripts/fork/fetch-base.sh")
rm -rf "$repo" "$out"
mkdir -p "$repo"
tar -xf "$tarball" -C "$repo" --strip-components=1 "$QEMU_TARBALL_TOPDIR"

git_() {
    git -C "$repo" -c user.name="$name" -c user.email="$email" \
        -c commit.gpgsign=false -c core.autocrlf=false "$@"
}
git_ init -q
git_ add -A --force   # the whole base, its .gitignore notwithstanding
git_ commit -q -m "Import QEMU $QEMU_VERSION ($QEMU_TARBALL_NAME)"
base=$(git_ rev-parse HEAD)

# The MAINTAINERS pattern of a new file: a glob of patches/series that
# matches it (hw/core/eif*.c, also for the library's files that earlier
# lines take), else its topmost directory that pristine QEMU does not have
# (the same for every commit of a directory that the series splits),
# else the file itself.
maintainers_pattern() {
    local f=$1 d=${1%/*} top_new='' g
    for g in "${globs[@]}"; do
        # shellcheck disable=SC2053 # $g is a glob
        if [[ $f == $g ]]; then
            echo "$g"
            return
        fi
    done
    while [ "$d" != "$f" ] && [ -n "$d" ] &&
          ! git_ cat-file -e "$base:$d" 2>/dev/null; do
        top_new=$d
        case $d in */*) d=${d%/*} ;; *) d= ;; esac
    done
    if [ -n "$top_new" ]; then
        echo "$top_new/"
    else
        echo "$f"
    fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in "${!lines[@]}"; do
    read -r entry _ <<<"${lines[$i]}"
    # Patterns for MAINTAINERS, computed before the files exist.
    mpatterns=()
    files=()
    for f in "${overlay[@]}"; do
        [ "${owner[$f]}" = "$i" ] || continue
        files+=("$f")
        # Headers imported from Linux keep their own maintainers
        case $f in
        include/standard-headers/*) ;;
        *) mpatterns+=("$(maintainers_pattern "$f")") ;;
        esac
    done
    for f in "${files[@]}"; do
        mkdir -p "$repo/$(dirname "$f")"
        cp "$top/$f" "$repo/$f"
        git_ add --force "$f"
    done

    case $entry in
    *.patch)
        git mailinfo "$tmp/body" "$tmp/diff" <"$top/patches/$entry" >"$tmp/info"
        subject=$(sed -n 's/^Subject: //p' "$tmp/info")
        [ -n "$subject" ] || die "patches/$entry has no Subject"
        { echo "$subject"; echo; cat "$tmp/body"; } >"$tmp/msg"
        if ! git_ apply --index "$tmp/diff"; then
            die "patches/$entry does not apply at its place in patches/series"
        fi
        ;;
    *)
        cp "$top/patches/$entry" "$tmp/msg"
        ;;
    esac

    if [ ${#mpatterns[@]} -gt 0 ]; then
        mapfile -t mpatterns < <(printf '%s\n' "${mpatterns[@]}" | sort -u)
        python3 "$top/scripts/fork/maintainers-section.py" "$repo/MAINTAINERS" \
            "$section" "$section_after" "$name <$email>" "${mpatterns[@]}"
        git_ add MAINTAINERS
    fi
    git_ commit -q --signoff --cleanup=strip -F "$tmp/msg"
done

git_ format-patch -q -o "$out" "$base"..HEAD
echo "export-patches: $(ls "$out" | wc -l) patches against QEMU $QEMU_VERSION in $out"

[ -n "$checkpatch" ] || exit 0

# Upstream's style check, on every patch as it would be mailed.
bad=0
for p in "$out"/*.patch; do
    if ! (cd "$repo" && perl scripts/checkpatch.pl -q "$p") >"$tmp/checkpatch" 2>&1; then
        bad=$((bad + 1))
        echo "export-patches: checkpatch fails on $(basename "$p"):" >&2
        sed 's/^/  /' "$tmp/checkpatch" >&2
    fi
done
[ $bad -eq 0 ] || die "$bad patches fail QEMU's checkpatch"
echo "export-patches: checkpatch passes on every patch"
