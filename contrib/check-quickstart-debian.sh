#!/usr/bin/env bash
# Checks that the README's "Quick start on a fresh Debian machine" works as written: it
# debootstraps a minimal Debian bookworm, gives it a user with sudo, clones the committed HEAD
# of this repository into it, and runs the README's code block (extracted from README.md, not
# copied here) as that user, then the "A first SOAP call" block against the server it started.
#
#   sudo contrib/check-quickstart-debian.sh [ROOT]      # ROOT defaults to /var/tmp/provd-quickstart
#
# Needs root, debootstrap (apt-get install debootstrap), a Debian mirror and crates.io.
# Too slow for CI: about 1 minute of debootstrap (cached in ROOT.base, so once), a minute of
# apt-get, then `cargo install` from scratch (14 to 21 minutes with CARGO_BUILD_JOBS=1 on a
# 2-core machine shared with other builds, 16 to 24 minutes in all; set JOBS=N for more). The log
# is in ROOT.log.
#
# One step is substituted: rustup cannot download a toolchain where this was written, so the
# README's `curl ... sh.rustup.rs | sh` line is replaced by what it leaves behind: ~/.cargo/bin
# with the rustup proxies and ~/.cargo/env (copied from the host), and ~/.rustup with one
# toolchain, the host's toolchain for Cargo.toml's `rust-version`, bind-mounted read-only as
# the user's `stable` (TOOLCHAIN=/path/to/toolchain overrides). The build therefore also
# proves that `rust-version` is enough.
#
# ROOT is left in place afterwards (nothing stays mounted); a new run starts from a fresh copy
# of ROOT.base, the pristine debootstrap.
set -euo pipefail

ROOT=${1:-/var/tmp/provd-quickstart}
ROOT=${ROOT%/}
BASE=$ROOT.base
LOG=$ROOT.log
MIRROR=${MIRROR:-http://deb.debian.org/debian}
JOBS=${JOBS:-1}
REPO=$(cd "$(dirname "$0")/.." && pwd)
RUST_VERSION=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' "$REPO/Cargo.toml")
HOST_RUSTUP=${RUSTUP_HOME:-$HOME/.rustup}
HOST_CARGO=${CARGO_HOME:-$HOME/.cargo}
TOOLCHAIN=${TOOLCHAIN:-$(readlink -f "$HOST_RUSTUP/toolchains/$RUST_VERSION.0-x86_64-unknown-linux-gnu" 2>/dev/null ||
    readlink -f "$HOST_RUSTUP/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu")}

[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot, mount)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "apt-get install debootstrap first" >&2; exit 2; }
[ -x "$TOOLCHAIN/bin/rustc" ] || { echo "no toolchain for rust-version $RUST_VERSION at $TOOLCHAIN (set TOOLCHAIN)" >&2; exit 2; }
"$TOOLCHAIN/bin/rustc" --version | grep -q "^rustc $RUST_VERSION[. ]" ||
    { echo "$TOOLCHAIN is not Rust $RUST_VERSION: $("$TOOLCHAIN/bin/rustc" --version)" >&2; exit 2; }

mounted_under() { findmnt -rn -o TARGET | grep -E "^$1(/|$)" || true; }

MOUNTS=()
cleanup() {
    # The server the README starts in the background, and anything else left in the chroot.
    if [ -d "$ROOT/proc" ]; then
        for p in /proc/[0-9]*; do
            [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill "${p#/proc/}" 2>/dev/null
        done
        sleep 1
    fi
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" || true
    done
    MOUNTS=()
    local left
    left=$(mounted_under "$ROOT")
    [ -z "$left" ] || echo "warning: still mounted: $left" >&2
}
trap cleanup EXIT

mnt() { mount "$@"; MOUNTS+=("${!#}"); }

exec > >(tee "$LOG") 2>&1
start=$(date +%s)
echo "== $(date -u +%FT%TZ) checking $REPO at $(git -C "$REPO" rev-parse --short HEAD) in $ROOT"

# The pristine base, made once.
if [ ! -e "$BASE/.provd-quickstart-base" ]; then
    [ ! -e "$BASE" ] || { echo "$BASE exists but is not a base made by this script" >&2; exit 2; }
    debootstrap --variant=minbase bookworm "$BASE" "$MIRROR"
    touch "$BASE/.provd-quickstart-base"
fi

# A fresh machine from it: never delete through a mount point.
if [ -e "$ROOT" ]; then
    [ -z "$(mounted_under "$ROOT")" ] || { echo "something is mounted under $ROOT" >&2; exit 2; }
    [ -e "$ROOT/.provd-quickstart-base" ] || { echo "$ROOT exists and was not made by this script" >&2; exit 2; }
    rm -rf --one-file-system "$ROOT"
fi
cp -a "$BASE" "$ROOT"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# A chroot shares the host's name: resolvable, as on an installed machine (sudo looks it up).
hostname >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost ip6-localhost ip6-loopback\n' "$(hostname)" >"$ROOT/etc/hosts"

mnt -t proc proc "$ROOT/proc"
mnt --bind /dev "$ROOT/dev"
mnt --bind /dev/pts "$ROOT/dev/pts"
mnt -t sysfs sys "$ROOT/sys"

# Where TLS is intercepted (as where this was written), the certificate authorities the host
# trusts besides Debian's: the README's `apt-get install ca-certificates` adds them.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
fi

# What the README takes for granted on a fresh machine: a user who may sudo.
chroot "$ROOT" apt-get -qq update
DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get -qq install -y sudo >/dev/null
chroot "$ROOT" useradd --create-home --shell /bin/bash dev
echo 'dev ALL=(ALL) NOPASSWD:ALL' >"$ROOT/etc/sudoers.d/dev"

# Substitute for `curl ... sh.rustup.rs | sh -s -- -y` (see the top of this file).
H=$ROOT/home/dev
mkdir -p "$H/.cargo/bin" "$H/.rustup/toolchains/stable-x86_64-unknown-linux-gnu" "$H/.rustup/update-hashes"
cp "$HOST_CARGO/bin/rustup" "$H/.cargo/bin/rustup"
for t in cargo cargo-clippy cargo-fmt rustc rustdoc rustfmt rust-gdb rust-lldb clippy-driver; do
    ln -s rustup "$H/.cargo/bin/$t"
done
cp "$HOST_CARGO/env" "$H/.cargo/env"
printf 'version = "12"\ndefault_toolchain = "stable-x86_64-unknown-linux-gnu"\nprofile = "default"\nauto_self_update = "disable"\n\n[overrides]\n' \
    >"$H/.rustup/settings.toml"
chroot "$ROOT" chown -R dev:dev /home/dev
mnt --bind "$TOOLCHAIN" "$H/.rustup/toolchains/stable-x86_64-unknown-linux-gnu"
mount -o remount,bind,ro "$H/.rustup/toolchains/stable-x86_64-unknown-linux-gnu"

# The repository as committed (uncommitted changes are not checked).
branch=$(git -C "$REPO" rev-parse --abbrev-ref HEAD)
git clone -q --bare --branch "$branch" "$REPO" "$ROOT/srv/provd.git"
chroot "$ROOT" chown -R dev:dev /srv/provd.git

# The README's block, as written, but for the two lines above.
awk '/^## Quick start on a fresh Debian machine/ { s = 1 } s && /^```/ { if (b) exit; b = 1; next } b' \
    "$REPO/README.md" >"$ROOT/tmp/quickstart.block"
grep -q 'sh.rustup.rs' "$ROOT/tmp/quickstart.block" || { echo "README: no rustup line in the quick start?" >&2; exit 1; }
awk '/^## A first SOAP call/ { s = 1 } s && /^```/ { if (b) exit; b = 1; next } b' \
    "$REPO/README.md" >"$ROOT/tmp/first-call.block"
{
    echo "set -ex"
    echo "export CARGO_BUILD_JOBS=$JOBS   # not in the README: a courtesy on a shared machine"
    sed -e 's|^curl .*sh\.rustup\.rs.*|: "install Rust: substituted, see contrib/check-quickstart-debian.sh"|' \
        -e 's|^\(\. "$HOME/\.cargo/env"\)$|\1; rustc --version; cargo --version|' \
        -e 's|^git clone <this repository> provd|git clone /srv/provd.git provd|' \
        "$ROOT/tmp/quickstart.block"
    echo ': "== A first SOAP call"'
    echo "answer=\$($(cat "$ROOT/tmp/first-call.block"))"
    echo 'echo "$answer"'
    echo 'grep -q RET_SUCCESS <<<"$answer" && grep -q PROVFLD_SERVER_TIME <<<"$answer"'
    echo 'kill %1; wait %1 || true'
    echo ': "== quick start OK"'
} >"$ROOT/tmp/quickstart.sh"
chmod 644 "$ROOT/tmp/quickstart.sh"
echo "== the script run as user dev:"
cat "$ROOT/tmp/quickstart.sh"
echo "=="

status=0
nice -n 10 chroot "$ROOT" su - dev -c 'bash /tmp/quickstart.sh' </dev/null || status=$?
elapsed=$(($(date +%s) - start))
if [ "$status" = 0 ]; then
    echo "== PASS: the quick start works as written ($((elapsed / 60)) min $((elapsed % 60)) s)"
else
    echo "== FAIL (exit $status) after $((elapsed / 60)) min $((elapsed % 60)) s: see above"
fi
exit "$status"
