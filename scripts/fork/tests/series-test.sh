#!/usr/bin/env bash
#
# The series for upstream (`make patches`): it exports, every patch passes
# QEMU's checkpatch and carries the author's Signed-off-by, the series
# ends in exactly the tree that `make` builds and tests, QAPI says
# "since" in QEMU's format, meson-buildoptions.sh is what its generator
# writes, and MAINTAINERS covers every file the series adds.  That every
# commit builds is `make check-series` (it compiles QEMU several times).
#
# Usage: series-test.sh, with QEMU_BUILD_ROOT set (the fork's build/obj:
# the checkout is two levels up).  TAP output.
#
# SPDX-License-Identifier: GPL-2.0-or-later

set -uo pipefail

obj=$QEMU_BUILD_ROOT
top=$(cd "$obj/../.." && pwd)
tree="$top/build/tree"
repo="$top/build/export"
out="$top/build/patches"
n=0
failed=0

tap() {
    local ok=$1 what=$2 diag=${3:-}
    n=$((n + 1))
    if [ "$ok" = 0 ]; then
        echo "ok $n - $what"
    else
        echo "not ok $n - $what"
        failed=$((failed + 1))
        [ -z "$diag" ] || printf '%s\n' "$diag" | head -n 40 | sed 's/^/# /'
    fi
}

# A machine without a git identity (a fresh CI machine) gets one for
# this test: what is checked is that the series carries the identity
# that git has
if [ -z "$(git -C "$top" config user.name)" ] ||
   [ -z "$(git -C "$top" config user.email)" ]; then
    export GIT_CONFIG_COUNT=2
    export GIT_CONFIG_KEY_0=user.name GIT_CONFIG_VALUE_0='Series Test'
    export GIT_CONFIG_KEY_1=user.email
    export GIT_CONFIG_VALUE_1=series-test@example.invalid
fi

log=$("$top/scripts/fork/export-patches.sh" 2>&1)
tap $? "make patches exports the series and checkpatch passes on it" "$log"

name=$(git -C "$top" config user.name)
email=$(git -C "$top" config user.email)
first=$(git -C "$repo" rev-list --max-parents=0 HEAD)
bad=$(git -C "$repo" log --format='%an <%ae>' "$first"..HEAD |
      grep -vxF "$name <$email>")
for p in "$out"/*.patch; do
    sob="Signed-off-by: $name <$email>"
    grep -qxF "$sob" "$p" || bad="$bad $(basename "$p")"
done
tap "$([ -z "$bad" ] && [ -n "$(ls "$out")" ]; echo $?)" \
    "every patch is from, and signed off by, git's user ($name <$email>)" \
    "not:$bad"

# The last commit is the tree that make builds (build/tree), but for
# MAINTAINERS, which only the export changes.
diffs=$(diff -rq --no-dereference -x .git -x '.fork-*' -x '*.orig' \
            -x __pycache__ \
            "$repo" "$tree" 2>&1 | grep -v "^Files $repo/MAINTAINERS and ")
tap "$([ -z "$diffs" ]; echo $?)" \
    "the series ends in the tree that make builds" "$diffs"

since=$(cd "$repo" && git diff "$first" HEAD \
            -- 'qapi/*.json' | grep -iE '^\+.*since' |
        grep -vE '\(since [0-9]+\.[0-9]+\)|Since: [0-9]+\.[0-9]+$')
tap "$([ -z "$since" ]; echo $?)" \
    "QAPI says since in QEMU's format (since X.Y)" "$since"

gen=$(cd "$repo" &&
      "$obj/pyvenv/bin/meson" introspect --buildoptions meson.build |
      python3 scripts/meson-buildoptions.py |
      diff -u scripts/meson-buildoptions.sh -)
tap "$([ -z "$gen" ]; echo $?)" \
    "scripts/meson-buildoptions.sh is what its generator writes" \
    "$gen"

added=$(cd "$repo" && git diff --name-only --diff-filter=A "$first" HEAD)
uncovered=$(cd "$repo" && for f in $added; do
    # headers imported from Linux keep QEMU's maintainers of those
    case $f in include/standard-headers/*) continue ;; esac
    perl scripts/get_maintainer.pl --no-git-fallback --no-rolestats \
        -f "$f" 2>/dev/null | grep -qF "$email" || echo "$f"
done)
tap "$([ -z "$uncovered" ]; echo $?)" \
    "MAINTAINERS names git's user for every file the series adds" "$uncovered"

echo "1..$n"
[ $failed -eq 0 ]
