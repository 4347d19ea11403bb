#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small HTTP/1.1 file server that misbehaves on request, for thaw's tests.

It serves files under --root with single-range GETs, keep-alive, a strong
ETag and Last-Modified, and honours If-Match / If-Unmodified-Since (412),
like nginx. Misbehaviour that nginx cannot be told to produce is queued
through a control endpoint:

  GET /_ctl?fault=KIND[&count=N][&match=OFF][&min_off=OFF][&status=S]
           [&retry_after=SECS][&stall=SECS]
      KIND: status     reply with HTTP S (default 503) and a small body
            429        reply 429 Too Many Requests with Retry-After
            short      promise the whole range, send half, close
            long       send more body bytes than the range asked for
            wrong_range  a Content-Range (and body) one byte off
            flip       the right range with one byte inverted
            stall      send the headers and half the body, then hang
            close      close the connection without a reply
            ignore_range  reply 200 with the whole file
      count: how many matching requests it hits (default 1, -1 forever);
      match: only requests whose range contains byte OFF;
      min_off: only requests whose range starts at OFF or later.
  GET /_ctl?clear=1   drop every queued fault
  GET /_ctl?stats=1   {"requests": N, "range_requests": N, "faults": N}

The port it listens on (bound as port 0) is written to --port-file.
--require-header 'Name: value' answers 401 to requests without that header;
--tls-cert/--tls-key serve HTTPS; --sigv4 KEY:SECRET checks every file
request's AWS Signature Version 4 (Authorization header) and answers 403
SignatureDoesNotMatch when it is wrong or missing.
"""
import argparse
import email.utils
import hashlib
import hmac
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
FAULTS = []  # dicts: kind, count, match, min_off, status, retry_after, stall
STATS = {"requests": 0, "range_requests": 0, "faults": 0}
ROOT = "."
REQUIRE = None  # (name, value) every file request must carry
SIGV4 = None  # (access key, secret) requests must be signed with


def sigv4_ok(handler):
    """Recompute the request's SigV4 signature from its signed headers."""
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        key_id, date, region, service, term = fields["Credential"].split("/")
    except (KeyError, ValueError):
        return False
    if key_id != SIGV4[0] or term != "aws4_request":
        return False
    signed = fields.get("SignedHeaders", "").split(";")
    url = urllib.parse.urlsplit(handler.path)
    query = sorted(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    canon_query = "&".join(
        "%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")) for k, v in query
    )
    canon_headers = "".join(
        "%s:%s\n" % (h, " ".join((handler.headers.get(h) or "").split())) for h in signed
    )
    payload = handler.headers.get("x-amz-content-sha256") or hashlib.sha256(b"").hexdigest()
    creq = "\n".join(
        [handler.command, urllib.parse.quote(url.path, safe="/-_.~"), canon_query, canon_headers, ";".join(signed), payload]
    )
    amz_date = handler.headers.get("x-amz-date", "")
    scope = "/".join([date, region, service, term])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + SIGV4[1]).encode()
    for part in (date, region, service, term):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    want = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, fields.get("Signature", ""))


def take_fault(start, end):
    """The first queued fault that applies to bytes [start, end], consumed once."""
    with LOCK:
        for f in FAULTS:
            if f["match"] is not None and not (start <= f["match"] <= end):
                continue
            if f["min_off"] is not None and start < f["min_off"]:
                continue
            if f["count"] > 0:
                f["count"] -= 1
            if f["count"] == 0:
                FAULTS.remove(f)
            STATS["faults"] += 1
            return dict(f)
    return None


def etag_of(st):
    return '"%x-%x"' % (st.st_mtime_ns, st.st_size)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faulty_http/1"
    # Headers and body go out in separate writes; Nagle would hold the body for the ACK.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def control(self, query):
        q = urllib.parse.parse_qs(query)
        one = lambda k, d=None: q[k][0] if k in q else d
        if one("clear"):
            with LOCK:
                FAULTS.clear()
        if one("fault"):
            f = {
                "kind": one("fault"),
                "count": int(one("count", "1")),
                "match": int(one("match")) if one("match") is not None else None,
                "min_off": int(one("min_off")) if one("min_off") is not None else None,
                "status": int(one("status", "503")),
                "retry_after": one("retry_after"),
                "stall": float(one("stall", "30")),
            }
            with LOCK:
                FAULTS.append(f)
        with LOCK:
            body = json.dumps(STATS).encode()
        self.reply(200, body, [("Content-Type", "application/json")])

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_ctl":
            return self.control(url.query)
        with LOCK:
            STATS["requests"] += 1
        if REQUIRE and self.headers.get(REQUIRE[0]) != REQUIRE[1]:
            return self.reply(401, b"unauthorized\n")
        if SIGV4 and not sigv4_ok(self):
            return self.reply(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>\n")
        path = os.path.join(ROOT, urllib.parse.unquote(url.path).lstrip("/"))
        if ".." in url.path or not os.path.isfile(path):
            return self.reply(404, b"not found\n")
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            size = st.st_size
            etag = etag_of(st)
            lastmod = email.utils.formatdate(st.st_mtime, usegmt=True)
            im = self.headers.get("If-Match")
            if im is not None and im.strip() != "*" and etag not in [t.strip() for t in im.split(",")]:
                return self.reply(412, b"precondition failed\n")
            ius = self.headers.get("If-Unmodified-Since")
            if ius is not None:
                t = email.utils.parsedate_to_datetime(ius).timestamp()
                if int(st.st_mtime) > int(t):
                    return self.reply(412, b"precondition failed\n")
            rng = self.headers.get("Range")
            start, end = 0, size - 1
            ranged = False
            if rng and rng.startswith("bytes=") and "," not in rng:
                a, _, b = rng[6:].partition("-")
                if a == "":
                    start, end = max(0, size - int(b)), size - 1
                else:
                    start = int(a)
                    end = min(int(b), size - 1) if b else size - 1
                if start >= size or start > end:
                    return self.reply(416, b"", [("Content-Range", "bytes */%d" % size)])
                ranged = True
                with LOCK:
                    STATS["range_requests"] += 1
            fault = take_fault(start, end)
            kind = fault["kind"] if fault else None
            common = [("ETag", etag), ("Last-Modified", lastmod), ("Accept-Ranges", "bytes")]
            if kind == "status":
                return self.reply(fault["status"], b"injected failure\n", common)
            if kind == "429":
                hdrs = common + ([("Retry-After", fault["retry_after"])] if fault["retry_after"] else [])
                return self.reply(429, b"slow down\n", hdrs)
            if kind == "close":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if kind == "ignore_range":
                ranged, start, end = False, 0, size - 1
            if kind == "wrong_range" and end + 1 < size:
                start, end = start + 1, end + 1
            fh.seek(start)
            body = fh.read(end - start + 1)
            if kind == "flip":
                body = bytearray(body)
                body[len(body) // 2] ^= 0xFF
                body = bytes(body)
            extra = b"\0" * 100 if kind == "long" else b""
            self.send_response(206 if ranged else 200)
            for k, v in common:
                self.send_header(k, v)
            if ranged:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            self.send_header("Content-Length", str(len(body) + len(extra)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if self.command == "HEAD":
                return
            if kind in ("short", "stall"):
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                if kind == "stall":
                    time.sleep(fault["stall"])
                self.close_connection = True
                return
            self.wfile.write(body + extra)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    global ROOT, REQUIRE, SIGV4
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--require-header")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--sigv4")
    args = ap.parse_args()
    ROOT = args.root
    if args.sigv4:
        SIGV4 = tuple(args.sigv4.split(":", 1))
    if args.require_header:
        name, _, value = args.require_header.partition(":")
        REQUIRE = (name.strip(), value.strip())
    srv = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print("listening on 127.0.0.1:%d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
