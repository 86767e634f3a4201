#!/usr/bin/env bash
# deps.sh - install everything mmq's build, test suite and demo need, on
# Debian 12 (bookworm).  Idempotent and quiet: when all is present it does
# nothing (no apt-get update); otherwise it runs apt-get update once, then
# one apt-get install of what is missing.  Exit status non-zero, with the
# reason and the tail of apt's log, on failure.
#
#   scripts/deps.sh            install what is missing (root, or via sudo)
#   scripts/deps.sh --check    only report what is missing (exit 1 if any)
#
# Packages and why:
#   build-essential autoconf automake libtool pkg-config   the autotools build
#   libesmtp-dev libconfig-dev libssl-dev                  libraries (configure.ac)
#   python3 python3-aiosmtpd swaks libnet-ssleay-perl      SMTP test peers and
#                                 client (swaks needs Net::SSLeay for --tls)
#   postfix                       smtp-sink/smtp-source for the delivery tests;
#                                 installed as "No configuration": it is never
#                                 started and claims no port
#   clang libclang-rt-14-dev      libFuzzer (-fsanitize=fuzzer) for the fuzzers;
#                                 clang is on the stock image already, the
#                                 runtime is a 3 MB download
#   util-linux procps e2fsprogs   unshare/mount/flock, ps/pgrep, mke2fs (the
#                                 disk-full test's small file system)
#   glusterfs-server glusterfs-client  a real distributed file system for
#                                 t/cluster-gluster.sh (started by the test
#                                 on a loopback address, never as a service)
#   libfaketime                   node clocks hours apart (t/cluster-skew.sh)
set -euo pipefail

PKGS=(
    build-essential autoconf automake libtool pkg-config
    libesmtp-dev libconfig-dev libssl-dev
    python3 python3-aiosmtpd swaks libnet-ssleay-perl
    postfix
    clang libclang-rt-14-dev
    util-linux procps e2fsprogs
    glusterfs-server glusterfs-client libfaketime
)
# More packages for a one-off need, e.g. MMQ_DEPS_EXTRA="strace ltrace".
# shellcheck disable=SC2206
[ -n "${MMQ_DEPS_EXTRA-}" ] && PKGS+=(${MMQ_DEPS_EXTRA})
# Files that must exist afterwards (a package can be "installed" but broken).
FILES=(/usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/bin/swaks /usr/bin/autoreconf)

me=${0##*/}
die() {
    echo "$me: error: $*" >&2
    exit 1
}

if [ ! -r /etc/debian_version ] || ! command -v dpkg-query >/dev/null 2>&1; then
    die "this script installs Debian packages; on another system install the equivalents of: ${PKGS[*]}"
fi

missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done
for f in "${FILES[@]}"; do
    if [ ! -e "$f" ]; then
        case $f in
        */smtp-sink | */smtp-source) p=postfix ;;
        */swaks) p=swaks ;;
        *) p=autoconf ;;
        esac
        [[ " ${missing[*]-} " == *" $p "* ]] || missing+=("$p")
    fi
done

if [ "${1-}" = --check ]; then
    [ ${#missing[@]} -eq 0 ] && exit 0
    echo "$me: missing: ${missing[*]}"
    exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

# Root, or sudo without a password prompt (no stdin in CI).
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
        die "missing packages (${missing[*]}) and not root: run as root, or: sudo apt-get install ${missing[*]}"
    fi
    SUDO=(sudo -n)
fi

log=$(mktemp "${TMPDIR:-/tmp}/mmq-deps.XXXXXX.log")
fail() {
    echo "$me: error: $*" >&2
    echo "$me: last lines of $log:" >&2
    tail -n 25 "$log" | sed 's/^/    /' >&2
    exit 1
}

export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold)

echo "$me: installing ${missing[*]} (log: $log)"

# postfix: no questions, no configuration (so it is never started as an MTA).
if [[ " ${missing[*]} " == *" postfix "* ]]; then
    printf '%s\n' \
        "postfix postfix/main_mailer_type select No configuration" \
        "postfix postfix/mailname string localhost" |
        "${SUDO[@]}" debconf-set-selections >>"$log" 2>&1 ||
        fail "debconf-set-selections failed"
fi

# Once: a fresh image may have stale or no package lists.
"${APT[@]}" update >>"$log" 2>&1 || fail "apt-get update failed"
"${APT[@]}" install --no-install-recommends "${missing[@]}" >>"$log" 2>&1 ||
    fail "apt-get install ${missing[*]} failed"

for f in "${FILES[@]}"; do
    [ -e "$f" ] || fail "$f is still missing after the install"
done
rm -f "$log"
echo "$me: done"
