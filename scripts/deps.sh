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
#   time                          GNU time: peak RSS of mmq-bounce on hostile
#                                 input (t/bounce-hostile.sh)
#   strace                        syscall fault injection and tracing: kill a
#                                 program at an exact syscall (t/process-*.sh)
#                                 and check every rename into a queue is
#                                 followed by a directory fsync (t/fsync-trace.sh)
#   libidn12 libgnutls-dane0 libdb5.3 libnsl2 libpcre2-8-0
#                                 the libraries of exim4-daemon-light (see below)
#   python3-prometheus-client     a real parser of the Prometheus text format
#                                 for "mmqctl stats --prometheus" (t/ctl-prometheus.sh)
#   opendkim opendkim-tools       the DKIM signing milter the shipped Postfix wiring
#                                 uses, and opendkim-genkey (t/mta-postfix.sh starts
#                                 its own opendkim; the service is never used)
#   python3-dkim dnsmasq-base     dkimverify, the receiving side's DKIM verifier, and
#                                 the test's DNS server serving the public key
#                                 (t/mta-postfix.sh, t/mta-exim.sh)
#   libc-ares-dev libpsl-dev publicsuffix  mmq-process's DMARC lookups: the
#                                 resolver (c-ares), organisational domains
#                                 (libpsl) and the system's Public Suffix List
#   (dnsmasq-base, above)         also the DNS server serving _dmarc
#                                 records for t/process-dmarc.sh (started by
#                                 the test in its own mount namespace)
#
# Exim, for t/mta-exim.sh: Debian's exim4 and postfix packages conflict, so
# exim4-daemon-light (4.96 on Debian 12) is not installed but fetched with
# "apt-get download" and unpacked with dpkg -x into $MMQ_EXIM_DIR (default
# /var/cache/mmq-test/exim), set-user-ID bit removed (the test runs it as
# root with its own configuration file, -C).  The binary has the user
# Debian-exim compiled in, so that system user and group are created when
# missing (as exim4-base's postinst would).  Nothing else of Exim is
# installed or started.
set -euo pipefail

PKGS=(
    build-essential autoconf automake libtool pkg-config
    libesmtp-dev libconfig-dev libssl-dev
    python3 python3-aiosmtpd swaks libnet-ssleay-perl
    postfix
    clang libclang-rt-14-dev
    util-linux procps e2fsprogs
    glusterfs-server glusterfs-client libfaketime
    time
    strace
    libidn12 libgnutls-dane0 libdb5.3 libnsl2 libpcre2-8-0
    python3-prometheus-client
    opendkim opendkim-tools python3-dkim dnsmasq-base
    libc-ares-dev libpsl-dev publicsuffix
)
EXIM_DIR=${MMQ_EXIM_DIR:-/var/cache/mmq-test/exim}
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

exim_missing=0
if [ ! -x "$EXIM_DIR/usr/sbin/exim4" ] || ! id -u Debian-exim >/dev/null 2>&1 ||
    ! getent group Debian-exim >/dev/null 2>&1; then
    exim_missing=1
fi

if [ "${1-}" = --check ]; then
    [ ${#missing[@]} -eq 0 ] && [ "$exim_missing" = 0 ] && exit 0
    echo "$me: missing: ${missing[*]-}${missing[*]:+ }$([ "$exim_missing" = 1 ] && echo "exim (unpacked in $EXIM_DIR, user Debian-exim)")"
    exit 1
fi
[ ${#missing[@]} -eq 0 ] && [ "$exim_missing" = 0 ] && exit 0

# Root, or sudo without a password prompt (no stdin in CI).
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
        die "missing packages (${missing[*]-}${missing[*]:+ }$([ "$exim_missing" = 1 ] && echo exim)) and not root: run as root"
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

install_packages() {
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
}

# exim4-daemon-light, unpacked (see the top of this file).
install_exim() {
    local dl deb
    echo "$me: unpacking exim4-daemon-light into $EXIM_DIR (log: $log)"
    if ! getent group Debian-exim >/dev/null 2>&1; then
        "${SUDO[@]}" groupadd --system Debian-exim >>"$log" 2>&1 ||
            getent group Debian-exim >/dev/null 2>&1 || fail "groupadd Debian-exim failed"
    fi
    if ! id -u Debian-exim >/dev/null 2>&1; then
        "${SUDO[@]}" useradd --system -g Debian-exim -d /var/spool/exim4 -M \
            -s /usr/sbin/nologin Debian-exim >>"$log" 2>&1 ||
            id -u Debian-exim >/dev/null 2>&1 || fail "useradd Debian-exim failed"
    fi
    [ -x "$EXIM_DIR/usr/sbin/exim4" ] && return 0
    dl=$(mktemp -d "${TMPDIR:-/tmp}/mmq-exim.XXXXXX") || fail "mktemp failed"
    chmod 777 "$dl" # apt-get download drops to user _apt when it can
    if ! (cd "$dl" && "${APT[@]}" download exim4-daemon-light) >>"$log" 2>&1; then
        # stale or missing package lists: update once and try again
        "${APT[@]}" update >>"$log" 2>&1 || fail "apt-get update failed"
        (cd "$dl" && "${APT[@]}" download exim4-daemon-light) >>"$log" 2>&1 ||
            fail "apt-get download exim4-daemon-light failed"
    fi
    deb=$(find "$dl" -maxdepth 1 -name 'exim4-daemon-light_*.deb' | head -n 1)
    [ -n "$deb" ] || fail "apt-get download left no exim4-daemon-light .deb"
    "${SUDO[@]}" rm -rf "$EXIM_DIR.new"
    "${SUDO[@]}" mkdir -p "$EXIM_DIR.new" || fail "mkdir $EXIM_DIR.new failed"
    "${SUDO[@]}" dpkg -x "$deb" "$EXIM_DIR.new" >>"$log" 2>&1 || fail "dpkg -x $deb failed"
    # no set-user-ID copy of an MTA lying around: the test runs it as root
    "${SUDO[@]}" find "$EXIM_DIR.new" -type f -perm /6000 -exec chmod ug-s {} + ||
        fail "chmod ug-s in $EXIM_DIR.new failed"
    "${SUDO[@]}" rm -rf "$EXIM_DIR"
    "${SUDO[@]}" mv "$EXIM_DIR.new" "$EXIM_DIR" || fail "mv $EXIM_DIR.new $EXIM_DIR failed"
    rm -rf "$dl"
    [ -x "$EXIM_DIR/usr/sbin/exim4" ] || fail "$EXIM_DIR/usr/sbin/exim4 is missing after unpacking"
    # it must load (its libraries are in PKGS)
    "$EXIM_DIR/usr/sbin/exim4" -C /dev/null -bV >>"$log" 2>&1 ||
        fail "$EXIM_DIR/usr/sbin/exim4 -bV failed"
}

[ ${#missing[@]} -eq 0 ] || install_packages
[ "$exim_missing" = 0 ] || install_exim
rm -f "$log"
echo "$me: done"
