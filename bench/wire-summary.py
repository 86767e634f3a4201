#!/usr/bin/env python3
"""wire-summary - how an SMTP client writes, from a tcpdump capture.

    wire-summary.py CAPTURE.pcap SERVER_PORT [--stall-ms 30]

Reads a classic pcap file (tcpdump -w, IPv4 over the loopback's Ethernet
or Linux cooked framing), follows every TCP connection to SERVER_PORT and
prints, for the first transactions of each connection, which client
segments carried what (MAIL, RCPT xN, DATA, message body, the final ".")
and when the server answered; then every quiet gap of STALL_MS or more
(the signature of Nagle waiting for a delayed ACK: 40 ms on Linux, 200 ms
elsewhere).  Used by bench/deliver-bench.sh; the standard library only.

A "segment" is what the capture shows: on the loopback, TCP segmentation
offload can show several writes that left together as one segment, so a
segment is an upper bound on one write(2), never less.
"""
import struct
import sys


TRUNCATED = [0]  # segments whose payload the capture cut (snap length)


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        end = "<"
    else:
        magic = struct.unpack(">I", data[:4])[0]
        end = ">"
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack(end + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        ts = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:  # Ethernet (the loopback)
            if len(frame) < 14 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
        elif linktype == 113:  # Linux cooked v1
            if len(frame) < 16 or frame[14:16] != b"\x08\x00":
                continue
            ip = frame[16:]
        elif linktype == 276:  # Linux cooked v2
            if len(frame) < 20 or frame[0:2] != b"\x08\x00":
                continue
            ip = frame[20:]
        elif linktype in (0, 12, 101):  # raw IP
            ip = frame[4:] if linktype == 0 else frame
        else:
            sys.exit("wire-summary: unsupported link type %d" % linktype)
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:]
        if len(tcp) < 20:
            continue
        sport, dport, seq, ack = struct.unpack(">HHII", tcp[:12])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        plen = total - ihl - doff
        payload = tcp[doff:doff + max(plen, 0)]
        if len(payload) < plen:
            TRUNCATED[0] += 1
        yield ts, sport, dport, seq, flags, plen, payload


def classify(payload, state):
    """What a client segment carries; state['body'] is True inside DATA."""
    parts = []
    text = payload
    if state["body"]:
        if text.endswith(b"\r\n.\r\n") or text == b".\r\n":
            parts.append("body+'.'" if len(text) > 5 else "'.'")
            state["body"] = False
        else:
            parts.append("body")
        return parts
    n_mail = text.count(b"MAIL FROM:")
    n_rcpt = text.count(b"RCPT TO:")
    if text.startswith(b"EHLO") or text.startswith(b"HELO"):
        parts.append("EHLO")
    if n_mail:
        parts.append("MAIL")
    if n_rcpt:
        parts.append("RCPT x%d" % n_rcpt)
    if b"DATA\r\n" in text:
        parts.append("DATA")
    if text.startswith(b"QUIT") or b"\r\nQUIT\r\n" in text:
        parts.append("QUIT")
    if text.startswith(b"RSET"):
        parts.append("RSET")
    if not parts:
        parts.append("?")
    return parts


def reply_codes(payload):
    codes = []
    for line in payload.split(b"\r\n"):
        if len(line) >= 4 and line[:3].isdigit() and line[3:4] in (b" ", b"-"):
            if line[3:4] == b" ":
                codes.append(line[:3].decode())
    return codes


def compress(codes):
    """["250", "250", "354"] -> "250 x2, 354"."""
    out = []
    for c in codes:
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([c, 1])
    return ", ".join(c if k == 1 else "%s x%d" % (c, k) for c, k in out)


def main():
    args = sys.argv[1:]
    stall_ms = 30.0
    if "--stall-ms" in args:
        i = args.index("--stall-ms")
        stall_ms = float(args[i + 1])
        del args[i:i + 2]
    max_events = 24
    if "--max-events" in args:
        i = args.index("--max-events")
        max_events = int(args[i + 1])
        del args[i:i + 2]
    show = 2
    if "--show" in args:
        i = args.index("--show")
        show = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    path, port = args[0], int(args[1])
    conns = {}
    order = []
    for ts, sport, dport, seq, flags, plen, payload in packets(path):
        if dport == port:
            key, from_client = sport, True
        elif sport == port:
            key, from_client = dport, False
        else:
            continue
        if key not in conns:
            conns[key] = []
            order.append(key)
        conns[key].append((ts, from_client, flags, plen, payload))

    total_stalls = []
    all_gaps = []
    for n, key in enumerate(order, 1):
        pk = conns[key]
        state = {"body": False}
        txns = []  # list of lists of event strings
        cur = None
        ehlo_ext = []
        events = []  # (ts, who, desc) for stall reporting
        last_reply_250_end = None
        for ts, from_client, flags, plen, payload in pk:
            if from_client:
                if plen <= 0:
                    events.append((ts, "C", "ack"))
                    continue
                parts = classify(payload, state)
                desc = "+".join(parts)
                if "MAIL" in parts:
                    if last_reply_250_end is not None:
                        all_gaps.append((ts - last_reply_250_end) * 1e3)
                    cur = []
                    txns.append(cur)
                if cur is not None:
                    cur.append((ts, "C", "%s %dB" % (desc, plen)))
                events.append((ts, "C", "%s %dB" % (desc, plen)))
            else:
                if plen <= 0:
                    desc = "ack-only"
                else:
                    codes = reply_codes(payload)
                    if b"250-" in payload and b"EHLO" not in payload:
                        for line in payload.split(b"\r\n"):
                            if line.startswith(b"250-") or line.startswith(b"250 "):
                                ehlo_ext.append(line[4:].decode(errors="replace"))
                    desc = "reply " + (compress(codes) if codes else "(partial)")
                    if "354" in codes:
                        state["body"] = True
                if cur is not None:
                    cur.append((ts, "S", desc))
                events.append((ts, "S", desc))
                if plen > 0 and state["body"] is False and cur is not None:
                    # the reply that closes a transaction: 250 after "."
                    if any(e[2].startswith("body+'.'") or e[2].startswith("'.'")
                           for e in cur if e[1] == "C"):
                        last_reply_250_end = ts
        print("connection %d (client port %d): %d transaction%s, %d packets"
              % (n, key, len(txns), "" if len(txns) == 1 else "s", len(pk)))
        if ehlo_ext:
            ext = [e for e in ehlo_ext[1:] if e]
            print("  EHLO reply announces: %s" % " ".join(ext))
            print("  PIPELINING announced: %s"
                  % ("yes" if any(e.upper().startswith("PIPELINING") for e in ext) else "NO"))
        for t, tx in enumerate(txns[:show], 1):
            t0 = tx[0][0]
            print("  transaction %d (times in ms from its MAIL):" % t)
            if len(tx) > max_events:
                head, tail = max_events * 2 // 3, max_events - max_events * 2 // 3
                shown = tx[:head] + [None] + tx[-tail:]
            else:
                shown = tx
            for ev in shown:
                if ev is None:
                    print("    %8s  ... %d more packets ..." % ("", len(tx) - len(shown) + 1))
                    continue
                ts, who, desc = ev
                print("    %8.2f  %s  %s" % ((ts - t0) * 1e3,
                                            "client ->" if who == "C" else "<- server",
                                            desc))
        if len(txns) > show:
            print("    ... %d more transaction%s" % (len(txns) - show,
                                                 "" if len(txns) - show == 1 else "s"))
        rcpt_per_seg = [int(d.split("RCPT x")[1].split()[0].split("+")[0])
                        for _, w, d in events if w == "C" and "RCPT x" in d]
        if rcpt_per_seg:
            print("  RCPT commands per client segment: max %d, segments with RCPTs %d"
                  % (max(rcpt_per_seg), len(rcpt_per_seg)))
        stalls = []
        for (a, b) in zip(events, events[1:]):
            gap = (b[0] - a[0]) * 1e3
            if gap >= stall_ms:
                stalls.append((gap, a, b))
        for gap, a, b in stalls:
            total_stalls.append(gap)
        if stalls:
            print("  quiet gaps >= %.0f ms: %d" % (stall_ms, len(stalls)))
            for gap, a, b in stalls[:show + 2]:
                print("    %7.1f ms after  %s %s,  ended by  %s %s"
                      % (gap, "client" if a[1] == "C" else "server", a[2],
                         "client" if b[1] == "C" else "server", b[2]))
        else:
            print("  quiet gaps >= %.0f ms: none" % stall_ms)
    print("summary: %d connection%s, quiet gaps >= %.0f ms: %d%s"
          % (len(order), "" if len(order) == 1 else "s", stall_ms, len(total_stalls),
             (" (median %.1f ms, total %.0f ms)"
              % (sorted(total_stalls)[len(total_stalls) // 2], sum(total_stalls)))
             if total_stalls else ""))
    if TRUNCATED[0]:
        print("note: %d segments were cut by the capture's snap length: "
              "their command counts are lower bounds" % TRUNCATED[0])
    if all_gaps:
        g = sorted(all_gaps)
        print("client time between a transaction's final 250 and the next MAIL: "
              "median %.2f ms, max %.2f ms (%d transactions)"
              % (g[len(g) // 2], g[-1], len(g)))


if __name__ == "__main__":
    main()
