#!/bin/bash
# t/gluster-lib.sh - a real GlusterFS volume for the cluster tests, started
# and stopped by the test itself: one glusterd on a loopback address, a
# one-brick volume, mounted twice through FUSE (two independent clients, as
# two nodes would have).  Source after t/lib.sh.
#
#   gl_up DIR    start under DIR (run state, brick, logs, mount points):
#                sets GL_MNT_A and GL_MNT_B; returns non-zero with the
#                reason in GL_WHY when this machine cannot do it (not
#                root, no FUSE, GlusterFS not installed); everything it
#                started is stopped at exit (at_exit), by pid
#   GL_PROFILE   "shipped" (default: GlusterFS's own caching, about a
#                second of staleness between clients, as deployments run
#                it) or "strict" (client caches off)
#
# Why it is written this way: glusterd has no option to stay in the
# foreground under a test harness, so every daemon is found by its pid
# file under DIR and checked by its command line before it is signalled.
# The management daemon listens on 127.x.y.1:24007 only.
set -u

GL_PROFILE=${GL_PROFILE:-shipped}
GL_WHY=

_gl_cli() {
    timeout 60 gluster --mode=script --glusterd-sock="$GL_RUN/gd.sock" \
        --log-file="$GL_RUN/log/cli.log" "$@"
}

_gl_wait() { # _gl_wait SECS CMD...
    local i n=$(($1 * 10))
    shift
    for ((i = 0; i < n; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

_gl_ours() { # is PID alive and one of ours (its command line names GL_RUN)?
    [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] &&
        tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$GL_RUN"
}

_gl_stop_pid() {
    local pid=$1 i
    _gl_ours "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        _gl_ours "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
}

gl_down() {
    local m pf
    for m in "$GL_MNT_A" "$GL_MNT_B"; do
        if grep -qF " $m fuse" /proc/mounts; then
            umount "$m" 2>/dev/null || umount -l "$m"
        fi
    done
    if _gl_ours "$(cat "$GL_RUN/glusterd.pid" 2>/dev/null)"; then
        _gl_cli volume stop mmqtest force >/dev/null 2>&1
    fi
    while IFS= read -r pf; do
        _gl_stop_pid "$(cat "$pf" 2>/dev/null)"
    done < <(find "$GL_RUN" -name '*.pid' ! -name glusterd.pid 2>/dev/null)
    _gl_stop_pid "$(cat "$GL_RUN/glusterd.pid" 2>/dev/null)"
}

_gl_free_addr() { # a 127.x.y.1 nobody listens on at 24007
    local x a
    for x in 77 78 79 80 81; do
        a=127.$x.$((RANDOM % 200 + 20)).1
        ss -Hltn 2>/dev/null | awk '{print $4}' |
            grep -qx -e "$a:24007" -e "0.0.0.0:24007" -e '\*:24007' ||
            {
                echo "$a"
                return 0
            }
    done
    return 1
}

gl_up() {
    local dir=$1 addr
    if ! is_root; then
        GL_WHY="not root (FUSE mounts and trusted.* xattrs on the brick)"
        return 1
    fi
    if ! command -v glusterd >/dev/null || ! command -v glusterfs >/dev/null; then
        GL_WHY="GlusterFS is not installed (packages glusterfs-server glusterfs-client; scripts/deps.sh)"
        return 1
    fi
    grep -qw fuse /proc/filesystems || modprobe fuse 2>/dev/null
    if ! grep -qw fuse /proc/filesystems || [ ! -c /dev/fuse ]; then
        GL_WHY="FUSE is unavailable here (no /dev/fuse or no fuse in /proc/filesystems)"
        return 1
    fi
    GL_RUN=$dir/run
    GL_MNT_A=$dir/mnt/a
    GL_MNT_B=$dir/mnt/b
    mkdir -p "$GL_RUN/wd" "$GL_RUN/log" "$GL_RUN/rundir" "$GL_RUN/brick" \
        "$GL_MNT_A" "$GL_MNT_B" || return 1
    at_exit gl_down
    addr=$(_gl_free_addr) || {
        GL_WHY="no free 127.x address for glusterd"
        return 1
    }
    glusterd \
        --xlator-option "management.working-directory=$GL_RUN/wd" \
        --xlator-option "management.transport.socket.bind-address=$addr" \
        --xlator-option "management.glusterd-sockfile=$GL_RUN/gd.sock" \
        --xlator-option "management.run-directory=$GL_RUN/rundir" \
        --log-file="$GL_RUN/log/glusterd.log" \
        --pid-file="$GL_RUN/glusterd.pid" || {
        GL_WHY="glusterd did not start"
        return 1
    }
    _gl_wait 20 _gl_cli volume list || {
        GL_WHY="glusterd is not answering (see $GL_RUN/log/glusterd.log)"
        return 1
    }
    _gl_cli volume create mmqtest "$addr:$GL_RUN/brick/b" force >/dev/null || {
        GL_WHY="volume create failed"
        return 1
    }
    if [ "$GL_PROFILE" = strict ]; then
        local o
        for o in performance.stat-prefetch performance.quick-read \
            performance.open-behind performance.flush-behind \
            performance.write-behind; do
            _gl_cli volume set mmqtest "$o" off >/dev/null
        done
    fi
    _gl_cli volume start mmqtest >/dev/null || {
        GL_WHY="volume start failed"
        return 1
    }
    local m
    for m in a b; do
        local -a opts=()
        [ "$GL_PROFILE" = strict ] && opts=(--attribute-timeout=0
            --entry-timeout=0 --negative-timeout=0 --auto-invalidation=yes)
        glusterfs --process-name fuse --volfile-server="$addr" \
            --volfile-id=/mmqtest "${opts[@]+"${opts[@]}"}" \
            --log-file="$GL_RUN/log/mnt-$m.log" \
            --pid-file="$GL_RUN/mnt-$m.pid" "$dir/mnt/$m" || {
            GL_WHY="glusterfs client $m failed (see $GL_RUN/log/mnt-$m.log)"
            return 1
        }
        _gl_wait 30 mountpoint -q "$dir/mnt/$m" || {
            GL_WHY="mount $dir/mnt/$m not ready"
            return 1
        }
    done
    echo probe >"$GL_MNT_A/.probe"
    _gl_wait 10 grep -qx probe "$GL_MNT_B/.probe" || {
        GL_WHY="a file written through mount a is not visible through b"
        return 1
    }
    rm -f "$GL_MNT_A/.probe"
    GL_ADDR=$addr
    return 0
}
