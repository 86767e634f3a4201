#!/usr/bin/env python3
# reject-server.py - the remote mail server of mta-samples.sh: an SMTP
# server on 127.0.0.1 that refuses recipients by their local part, so that
# a real Postfix or Exim in front of it writes real bounces.
#
#   reject-server.py PORTFILE DIR
#
# RCPT by local part:  unknown*  550 5.1.1 user unknown
#                      quota*    552 5.2.2 mailbox full
#                      relay*    554 5.7.1 relay access denied
#                      later*    451 4.2.0 try again later
#                      spam*     accepted; the DATA is refused, 550 5.7.1 spam
#                      anything else accepted
# Every accepted message (the bounces the MTA sends back) is saved as
# DIR/msg-N.eml.  Runs until killed.
import os
import socket
import sys
import threading

REPLIES = [
    ("unknown", "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table"),
    ("quota", "552 5.2.2 <%s>: Mailbox full: user is over quota"),
    ("relay", "554 5.7.1 <%s>: Relay access denied"),
    ("later", "451 4.2.0 <%s>: Recipient address rejected: Mailbox busy, try again later"),
]
lock = threading.Lock()
count = [0]


def session(conn, outdir):
    f = conn.makefile("rb")

    def say(line):
        conn.sendall((line + "\r\n").encode())

    say("220 remote.example.net ESMTP test")
    rcpts = []
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode("latin-1").rstrip("\r\n")
        up = cmd.upper()
        if up.startswith(("EHLO", "HELO")):
            say("250-remote.example.net\r\n250-PIPELINING\r\n250 8BITMIME")
        elif up.startswith("MAIL"):
            rcpts = []
            say("250 2.1.0 Ok")
        elif up.startswith("RCPT"):
            addr = cmd[cmd.find("<") + 1:cmd.find(">")]
            local = addr.split("@")[0].lower()
            for prefix, reply in REPLIES:
                if local.startswith(prefix):
                    say(reply % addr)
                    break
            else:
                rcpts.append(addr)
                say("250 2.1.5 Ok")
        elif up == "DATA":
            if not rcpts:
                say("554 5.5.1 Error: no valid recipients")
                continue
            say("354 End data with <CR><LF>.<CR><LF>")
            data = []
            while True:
                d = f.readline()
                if not d or d in (b".\r\n", b".\n"):
                    break
                data.append(d[1:] if d.startswith(b"..") else d)
            if any(r.lower().startswith("spam") for r in rcpts):
                say("550 5.7.1 Message rejected: spam content detected by the content filter")
                continue
            with lock:
                count[0] += 1
                n = count[0]
            with open(os.path.join(outdir, "msg-%d.eml" % n), "wb") as out:
                out.write(b"".join(data))
            say("250 2.0.0 Ok: queued")
        elif up == "QUIT":
            say("221 2.0.0 Bye")
            return
        elif up in ("RSET", "NOOP"):
            say("250 2.0.0 Ok")
        else:
            say("502 5.5.2 Error: command not recognized")


def main():
    portfile, outdir = sys.argv[1], sys.argv[2]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    with open(portfile + ".tmp", "w") as p:
        p.write("%d\n" % s.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=lambda c=conn: (session(c, outdir), c.close()), daemon=True).start()


main()
