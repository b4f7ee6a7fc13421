#!/usr/bin/env bash
# Install exactly the Debian packages that the build and the tests need
# (Debian 12 "bookworm" and 13 "trixie").
#
#   deps.sh           install what is missing (as root), or print the
#                     apt-get line that would (as another user) and fail
#   deps.sh --check   only report; exit 1 if something is missing
#
# On Debian 12, meson >= 1.5 and pycotap come from bookworm-backports.  The
# backports source is used through a private apt configuration under
# download/apt-backports; the system's apt sources are never edited.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)

# Building QEMU and our overlay.
build_pkgs="gcc make ninja-build python3 python3-venv pkg-config patch
    xz-utils git ca-certificates flex bison libglib2.0-dev libpixman-1-dev
    zlib1g-dev libisal-dev libfdt-dev libcbor-dev libgnutls28-dev
    device-tree-compiler ccache"
# Needed in a version newer than Debian 12 has (see above).
new_pkgs="meson python3-pycotap"
# Tests; clang's libFuzzer runtime for the EIF fuzzer; SeaBIOS for the
# x86 machines that QEMU's generic tests start (the +ds base has no
# firmware: --firmwarepath finds Debian's); libvirt, virt-install and
# adduser for the libvirt tests; Sphinx and its theme for the manual;
# cryptography and cbor2 for the independent attestation verifier.
test_pkgs="valgrind clang libclang-rt-dev seabios libvirt-daemon
    libvirt-daemon-driver-qemu libvirt-clients virtinst adduser
    python3-sphinx python3-sphinx-rtd-theme python3-cryptography
    python3-cbor2"
# The init of the other architecture's sample enclave (the real-boot
# tests boot both): Debian's cross compiler and its static libc.
case "$(uname -m)" in
aarch64) test_pkgs="$test_pkgs gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;;
*) test_pkgs="$test_pkgs gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
esac
# Run time of -M nitro-enclave (the simulator's boot mode, make demo): the
# +ds base has no qboot.rom (bios-microvm.bin) and linuxboot_dma.bin,
# Debian's qemu-system-data has them; a static libc for the sample
# enclave's init.
run_pkgs="qemu-system-data libc6-dev"

codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

meson_ok() {
    local v
    v=$(dpkg-query -W -f='${Version}' meson 2>/dev/null) || return 1
    installed meson && dpkg --compare-versions "$v" ge 1.5
}

missing=()
for p in $build_pkgs $test_pkgs $run_pkgs; do
    installed "$p" || missing+=("$p")
done
missing_new=()
meson_ok || missing_new+=(meson)
installed python3-pycotap || missing_new+=(python3-pycotap)

if [ ${#missing[@]} -eq 0 ] && [ ${#missing_new[@]} -eq 0 ]; then
    exit 0
fi

backports=
if [ ${#missing_new[@]} -gt 0 ] && [ "$codename" = bookworm ]; then
    backports=1
fi

if [ "${1:-}" = --check ] || [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]} ${missing_new[*]}" >&2
    if [ -n "$backports" ]; then
        echo "deps: as root, run: $0" >&2
        echo "  (it installs ${missing_new[*]} from bookworm-backports)" >&2
    else
        echo "deps: as root, run: apt-get install ${missing[*]} ${missing_new[*]}" >&2
    fi
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
pkgs=("${missing[@]}")
[ -n "$backports" ] || pkgs+=("${missing_new[@]}")
if [ ${#pkgs[@]} -gt 0 ]; then
    apt-get -q update
    apt-get -q install -y --no-install-recommends "${pkgs[@]}"
fi

if [ -n "$backports" ]; then
    # The Debian archive the system already uses, plus bookworm-backports,
    # in a private copy of the system's source list.
    uri=$(apt-cache policy | awk -v s="$codename/main" '$3 == s { print $2; exit }')
    if [ -z "$uri" ]; then
        echo "deps: no Debian $codename archive in the apt sources; install ${missing_new[*]} (meson >= 1.5) by hand" >&2
        exit 1
    fi
    apt_dir="$top/download/apt-backports"
    rm -rf "$apt_dir/sources"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/sources"
    [ ! -f /etc/apt/sources.list ] || cp /etc/apt/sources.list "$apt_dir/sources/system.list"
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ ! -f "$f" ] || cp "$f" "$apt_dir/sources/"
    done
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $codename-backports main" \
        >"$apt_dir/sources/backports.list"
    opts=(-o "Dir::Etc::SourceList=/dev/null"
          -o "Dir::Etc::SourceParts=$apt_dir/sources"
          -o "Dir::State::Lists=$apt_dir/lists")
    apt-get "${opts[@]}" -q update
    apt-get "${opts[@]}" -q install -y --no-install-recommends \
        -t "$codename-backports" "${missing_new[@]}"
fi
