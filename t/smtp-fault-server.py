#!/usr/bin/env python3
# smtp-fault-server.py - a fault-injecting SMTP server for mmq's test suite.
#
# Stdlib only (threads + blocking sockets + ssl); runs under any python3 >= 3.7,
# so it does not matter whether "python3" is Debian's or a pyenv one.
# aiosmtpd was not used: most faults (drop in the middle of DATA, stall before
# the greeting, coalescing pipelined replies, logging every line, BDAT) need
# control below the level that aiosmtpd exposes.
#
# Usage:
#   smtp-fault-server.py --port 0 --portfile F --out DIR [options]
#
# Listens on 127.0.0.1 (--host; loopback only), writes the bound port to
# --portfile (atomically, after listen()), its pid to --pidfile, and runs until
# SIGTERM/SIGINT, then exits 0.  See --help for the fault options.
#
# Output in DIR:
#   transactions.jsonl  one JSON object per completed transaction (250 sent
#                       after end of data), written *before* the 250 reply:
#                       {"mail_from", "rcpts", "size", "sha1", "file",
#                        "session", "seq", "mail_params",
#                        "data_seq", "tls", "auth", "bare_lf_lines"}
#   msg-N.eml           the message bytes exactly as received (CRLF kept),
#                       dot-stuffing removed; N = 1, 2, ... per completed txn
#                       (= "seq"; a restart on the same DIR appends: N goes on
#                       from the lines already in transactions.jsonl)
#   session.log         every command line received ("C:"), every reply line
#                       sent ("S:") and events ("*"), prefixed by a timestamp
#                       and "S<session-number>"
#   stats.json          counters; rewritten after every session and every
#                       completed transaction
#
# Numbering (over the whole server lifetime, all connections):
#   session  = connection number, 1, 2, ...
#   mail seq = number of accepted-for-processing MAIL commands (syntactically
#              valid, HELO/AUTH satisfied, not nested): --drop-after-mail K
#   data seq = number of data phases started (DATA answered 354, or the first
#              BDAT chunk of a transaction): --drop-in-data K,
#              --tempfail-data K, --permfail-data K, --stall-in-data-only K
#   K may be a comma-separated list; 0 means "every one".
#
# Faults on the wire (all combinable):
#   --greeting-421 / --fail-first N   "421 4.3.2 <host> Service not available,
#       closing transmission channel", then close (after --stall-greeting).
#   --stall-greeting S   accept, say nothing for S seconds, then greet.
#   --reject5 RE / --reject4 RE / --max-rcpts N   per RCPT, in this order:
#       "550 5.1.1 <a>: Recipient address rejected: User unknown",
#       "450 4.2.1 <a>: Recipient address rejected: Mailbox temporarily
#       unavailable", "452 4.5.3 Error: too many recipients" (rejected
#       recipients do not count towards N).  DATA with no accepted recipient:
#       "554 5.5.1 Error: no valid recipients".
#   --reject57 RE   per RCPT, before the others: "554 5.7.1 <a>: Relay
#       access denied" (a policy refusal, not a bad mailbox).
#   --drop-after-mail K  replies queued before MAIL are sent, then the socket is
#       closed without a reply to MAIL (pipelined RCPT/DATA that were unread
#       make the kernel send RST instead of FIN: the client sees EOF or
#       ECONNRESET).
#   --drop-in-data K     354 is sent (BDAT: replies to the commands before it);
#       once B (--drop-after-bytes, default 1) bytes of message data have come
#       in (BDAT: of the first chunk), the socket is closed, no reply
#       (EOF or ECONNRESET/EPIPE on the client side).  If the whole message
#       with its final "." is shorter than B, the close comes after the ".":
#       a complete message left unanswered.  Nothing is recorded.
#   --stall-in-data S    after the final "." (or BDAT LAST): S seconds of
#       silence, then the normal reply.  If the client closes the connection
#       during the stall, the transaction is NOT recorded (no 250 was sent).
#   --tempfail-data / --permfail-data   after the final ".": "451 4.3.0 Error:
#       temporary failure (injected)" / "554 5.6.0 Error: message content
#       rejected (injected)"; nothing recorded; the session goes on.
#   --require-auth U:P   "530 5.7.0 Authentication required" to MAIL before a
#       successful AUTH; "535 5.7.8 Error: authentication failed" for other
#       credentials; "235 2.7.0 Authentication successful".
#   --tls-cert/--tls-key "220 2.0.0 Ready to start TLS", handshake, then the
#       session state is reset (EHLO again); plaintext pipelined after
#       STARTTLS is discarded (RFC 3207).  --refuse-starttls: "454 4.7.0 TLS
#       not available due to temporary reason", session continues in clear.
#   Idle client (--timeout, default 300 s): "421 4.4.2 ... timeout exceeded".
#
# Pipelining: input is split into lines by the server itself; replies are
# queued and written only when no complete command is left in the input
# buffer, so the replies to a pipelined group leave in one write (logged as
# "sent N reply lines in one write"; received groups as "read N bytes (K
# complete lines buffered)").

import argparse
import base64
import binascii
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time

MAX_CMD_LINE = 4096


class Stop(Exception):
    """Raised in the main thread by the SIGTERM/SIGINT handler."""


class Drop(Exception):
    """End the session by closing the socket, without a reply."""


class ClientGone(Exception):
    """The client closed the connection (EOF) or it broke."""


def seq_list(text):
    try:
        vals = [int(v) for v in str(text).split(",") if v.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError("expected N or N,M,... : %r" % text)
    if not vals or any(v < 0 for v in vals):
        raise argparse.ArgumentTypeError("expected non-negative numbers: %r" % text)
    return vals


def seq_match(spec, n):
    """spec: None (option not given) or list of ints; 0 means every."""
    if spec is None:
        return False
    return 0 in spec or n in spec


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Fault-injecting SMTP server for tests (loopback only).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (must be loopback; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port, 0 = any free one")
    p.add_argument("--portfile", help="write the bound port here once listening")
    p.add_argument("--pidfile", help="write our pid here")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--hostname", default="fault.test",
                   help="name used in the greeting and EHLO reply")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="idle timeout for reading from the client (s)")
    p.add_argument("--chunking", action="store_true",
                   help="advertise CHUNKING and accept BDAT")
    p.add_argument("--reject5", action="append", default=[], metavar="REGEX",
                   help="550 5.1.1 for RCPT addresses matching (re.search)")
    p.add_argument("--reject57", action="append", default=[], metavar="REGEX",
                   help="554 5.7.1 for RCPT addresses matching (re.search)")
    p.add_argument("--reject4", action="append", default=[], metavar="REGEX",
                   help="450 4.2.1 for RCPT addresses matching (re.search)")
    p.add_argument("--max-rcpts", type=int, metavar="N",
                   help="452 4.5.3 for every RCPT after N accepted ones")
    p.add_argument("--drop-in-data", type=seq_list, metavar="K",
                   help="close the socket, no reply, during data phase K "
                        "(0 = every) once --drop-after-bytes bytes arrived")
    p.add_argument("--drop-after-bytes", type=int, default=1, metavar="B",
                   help="for --drop-in-data: drop once at least B bytes of "
                        "message data were received (default 1); if the "
                        "message is shorter, drop after its end, unanswered")
    p.add_argument("--drop-after-mail", type=seq_list, metavar="K",
                   help="close the socket, no reply, right after MAIL number K "
                        "(0 = every)")
    p.add_argument("--stall-greeting", type=float, metavar="SECS",
                   help="wait SECS before the 220 (or 421) greeting")
    p.add_argument("--stall-in-data", type=float, metavar="SECS",
                   help="after the end of data, wait SECS before replying")
    p.add_argument("--stall-in-data-only", type=seq_list, metavar="K",
                   help="restrict --stall-in-data to data phases K (default "
                        "every)")
    p.add_argument("--greeting-421", action="store_true",
                   help="answer every connection with 421 and close")
    p.add_argument("--fail-first", type=int, default=0, metavar="N",
                   help="answer the first N connections with 421 4.3.2, close")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--tempfail-data", type=seq_list, nargs="?", const=[0],
                   metavar="K", help="451 4.3.0 after end of data "
                   "(optionally only data phases K)")
    g.add_argument("--permfail-data", type=seq_list, nargs="?", const=[0],
                   metavar="K", help="554 5.6.0 after end of data "
                   "(optionally only data phases K)")
    p.add_argument("--tls-cert", help="certificate (PEM) for STARTTLS")
    p.add_argument("--tls-key", help="private key (PEM) for STARTTLS")
    p.add_argument("--refuse-starttls", action="store_true",
                   help="advertise STARTTLS but answer it 454 4.7.0")
    p.add_argument("--require-auth", metavar="USER:PASS",
                   help="advertise AUTH PLAIN LOGIN (also without TLS), "
                        "530 5.7.0 for MAIL before AUTH, 535 5.7.8 for other "
                        "credentials")
    a = p.parse_args(argv)
    try:
        ip = ipaddress.ip_address(a.host)
    except ValueError:
        p.error("--host must be a numeric loopback address")
    if not ip.is_loopback:
        p.error("--host must be a loopback address (127.0.0.0/8 or ::1)")
    if bool(a.tls_cert) != bool(a.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if a.require_auth is not None and ":" not in a.require_auth:
        p.error("--require-auth wants USER:PASS")
    if a.max_rcpts is not None and a.max_rcpts < 0:
        p.error("--max-rcpts must be >= 0")
    return a


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class Server:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.lock = threading.Lock()
        self.log_f = open(os.path.join(self.out, "session.log"), "a",
                          encoding="utf-8", errors="backslashreplace")
        self.reject5 = [re.compile(r) for r in args.reject5]
        self.reject4 = [re.compile(r) for r in args.reject4]
        self.reject57 = [re.compile(r) for r in args.reject57]
        self.user = self.password = None
        if args.require_auth is not None:
            self.user, self.password = args.require_auth.split(":", 1)
        self.tls_ctx = None
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            self.tls_ctx = ctx
        # a restart on the same DIR goes on numbering msg-N.eml where the
        # previous run stopped (stats.json counts this run only)
        self.msg_base = 0
        try:
            with open(os.path.join(self.out, "transactions.jsonl")) as f:
                self.msg_base = sum(1 for _ in f)
        except FileNotFoundError:
            pass
        self.stats = {
            "connections": 0,        # accepted connections (= sessions)
            "sessions_ended": 0,
            "greeting_421": 0,       # --greeting-421 and --fail-first
            "mail": 0,               # MAIL commands counted (mail seq)
            "rcpt_accepted": 0,
            "rcpt_rejected": 0,      # 4xx/5xx to syntactically valid RCPT
            "data_phases": 0,        # data seq
            "transactions": 0,       # completed = recorded (250 after data)
            "data_tempfail": 0,
            "data_permfail": 0,
            "drops": 0,              # --drop-in-data + --drop-after-mail
            "stalled_client_gone": 0,
            "starttls": 0,
            "auth_ok": 0,
            "auth_failed": 0,
            "quit": 0,
        }
        self.write_stats()

    # -- shared state, all under self.lock ---------------------------------
    def bump(self, key, n=1):
        with self.lock:
            self.stats[key] += n
            return self.stats[key]

    def write_stats(self):
        with self.lock:
            write_atomic(os.path.join(self.out, "stats.json"),
                         json.dumps(self.stats, indent=1, sort_keys=True) + "\n")

    def log(self, sess, kind, text):
        t = time.time()
        ts = time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % (
            int(t * 1000) % 1000)
        with self.lock:
            self.log_f.write("%s S%d %s %s\n" % (ts, sess, kind, text))
            self.log_f.flush()

    def record(self, rec, data):
        """Save a completed transaction; returns its number."""
        with self.lock:
            self.stats["transactions"] += 1
            n = self.msg_base + self.stats["transactions"]
            name = "msg-%d.eml" % n
            path = os.path.join(self.out, name)
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.rename(path + ".tmp", path)
            rec = dict(rec)
            rec["file"] = name
            rec["seq"] = n
            rec["size"] = len(data)
            rec["sha1"] = hashlib.sha1(data).hexdigest()
            with open(os.path.join(self.out, "transactions.jsonl"), "a") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.write_stats()
        return n

    # -- main loop ---------------------------------------------------------
    def serve(self):
        a = self.args
        fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((a.host, a.port))
        ls.listen(128)
        port = ls.getsockname()[1]
        if a.pidfile:
            write_atomic(a.pidfile, "%d\n" % os.getpid())
        if a.portfile:
            write_atomic(a.portfile, "%d\n" % port)
        self.log(0, "*", "listening on %s port %d pid %d argv %s"
                 % (a.host, port, os.getpid(), " ".join(sys.argv[1:])))
        try:
            while True:
                conn, peer = ls.accept()
                with self.lock:
                    self.stats["connections"] += 1
                    num = self.stats["connections"]
                t = threading.Thread(target=self.run_session,
                                     args=(conn, peer, num), daemon=True)
                t.start()
        except Stop:
            pass
        finally:
            ls.close()
            self.log(0, "*", "stopping")
            self.write_stats()

    def run_session(self, conn, peer, num):
        s = Session(self, conn, peer, num)
        try:
            s.run()
        except Drop as e:
            # replies to earlier (pipelined) commands still go out: only the
            # faulted command stays unanswered
            try:
                s.flush()
            except ClientGone:
                pass
            self.log(num, "*", "DROP connection without reply: %s" % e)
            self.bump("drops")
        except ClientGone as e:
            self.log(num, "*", "client gone: %s" % e)
        except socket.timeout:
            self.log(num, "*", "idle timeout, closing")
            try:
                s.outq = []
                s.reply("421 4.4.2 %s Error: timeout exceeded"
                        % self.args.hostname)
                s.sock.sendall(b"".join(s.outq))
            except OSError:
                pass
        except Exception as e:  # noqa: keep the server alive
            self.log(num, "*", "internal error: %r" % (e,))
        finally:
            try:
                s.sock.close()
            except OSError:
                pass
            self.log(num, "*", "session end")
            self.bump("sessions_ended")
            self.write_stats()


class Session:
    def __init__(self, srv, sock, peer, num):
        self.srv = srv
        self.a = srv.args
        self.sock = sock
        self.peer = peer
        self.num = num
        self.inbuf = bytearray()
        self.outq = []
        self.tls = False
        self.helo = None
        self.authed = None
        self.reset()

    # -- I/O -----------------------------------------------------------------
    def log(self, kind, text):
        self.srv.log(self.num, kind, text)

    def reply(self, line):
        """Queue a reply (one or more lines separated by \\n)."""
        for l in line.split("\n"):
            self.log("S:", l)
            self.outq.append(l.encode("utf-8") + b"\r\n")

    def flush(self):
        if not self.outq:
            return
        n = len(self.outq)
        data = b"".join(self.outq)
        self.outq = []
        if n > 1:
            self.log("*", "sent %d reply lines in one write" % n)
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ClientGone("send failed: %s" % e)

    def fill(self, timeout=None):
        """Read more bytes into inbuf; raise ClientGone on EOF."""
        self.sock.settimeout(self.a.timeout if timeout is None else timeout)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            raise
        except (OSError, ssl.SSLError) as e:
            raise ClientGone("recv failed: %s" % e)
        if not d:
            raise ClientGone("EOF from client")
        self.inbuf += d
        return len(d)

    def readline(self, cmd=True):
        """Next line including its line end.  Replies queued so far are
        flushed only when we have to wait for the client, so replies to a
        pipelined group go out together, as in a real server."""
        while True:
            i = self.inbuf.find(b"\n")
            if i >= 0:
                line = bytes(self.inbuf[:i + 1])
                del self.inbuf[:i + 1]
                return line
            if cmd and len(self.inbuf) > MAX_CMD_LINE:
                line = bytes(self.inbuf)
                self.inbuf.clear()
                return line  # caller sees no line end -> too long
            self.flush()
            n = self.fill()
            if cmd:
                lines = self.inbuf.count(b"\n")
                self.log("*", "read %d bytes (%d complete line%s buffered)"
                         % (n, lines, "" if lines == 1 else "s"))

    def readexact(self, n):
        while len(self.inbuf) < n:
            self.flush()
            self.fill()
        d = bytes(self.inbuf[:n])
        del self.inbuf[:n]
        return d

    def stall(self, secs, what):
        """Say nothing for secs seconds; keep reading so that we notice a
        client that gives up.  Returns False if the client went away."""
        self.flush()
        self.log("*", "stalling %.3gs (%s)" % (secs, what))
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            try:
                self.fill(timeout=left)
            except socket.timeout:
                return True
            except ClientGone as e:
                self.log("*", "client gone during stall: %s" % e)
                return False

    # -- state ---------------------------------------------------------------
    def reset(self):
        self.mail_from = None
        self.mail_params = []
        self.rcpts = []
        self.bdat = None        # bytearray while a BDAT transfer is running
        self.bdat_seq = None

    # -- session -------------------------------------------------------------
    def run(self):
        a = self.a
        self.log("*", "connect from %s port %d" % (self.peer[0], self.peer[1]))
        fail_first = False
        if a.fail_first:
            fail_first = self.num <= a.fail_first
        if a.stall_greeting:
            if not self.stall(a.stall_greeting, "before greeting"):
                return
        if a.greeting_421 or fail_first:
            self.srv.bump("greeting_421")
            self.reply("421 4.3.2 %s Service not available, closing "
                       "transmission channel" % a.hostname)
            self.flush()
            return
        self.reply("220 %s ESMTP mmq fault server" % a.hostname)
        while True:
            raw = self.readline()
            if not raw.endswith(b"\n"):
                self.log("C:", raw[:200].decode("latin-1") + "...[too long]")
                self.reply("500 5.5.2 Error: line too long")
                # discard the rest of the line
                while True:
                    rest = self.readline(cmd=False)
                    if rest.endswith(b"\n"):
                        break
                continue
            line = raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            self.log("C:", line.encode("utf-8", "surrogateescape")
                     .decode("utf-8", "backslashreplace")
                     + ("" if raw.endswith(b"\r\n") else "   [bare LF]"))
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            h = getattr(self, "cmd_" + verb, None)
            if h is None or (verb == "BDAT" and not a.chunking):
                self.reply("500 5.5.2 Error: command not recognized")
                continue
            if h(arg.strip()) == "quit":
                self.flush()
                return

    # -- commands ------------------------------------------------------------
    def ehlo_lines(self):
        a = self.a
        ext = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
        if not self.tls and (self.srv.tls_ctx or a.refuse_starttls):
            ext.append("STARTTLS")
        if self.srv.user is not None:
            ext.append("AUTH PLAIN LOGIN")
        if a.chunking:
            ext.append("CHUNKING")
        return ext

    def cmd_EHLO(self, arg, verb="EHLO"):
        if not arg:
            self.reply("501 5.5.4 Syntax: %s hostname" % verb)
            return
        self.helo = arg
        self.reset()
        if verb == "HELO":
            self.reply("250 %s" % self.a.hostname)
            return
        lines = ["%s Hello %s" % (self.a.hostname, arg)] + self.ehlo_lines()
        self.reply("\n".join(
            "250%s%s" % ("-" if i < len(lines) - 1 else " ", l)
            for i, l in enumerate(lines)))

    def cmd_HELO(self, arg):
        self.cmd_EHLO(arg, "HELO")

    def cmd_NOOP(self, arg):
        self.reply("250 2.0.0 Ok")

    def cmd_RSET(self, arg):
        self.reset()
        self.reply("250 2.0.0 Ok")

    def cmd_VRFY(self, arg):
        self.reply("252 2.0.0 Cannot VRFY user")

    def cmd_HELP(self, arg):
        self.reply("214 2.0.0 Ask someone else")

    def cmd_QUIT(self, arg):
        self.srv.bump("quit")
        self.reply("221 2.0.0 Bye")
        return "quit"

    def cmd_STARTTLS(self, arg):
        if arg:
            self.reply("501 5.5.4 Syntax: STARTTLS")
            return
        if self.tls:
            self.reply("503 5.5.1 Error: TLS already active")
            return
        if self.a.refuse_starttls:
            self.reply("454 4.7.0 TLS not available due to temporary reason")
            return
        if self.srv.tls_ctx is None:
            self.reply("502 5.5.1 Error: command not implemented")
            return
        self.reply("220 2.0.0 Ready to start TLS")
        self.flush()
        if self.inbuf:
            # RFC 3207: plaintext pipelined after STARTTLS must be discarded
            self.log("*", "discarding %d plaintext bytes sent after STARTTLS"
                     % len(self.inbuf))
            self.inbuf.clear()
        self.sock.settimeout(self.a.timeout)
        try:
            self.sock = self.srv.tls_ctx.wrap_socket(self.sock,
                                                     server_side=True)
        except (OSError, ssl.SSLError) as e:
            raise ClientGone("TLS handshake failed: %s" % e)
        self.tls = True
        self.srv.bump("starttls")
        self.log("*", "TLS established: %s %s" % (self.sock.version(),
                                                   self.sock.cipher()[0]))
        # RFC 3207: forget everything learned before TLS
        self.helo = None
        self.authed = None
        self.reset()

    def b64line(self, prompt):
        self.reply("334 " + prompt)
        raw = self.readline()
        line = raw.rstrip(b"\r\n").decode("latin-1")
        self.log("C:", line)
        return line

    def cmd_AUTH(self, arg):
        if self.srv.user is None:
            self.reply("502 5.5.1 Error: authentication not enabled")
            return
        if not self.helo:
            self.reply("503 5.5.1 Error: send HELO/EHLO first")
            return
        if self.authed:
            self.reply("503 5.5.1 Error: already authenticated")
            return
        if self.mail_from is not None:
            self.reply("503 5.5.1 Error: MAIL transaction in progress")
            return
        parts = arg.split()
        if not parts:
            self.reply("501 5.5.4 Syntax: AUTH mechanism")
            return
        mech = parts[0].upper()
        init = parts[1] if len(parts) > 1 else None

        def dec(s):
            if s == "*":
                return None
            if s == "=":
                return b""
            return base64.b64decode(s, validate=True)
        try:
            if mech == "PLAIN":
                resp = dec(init if init is not None else self.b64line(""))
                if resp is None:
                    self.reply("501 5.7.0 Authentication cancelled")
                    return
                f = resp.split(b"\0")
                if len(f) != 3:
                    self.reply("501 5.5.2 Error: malformed PLAIN response")
                    return
                user, pw = f[1], f[2]
            elif mech == "LOGIN":
                user = dec(init if init is not None
                           else self.b64line("VXNlcm5hbWU6"))
                if user is None:
                    self.reply("501 5.7.0 Authentication cancelled")
                    return
                pw = dec(self.b64line("UGFzc3dvcmQ6"))
                if pw is None:
                    self.reply("501 5.7.0 Authentication cancelled")
                    return
            else:
                self.reply("504 5.5.4 Unrecognized authentication type")
                return
        except (binascii.Error, ValueError):
            self.reply("501 5.5.2 Error: invalid base64 data")
            return
        u = user.decode("utf-8", "replace")
        if (u == self.srv.user
                and pw.decode("utf-8", "replace") == self.srv.password):
            self.authed = u
            self.srv.bump("auth_ok")
            self.log("*", "authenticated as %s via %s" % (u, mech))
            self.reply("235 2.7.0 Authentication successful")
        else:
            self.srv.bump("auth_failed")
            self.log("*", "authentication failed for %r via %s" % (u, mech))
            self.reply("535 5.7.8 Error: authentication failed")

    PATH_RE = re.compile(r"^(FROM|TO):\s*(<[^>]*>|[^\s<>]+)(.*)$", re.I)

    def parse_path(self, kind, arg):
        m = self.PATH_RE.match(arg)
        if not m or m.group(1).upper() != kind:
            return None
        addr = m.group(2)
        if addr.startswith("<"):
            addr = addr[1:-1]
        # strip an RFC 5321 source route  @a,@b:user@dom
        if addr.startswith("@") and ":" in addr:
            addr = addr.split(":", 1)[1]
        return addr, m.group(3).split()

    def cmd_MAIL(self, arg):
        a = self.a
        if not self.helo:
            self.reply("503 5.5.1 Error: send HELO/EHLO first")
            return
        if self.srv.user is not None and not self.authed:
            self.reply("530 5.7.0 Authentication required")
            return
        if self.mail_from is not None:
            self.reply("503 5.5.1 Error: nested MAIL command")
            return
        p = self.parse_path("FROM", arg)
        if p is None:
            self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        addr, params = p
        for prm in params:
            k, _, v = prm.partition("=")
            k = k.upper()
            if k == "BODY" and v.upper() in ("7BIT", "8BITMIME"):
                continue
            if k in ("SIZE", "AUTH") and v:
                continue
            self.reply("555 5.5.4 Unsupported option: %s" % prm)
            return
        seq = self.srv.bump("mail")
        self.log("*", "MAIL #%d" % seq)
        if seq_match(a.drop_after_mail, seq):
            raise Drop("--drop-after-mail, MAIL #%d" % seq)
        self.mail_from = addr
        self.mail_params = params
        self.reply("250 2.1.0 Ok")

    def cmd_RCPT(self, arg):
        a = self.a
        if self.mail_from is None:
            self.reply("503 5.5.1 Error: need MAIL command")
            return
        p = self.parse_path("TO", arg)
        if p is None or p[0] == "":
            self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
            return
        addr, params = p
        if params:
            self.reply("555 5.5.4 Unsupported option: %s" % params[0])
            return
        if any(r.search(addr) for r in self.srv.reject57):
            self.srv.bump("rcpt_rejected")
            self.reply("554 5.7.1 <%s>: Relay access denied" % addr)
            return
        if any(r.search(addr) for r in self.srv.reject5):
            self.srv.bump("rcpt_rejected")
            self.reply("550 5.1.1 <%s>: Recipient address rejected: "
                       "User unknown" % addr)
            return
        if any(r.search(addr) for r in self.srv.reject4):
            self.srv.bump("rcpt_rejected")
            self.reply("450 4.2.1 <%s>: Recipient address rejected: "
                       "Mailbox temporarily unavailable" % addr)
            return
        if a.max_rcpts is not None and len(self.rcpts) >= a.max_rcpts:
            self.srv.bump("rcpt_rejected")
            self.reply("452 4.5.3 Error: too many recipients")
            return
        self.srv.bump("rcpt_accepted")
        self.rcpts.append(addr)
        self.reply("250 2.1.5 Ok")

    def start_data(self):
        """Common checks for DATA and the first BDAT; returns data seq or
        None after having replied with an error."""
        if self.mail_from is None:
            self.reply("503 5.5.1 Error: need MAIL command")
            return None
        if not self.rcpts:
            self.reply("554 5.5.1 Error: no valid recipients")
            return None
        seq = self.srv.bump("data_phases")
        self.log("*", "data phase #%d (%d rcpts)" % (seq, len(self.rcpts)))
        return seq

    def cmd_DATA(self, arg):
        a = self.a
        if arg:
            self.reply("501 5.5.4 Syntax: DATA")
            return
        if self.bdat is not None:
            self.reply("503 5.5.1 Error: DATA after BDAT")
            return
        seq = self.start_data()
        if seq is None:
            return
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        drop = seq_match(a.drop_in_data, seq)
        msg = bytearray()
        got = 0
        nlines = bare_lf = 0
        while True:
            line = self.readline(cmd=False)
            got += len(line)
            if drop and got >= a.drop_after_bytes:
                raise Drop("--drop-in-data, data phase #%d, after %d bytes "
                           "of data (%d lines)" % (seq, got, nlines))
            if line == b".\r\n":
                break
            nlines += 1
            if not line.endswith(b"\r\n"):
                bare_lf += 1
            if line.startswith(b"."):
                line = line[1:]
            msg += line
        if drop:
            raise Drop("--drop-in-data, data phase #%d, message complete "
                       "(%d bytes) but unanswered" % (seq, got))
        self.log("*", "end of data: %d bytes (%d lines, %d with bare LF) "
                 "after un-dot-stuffing" % (len(msg), nlines, bare_lf))
        self.finish(seq, bytes(msg), bare_lf)

    def cmd_BDAT(self, arg):
        a = self.a
        m = re.match(r"^(\d+)(?:\s+(LAST))?\s*$", arg, re.I)
        if not m:
            self.reply("501 5.5.4 Syntax: BDAT size [LAST]")
            return
        size, last = int(m.group(1)), bool(m.group(2))
        if self.bdat is None:
            seq = self.start_data()
            if seq is None:
                # consume the chunk so that it is not read as commands
                self.readexact(size)
                self.log("*", "discarded BDAT chunk of %d bytes" % size)
                return
            self.bdat = bytearray()
            self.bdat_seq = seq
        seq = self.bdat_seq
        if seq_match(a.drop_in_data, seq):
            # drop inside the first chunk of the transfer; if the chunk is
            # shorter than --drop-after-bytes, after all of it, unanswered
            want = min(size, max(1, a.drop_after_bytes))
            self.readexact(want)
            raise Drop("--drop-in-data, data phase #%d, in BDAT chunk "
                       "after %d bytes" % (seq, want))
        chunk = self.readexact(size)
        self.bdat += chunk
        self.log("*", "BDAT chunk %d bytes%s, %d total"
                 % (size, " LAST" if last else "", len(self.bdat)))
        if not last:
            self.reply("250 2.0.0 %d bytes received" % size)
            return
        self.finish(seq, bytes(self.bdat), 0)

    def finish(self, seq, data, bare_lf):
        """End of data: stall, fault or record; then reply."""
        a = self.a
        if a.stall_in_data and (a.stall_in_data_only is None
                                or seq_match(a.stall_in_data_only, seq)):
            if not self.stall(a.stall_in_data, "after end of data #%d" % seq):
                self.srv.bump("stalled_client_gone")
                self.log("*", "transaction NOT recorded (client left during "
                         "stall)")
                raise ClientGone("left during stall")
        if seq_match(a.tempfail_data, seq):
            self.srv.bump("data_tempfail")
            self.reply("451 4.3.0 Error: temporary failure (injected)")
        elif seq_match(a.permfail_data, seq):
            self.srv.bump("data_permfail")
            self.reply("554 5.6.0 Error: message content rejected (injected)")
        else:
            n = self.srv.record({
                "mail_from": self.mail_from,
                "rcpts": list(self.rcpts),
                "mail_params": self.mail_params,
                "session": self.num,
                "data_seq": seq,
                "tls": self.tls,
                "auth": self.authed,
                "bare_lf_lines": bare_lf,
                "time": round(time.time(), 3),
            }, data)
            self.log("*", "recorded transaction %d as msg-%d.eml" % (n, n))
            self.reply("250 2.0.0 Ok: queued as %d" % n)
        self.reset()


def main():
    args = parse_args(sys.argv[1:])
    srv = Server(args)

    def on_signal(signum, frame):
        raise Stop()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        srv.serve()
    except Stop:
        pass
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass
    # daemon session threads die with the process
    os._exit(0)


if __name__ == "__main__":
    main()
