#!/usr/bin/env bash
# Find the pinned QEMU base tarball and print its path.
#
# Sources, first that works:
#   1. $QEMU_TARBALL (CI points it at ../shared/qemu/)
#   2. the project's download cache (download/)
#   3. Debian's source archive, through `apt-get source --download-only`
#      with a private apt configuration whose archive address is taken
#      from the system's own Debian apt sources (nothing system-wide is
#      changed, no host name is written here).
# Every candidate is checked against the pinned sha256.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/fork/base.conf"
cache="$top/download"

die() {
    printf 'fetch-base: %s\n' "$*" >&2
    exit 1
}

verify() {
    local f=$1
    [ -f "$f" ] || return 1
    local sum
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$sum" != "$QEMU_TARBALL_SHA256" ]; then
        printf 'fetch-base: %s: sha256 %s, expected %s; ignored\n' \
            "$f" "$sum" "$QEMU_TARBALL_SHA256" >&2
        return 1
    fi
}

if [ -n "${QEMU_TARBALL:-}" ]; then
    verify "$QEMU_TARBALL" || die "QEMU_TARBALL=$QEMU_TARBALL is not the pinned $QEMU_TARBALL_NAME"
    realpath "$QEMU_TARBALL"
    exit 0
fi

if verify "$cache/$QEMU_TARBALL_NAME" 2>/dev/null; then
    echo "$cache/$QEMU_TARBALL_NAME"
    exit 0
fi

# The Debian archive the system already uses, e.g. "http://<mirror>/debian".
debian_archive() {
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || return 1
    apt-cache policy 2>/dev/null |
        awk -v s="$codename/main" '$3 == s { print $2; exit }'
}

fetch_from_debian() {
    command -v apt-get >/dev/null || return 1
    local uri
    uri=$(debian_archive) || return 1
    [ -n "$uri" ] || return 1

    local apt="$cache/apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    cat >"$apt/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri unstable main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri testing main
EOF
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
                -o "Dir::Etc::SourceParts=-"
                -o "Dir::State::Lists=$apt/lists"
                -o "Dir::Cache=$apt/cache"
                -o "APT::Sandbox::User=root")
    printf 'fetch-base: fetching qemu %s from %s\n' "$QEMU_DEBIAN_VERSION" "$uri" >&2
    apt-get "${opts[@]}" -q update >&2 || return 1
    (cd "$cache" && apt-get "${opts[@]}" -q source --download-only \
        "qemu=$QEMU_DEBIAN_VERSION" >&2) || return 1
    verify "$cache/$QEMU_TARBALL_NAME"
}

mkdir -p "$cache"
if fetch_from_debian; then
    echo "$cache/$QEMU_TARBALL_NAME"
    exit 0
fi

die "cannot find QEMU base $QEMU_TARBALL_NAME (sha256 $QEMU_TARBALL_SHA256).
Put it in $cache/, or run with QEMU_TARBALL=/path/to/$QEMU_TARBALL_NAME,
or make Debian's source archive reachable through apt."
