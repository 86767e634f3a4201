#!/usr/bin/env bash
# test.sh - build mmq and run its whole test suite, twice:
#
#   build/       ./configure --sysconfdir=/etc                     make check
#   build-asan/  ./configure --sysconfdir=/etc --enable-sanitizers make check
#                (AddressSanitizer + UBSan; LeakSanitizer when it can work)
#
# Both builds are out of tree, beside the sources.  Works from any
# directory and on a fresh clone (it runs scripts/deps.sh and ./autogen.sh).
# Exit status 0 only if both builds built and passed every test.  On a
# failure the build's test-suite.log (the failed tests' logs) is printed.
#
# Environment:
#   JOBS=N            parallel make jobs (default: number of CPUs)
#   MMQ_CLEAN=1       remove build/ and build-asan/ first (default: reuse)
#   MMQ_BUILDS="..."  which builds to run (default: "build build-asan")
#   MMQ_CHECK_TIMEOUT=S  limit for one build's make check (default 900 s)
#   MMQ_SKIP_DEPS=1   do not run scripts/deps.sh
#   MMQ_VERBOSE=1     show every passing test point too
set -uo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || exit 1
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
BUILDS=${MMQ_BUILDS:-build build-asan}
CHECK_TIMEOUT=${MMQ_CHECK_TIMEOUT:-900}
me=test.sh

say() { printf '\n==> %s\n' "$*"; }
now() { date +%s; }
t_start=$(now)

# Nothing to read from stdin (CI has none): no test may wait on it.
exec </dev/null

say "dependencies"
if [ "${MMQ_SKIP_DEPS:-0}" != 1 ]; then
    "$srcdir/scripts/deps.sh" || {
        echo "$me: scripts/deps.sh failed" >&2
        exit 1
    }
fi
echo "ok"

say "autogen"
if [ -f "$srcdir/config.status" ]; then
    echo "$me: $srcdir has been configured in the source tree; out-of-tree" \
        "builds refuse to run then. Run 'make distclean' there first." >&2
    exit 1
fi
if ! (cd "$srcdir" && ./autogen.sh) >"${TMPDIR:-/tmp}/mmq-autogen.$$.log" 2>&1; then
    cat "${TMPDIR:-/tmp}/mmq-autogen.$$.log" >&2
    rm -f "${TMPDIR:-/tmp}/mmq-autogen.$$.log"
    echo "$me: ./autogen.sh failed" >&2
    exit 1
fi
rm -f "${TMPDIR:-/tmp}/mmq-autogen.$$.log"
echo "ok"

# Can LeakSanitizer work here?  It stops the world with ptrace, which some
# containers (or a run under strace/gdb) forbid; it then dies with a fatal
# error instead of reporting leaks.  Probe with a program that leaks.
lsan_works() {
    local d out
    d=$(mktemp -d) || return 1
    printf '#include <stdlib.h>\nvoid *volatile keep;\nint main(void){keep=malloc(33);keep=0;return 0;}\n' >"$d/leak.c"
    if ! ${CC:-cc} -fsanitize=address -g -o "$d/leak" "$d/leak.c" 2>/dev/null; then
        rm -rf "$d"
        return 1
    fi
    out=$(ASAN_OPTIONS=detect_leaks=1 "$d/leak" 2>&1)
    rm -rf "$d"
    case $out in
    *"detected memory leaks"*) return 0 ;;
    *) return 1 ;;
    esac
}

failed=()

# run_build DIR CONFIGURE-ARGS...
run_build() {
    local name=$1 dir="$srcdir/$1" t0 rc
    shift
    t0=$(now)
    say "$name: configure $*"
    mkdir -p "$dir" || return 1
    # A stale log from an earlier run must not be mistaken for this run's.
    rm -f "$dir/test-suite.log"
    if ! (cd "$dir" && "$srcdir/configure" -q "$@") >"$dir/configure.out" 2>&1; then
        cat "$dir/configure.out"
        echo "--- last lines of $dir/config.log:"
        tail -n 40 "$dir/config.log" 2>/dev/null
        echo "$me: $name: configure failed" >&2
        return 1
    fi
    say "$name: make -j$JOBS"
    if ! make -C "$dir" -s -j"$JOBS" >"$dir/make.out" 2>&1; then
        cat "$dir/make.out"
        echo "$me: $name: build failed" >&2
        return 1
    fi
    say "$name: make check (limit ${CHECK_TIMEOUT}s)"
    # One line per passing TAP test point is thousands of lines: show the
    # rest (failures, skips, the summary) unless MMQ_VERBOSE=1.
    if [ "${MMQ_VERBOSE:-0}" = 1 ]; then
        timeout -k 10 "$CHECK_TIMEOUT" make -C "$dir" -j"$JOBS" check AM_COLOR_TESTS=no
        rc=$?
    else
        timeout -k 10 "$CHECK_TIMEOUT" make -C "$dir" -j"$JOBS" check AM_COLOR_TESTS=no 2>&1 |
            grep -v -e '^PASS: ' -e '^make\[[0-9]*\]: \(Entering\|Leaving\) directory'
        rc=${PIPESTATUS[0]}
    fi
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && echo "$me: $name: make check timed out after ${CHECK_TIMEOUT}s" >&2
        if [ -f "$dir/test-suite.log" ]; then
            echo "--- $dir/test-suite.log:"
            cat "$dir/test-suite.log"
            echo "--- end of $dir/test-suite.log"
        fi
        echo "$me: $name: make check failed ($(($(now) - t0))s)" >&2
        return 1
    fi
    echo "$me: $name: all tests passed ($(($(now) - t0))s)"
    return 0
}

for b in $BUILDS; do
    [ "${MMQ_CLEAN:-0}" = 1 ] && rm -rf "${srcdir:?}/$b"
    case $b in
    build)
        run_build build --sysconfdir=/etc || failed+=(build)
        ;;
    build-asan)
        if lsan_works; then
            leaks=1
        else
            leaks=0
            echo "$me: LeakSanitizer cannot run here (no ptrace?): leak checking off"
        fi
        (
            # no strict_string_checks: libESMTP (not instrumented, but its
            # strtol() calls are intercepted) parses replies in buffers
            # that are not NUL-terminated, and the worker would be killed
            # for a read that is in fact bounded
            export ASAN_OPTIONS="detect_leaks=$leaks:abort_on_error=0:detect_stack_use_after_return=1"
            export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
            export LSAN_OPTIONS="print_suppressions=0"
            # The sanitizer build checks memory safety along the same paths;
            # the long randomised kill rounds run in full in the plain build
            # only, to keep the whole run within CI's 15 minutes.
            export DL_KILL_ROUNDS=${DL_KILL_ROUNDS:-6}
            export CRASH_ROUNDS=${CRASH_ROUNDS:-6}
            echo "ASAN_OPTIONS=$ASAN_OPTIONS"
            echo "UBSAN_OPTIONS=$UBSAN_OPTIONS"
            run_build build-asan --sysconfdir=/etc --enable-sanitizers CFLAGS="-g -O1"
        ) || failed+=(build-asan)
        ;;
    *)
        echo "$me: unknown build \"$b\"" >&2
        failed+=("$b")
        ;;
    esac
done

say "summary ($(($(now) - t_start))s)"
if [ ${#failed[@]} -ne 0 ]; then
    echo "$me: FAILED: ${failed[*]}"
    exit 1
fi
echo "$me: all builds passed: $BUILDS"
exit 0
