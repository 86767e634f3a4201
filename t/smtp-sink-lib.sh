# smtp-sink-lib.sh - run Postfix's smtp-sink as a capturing SMTP server in
# tests.  Source it from a bash test:   . "$top_srcdir/t/smtp-sink-lib.sh"
#
#   sink_start DIR [extra smtp-sink options]   start; sets SINK_PORT SINK_PID
#   sink_stop                                   stop it (SIGTERM, then KILL)
#   sink_dumps DIR          dump files, one per completed transaction, oldest
#                           first (see "Order" below)
#   sink_count_rcpts DIR    number of delivered recipients (all dumps)
#   sink_rcpts DIR          delivered recipient addresses, one per line, one
#                           line per delivery (duplicates show), oldest first
#   sink_senders DIR        envelope sender of each dump, one line per dump
#                           (an empty line for <>)
#   sink_message FILE       the message of one dump as received, but with LF
#                           line ends (smtp-sink turns CRLF into LF)
#   sink_counters DIR       last "sess=N quit=N mesg=N" line of the -c output
#
# Verified (smtp-sink of Debian 12's postfix 3.7): a dump is complete on disk
# before the client sees the 250 after ".", also for a 300 kB message, so a
# test may count right after the client is done; several transactions on one
# connection give one dump each; a transaction ended by RSET or by a dropped
# connection leaves none.
# Order: dumps are ordered by mtime, whose resolution is the kernel's coarse
# clock (a few ms); transactions finished within the same tick come out in
# file-name (random) order.  Sort the output of sink_rcpts before comparing
# it with an expected list unless the transactions were far apart in time.
#
# smtp-sink is in Debian's postfix package (/usr/sbin/smtp-sink); override
# with SMTP_SINK=/path.  Installing postfix without configuring it:
#   echo "postfix postfix/main_mailer_type select No configuration" |
#       debconf-set-selections
#   DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
# (no mail system is started or configured by that).
#
# The command line used is
#   smtp-sink [-u USER] -c -d DIR/dump. [extra options] 127.0.0.1:PORT 64
# and why:
#   -u USER   smtp-sink refuses to run as root without -u ("-u option required
#             when running as root").  We pass the owner of DIR, so the dumps
#             are always writable (a "nobody" could not even traverse a 0700
#             mktemp directory).  -u is given only when running as root.
#   -c        running counters "sess=N quit=N mesg=N", written to stdout
#             (captured in DIR/sink.stdout, CR-separated) when a session ends,
#             at QUIT and at each "."; see sink_counters.
#   -d TEMPL  one dump file per mail transaction, named TEMPL + 8 random hex
#             digits (TEMPL is strftime-expanded, so % in DIR is doubled).
#             A dump stays only for a transaction that completed with "."
#             (250): transactions ended by RSET, QUIT or a lost connection
#             leave no file.  -D (one multi-message file) is not used because
#             per-transaction files are easier to count and compare.
#   127.0.0.1:PORT  loopback only; a port found free by binding port 0 with
#             python3; if smtp-sink cannot bind it (someone took it in the
#             meantime) we retry with a new port.
#   64        the listen(2) backlog, a mandatory argument.
#
# Useful extra options (see man smtp-sink): -8 no 8BITMIME, -p no PIPELINING,
# -E no ENHANCEDSTATUSCODES, -a no AUTH, -N no DSN, -C no XCLIENT, -F no
# XFORWARD, -r/-f CMD,... 4xx/5xx for every such command (e.g. -r RCPT),
# -q CMD,... disconnect without reply, -Q CMD,... 421 and disconnect,
# -w SECS delay the DATA reply, -W CMD:SECS delay a reply, -A SECS abort the
# data phase with 550, -M N / -n N exit after N messages / sessions,
# -h NAME host name, -t SECS command timeout (default 100).
# By default smtp-sink advertises PIPELINING 8BITMIME AUTH XCLIENT XFORWARD
# ENHANCEDSTATUSCODES DSN, accepts every MAIL/RCPT/DATA with
# 250 2.1.0 / 250 2.1.5 / 354 / 250 2.0.0 Ok and does not offer STARTTLS.
#
# Dump format (verbatim, "$" = end of line; CRLF of the message became LF,
# dot-stuffing is removed, an empty line is appended):
#   X-Client-Addr: 127.0.0.1$
#   X-Client-Proto: ESMTP$
#   X-Helo-Args: t$
#   X-Mail-Args: <p@x> BODY=8BITMIME$
#   X-Rcpt-Args: <r1@x>$
#   X-Rcpt-Args: <r1@x> NOTIFY=NEVER$
#   Received: from t ([127.0.0.1])$
#   ^Iby smtp-sink (smtp-sink) with ESMTP id 55c35df5;$
#   ^ISun, 22 Nov 2026 22:01:27 +0000 (UTC)$
#   Subject: one$
#   $
#   body1$
#   .x$
#   $
# X-Mail-Args / X-Rcpt-Args hold the command arguments after "FROM:"/"TO:"
# verbatim (ESMTP parameters included), one X-Rcpt-Args per RCPT command in
# the order sent; smtp-sink accepts every RCPT, so each one is a delivery.
# The smtp-sink header block ends with the three-line Received: header.

# SINK_* are set here for the caller
# shellcheck disable=SC2034
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
SINK_PORT=
SINK_PID=
SINK_DIR=

_sink_free_port() {
	${PYTHON:-python3} -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# _sink_listening PID PORT: is PID listening on 127.0.0.1:PORT?
# Looks in /proc (no probe connection, so the -c counters stay exact).
_sink_listening() {
	local pid=$1 port=$2 hex inode f
	hex=$(printf '0100007F:%04X' "$port")
	inode=$(awk -v a="$hex" '$2 == a && $4 == "0A" { print $10; exit }' \
		/proc/net/tcp 2>/dev/null)
	[ -n "$inode" ] || return 1
	for f in /proc/"$pid"/fd/*; do
		[ "$(readlink "$f" 2>/dev/null)" = "socket:[$inode]" ] && return 0
	done
	return 1
}

# sink_start DIR [extra smtp-sink options]
sink_start() {
	local dir=$1 try i port tmpl
	shift
	if [ ! -x "$SMTP_SINK" ]; then
		echo "sink_start: $SMTP_SINK not found (Debian package postfix)" >&2
		return 1
	fi
	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd)
	local -a uopt=()
	if [ "$(id -u)" -eq 0 ]; then
		uopt=(-u "$(stat -c %U "$dir")")
	fi
	tmpl="${dir//%/%%}/dump."
	for try in 1 2 3 4 5; do
		port=$(_sink_free_port) || return 1
		"$SMTP_SINK" "${uopt[@]}" -c -d "$tmpl" "$@" "127.0.0.1:$port" 64 \
			>"$dir/sink.stdout" 2>"$dir/sink.stderr" &
		SINK_PID=$!
		for i in $(seq 100); do
			if _sink_listening "$SINK_PID" "$port"; then
				SINK_PORT=$port
				SINK_DIR=$dir
				return 0
			fi
			kill -0 "$SINK_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$SINK_PID" 2>/dev/null
		wait "$SINK_PID" 2>/dev/null
		SINK_PID=
		# a bind failure says so on stderr: retry; anything else: give up
		if ! grep -qi 'address already in use\|bind' "$dir/sink.stderr"; then
			cat "$dir/sink.stderr" >&2
			return 1
		fi
	done
	echo "sink_start: no free port after $try tries" >&2
	return 1
}

sink_stop() {
	[ -n "$SINK_PID" ] || return 0
	kill -TERM "$SINK_PID" 2>/dev/null
	for _ in $(seq 40); do
		kill -0 "$SINK_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=
	SINK_PORT=
	return 0
}

# sink_dumps DIR: dump files, oldest first (mtime with nanoseconds)
sink_dumps() {
	find "$1" -maxdepth 1 -type f -name 'dump.*' -printf '%T@ %p\n' 2>/dev/null |
		sort -n | cut -d' ' -f2-
}

# the smtp-sink header block of each dump (up to its Received: header), so
# that "X-Rcpt-Args:" inside a message body is never counted
_sink_headers() {
	local f
	sink_dumps "$1" | while IFS= read -r f; do
		awk '/^Received: / { exit } { print }' "$f"
	done
}

sink_rcpts() {
	_sink_headers "$1" | sed -n 's/^X-Rcpt-Args: *//p' |
		sed 's/^<\([^>]*\)>.*/\1/; t; s/[[:space:]].*//'
}

sink_senders() {
	_sink_headers "$1" | sed -n 's/^X-Mail-Args: *//p' |
		sed 's/^<\([^>]*\)>.*/\1/; t; s/[[:space:]].*//'
}

sink_count_rcpts() {
	_sink_headers "$1" | awk '/^X-Rcpt-Args:/ { n++ } END { print n + 0 }'
}

# sink_message FILE: the message as received: after the 3-line Received:
# header that ends smtp-sink's block, without the empty line it appends
sink_message() {
	awk '
		!body && skip == 0 && /^Received: / { skip = 3 }
		skip > 0 { skip--; if (skip == 0) body = 1; next }
		body { if (have) print prev; prev = $0; have = 1 }
		END { if (have && prev != "") print prev }
	' "$1"
}

sink_counters() {
	tr '\r' '\n' <"$1/sink.stdout" 2>/dev/null | grep 'sess=' | tail -n 1
}
