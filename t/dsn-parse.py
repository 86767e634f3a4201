#!/usr/bin/env python3
"""dsn-parse.py - check a delivery status notification and list its recipients.

    t/dsn-parse.py FILE        (FILE "-" reads standard input)

Parses FILE, one whole message as it reached the SMTP sink (CRLF or LF line
ends), with the standard library's email package (policy=default) and checks
that it is a DSN as RFC 3464 and RFC 6522 define it:

  - top level multipart/report with report-type=delivery-status, no MIME
    structure defects (missing start or close boundary, ...);
  - at least two parts, the second message/delivery-status, a third if
    present text/rfc822-headers or message/rfc822 (or message/global...);
  - the delivery-status part has a per-message block with Reporting-MTA
    "type; name", then one or more per-recipient blocks, each with exactly
    one Final-Recipient "type; address", Action (failed, delayed, delivered,
    relayed or expanded) and Status (class.subject.detail, class 2, 4 or 5,
    and 4 or 5 for failed/delayed), and at most one Diagnostic-Code
    "type; text" and Remote-MTA "type; name".

On success it prints one line per recipient, in order:

    address<TAB>action<TAB>status<TAB>diagnostic

where address is the Final-Recipient without its "rfc822;" type, action is in
lower case, and diagnostic is the unfolded Diagnostic-Code text without its
type ("smtp;"), empty if there is none.  Tabs and line ends inside values are
printed as spaces, so a line always has exactly four fields.  (Values are
header values as the email package sees them: an RFC 2047 encoded word in a
reply would be shown decoded.)

Exit status: 0 for a well-formed DSN, 1 (with "dsn-parse: FILE: reason" on
standard error) when it is malformed, 2 on a usage or read error.
"""

import os
import re
import sys
from email import policy
from email.parser import BytesParser

ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}
STATUS_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
TYPED_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.+-]*)\s*;\s*(.*?)\s*$", re.S)
# Defects that mean the MIME structure itself is broken.
FATAL_DEFECTS = (
    "NoBoundaryInMultipartDefect",
    "StartBoundaryNotFoundDefect",
    "CloseBoundaryNotFoundDefect",
    "MultipartInvariantViolationDefect",
    "MissingHeaderBodySeparatorDefect",
    "MisplacedEnvelopeHeaderDefect",
)


class Malformed(Exception):
    pass


def one_line(s):
    return re.sub(r"[\t\r\n]+", " ", s)


def field(block, name, where, required=True):
    """The single value of field name in block (str), or None if absent."""
    values = block.get_all(name) or []
    if len(values) > 1:
        raise Malformed("%s: %d %s fields" % (where, len(values), name))
    if not values:
        if required:
            raise Malformed("%s: no %s field" % (where, name))
        return None
    return str(values[0])


def typed(block, name, where, required=True):
    """(type, value) of a "type; value" field, or None if absent."""
    v = field(block, name, where, required)
    if v is None:
        return None
    m = TYPED_RE.match(v)
    if not m:
        raise Malformed('%s: %s is not "type; value": %r' % (where, name, v))
    return m.group(1), m.group(2)


def check_defects(msg):
    for n, part in enumerate(msg.walk()):
        for d in part.defects:
            if type(d).__name__ in FATAL_DEFECTS:
                raise Malformed("MIME part %d: %s" % (n, type(d).__name__))


def parse(data):
    msg = BytesParser(policy=policy.default).parsebytes(data)
    check_defects(msg)
    if msg.get_content_type() != "multipart/report":
        raise Malformed("top level is %s, not multipart/report" % msg.get_content_type())
    rtype = msg.get_param("report-type")
    if not isinstance(rtype, str) or rtype.lower() != "delivery-status":
        raise Malformed("report-type is %r, not delivery-status" % (rtype,))
    parts = msg.get_payload()
    if not isinstance(parts, list) or len(parts) < 2:
        raise Malformed("multipart/report with fewer than 2 parts")
    if parts[1].get_content_type() not in ("message/delivery-status",
                                           "message/global-delivery-status"):
        raise Malformed("second part is %s, not message/delivery-status"
                        % parts[1].get_content_type())
    if len(parts) > 2 and parts[2].get_content_type() not in (
            "text/rfc822-headers", "message/rfc822",
            "message/global", "message/global-headers"):
        raise Malformed("third part is %s, not the original message or headers"
                        % parts[2].get_content_type())

    blocks = parts[1].get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise Malformed("delivery-status part has no per-recipient block")
    typed(blocks[0], "Reporting-MTA", "per-message fields")
    for b in blocks[0].keys():
        if b.lower() in ("final-recipient", "action", "status"):
            raise Malformed("per-message fields hold %s" % b)

    out = []
    for i, b in enumerate(blocks[1:], 1):
        where = "recipient %d" % i
        rtype_, addr = typed(b, "Final-Recipient", where)
        if not addr:
            raise Malformed("%s: empty Final-Recipient" % where)
        action = field(b, "Action", where).strip().lower()
        if action not in ACTIONS:
            raise Malformed("%s: unknown Action %r" % (where, action))
        status = field(b, "Status", where).strip()
        m = STATUS_RE.match(status)
        if not m:
            raise Malformed("%s: Status %r is no enhanced status code" % (where, status))
        if action in ("failed", "delayed") and m.group(1) == "2":
            raise Malformed("%s: Action %s with success Status %s" % (where, action, status))
        typed(b, "Remote-MTA", where, required=False)
        diag = typed(b, "Diagnostic-Code", where, required=False)
        out.append((addr, action, status, diag[1] if diag else ""))
    return out


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: dsn-parse.py FILE\n")
        return 2
    name = argv[1]
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as f:
                data = f.read()
    except OSError as e:
        sys.stderr.write("dsn-parse: %s: %s\n" % (name, e.strerror or e))
        return 2
    try:
        rcpts = parse(data)
    except Malformed as e:
        sys.stderr.write("dsn-parse: %s: %s\n" % (name, e))
        return 1
    except Exception as e:  # the parser itself choked: that is malformed too
        sys.stderr.write("dsn-parse: %s: cannot parse: %s: %s\n"
                         % (name, type(e).__name__, e))
        return 1
    w = sys.stdout.buffer
    try:
        for r in rcpts:
            line = "\t".join(one_line(x) for x in r) + "\n"
            w.write(line.encode("utf-8", "surrogateescape"))
        w.flush()
    except BrokenPipeError:  # a reader that stopped early, e.g. head(1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
