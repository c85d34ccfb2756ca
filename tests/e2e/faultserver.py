#!/usr/bin/env python3
"""faultserver: an HTTP/1.1 file server for tests that misbehaves on request.

Serves the files under --root on 127.0.0.1 with ETag, Last-Modified, Accept-Ranges,
single Range requests ("bytes=a-b", "bytes=a-", "bytes=-n") and If-Range, like nginx,
and injects faults chosen per request by the URL query or for every request by --fault
(same syntax; the query wins). Python 3 standard library only.

  faultserver.py --root DIR [--port-file FILE] [--log FILE] [--timeout S] [--fault Q]
                 [--tls-cert PEM --tls-key PEM]

With --tls-cert/--tls-key it speaks HTTPS only (for certificate tests: a certificate of
another CA, or for another host name).

The chosen port goes to --port-file (written atomically) or, without it, to stdout.
The server exits by itself after --timeout seconds (default 300).
--log appends one JSON object per request: path, query, range, if_range, status,
authorization (true/false, never the value) and every X-* request header.

Faults (query parameters; offsets are object byte offsets):
  reset=N          reset the connection (TCP RST) once body byte N would be sent
                   (bytes still in flight may be lost: a client sees the drop at or
                   before byte N, as with a real reset)
  short=N          close the connection cleanly at byte N, short of Content-Length
  extra=K          send K bytes more than Content-Length (body sent chunked, so a
                   client sees them; the object's own bytes come first)
  stall=S&at=N     send nothing for S seconds at byte N (at defaults to 0)
  times=K          reset/short/stall/status/ignore_range/bad_range/etag hit only the
                   first K requests for this URL (default 1; counted per path+query)
  NAME_times=K     the same for one fault (reset_times=1&times=5: the reset hits once,
                   the other faults five times); wins over times
  etag=change      each faulted response has another ETag and Last-Modified, as if the
                   object were replaced between requests (If-Range then fails)
  ignore_range=1   answer a Range request with 200 and the whole object
  bad_range=1      answer a Range request with 206 starting one byte later than asked
  status=CODE      answer CODE with a short text body (5xx then success: times=N)
  redirect=loop    answer 302 to the same URL, forever
  redirect=N       N redirects (302) before the object
  html=1           answer 200, Content-Type text/html, with an HTML error page
  auth=USER:PASS   require HTTP basic auth (401 otherwise)
  require_header=NAME:VALUE   answer 403 unless the request has that header
  no_validators=1  send neither ETag nor Last-Modified
"""

import argparse
import base64
import email.utils
import http.server
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse

import serverlib  # tests/e2e/serverlib.py: TLS, lifetime, port file

CHUNK = 64 * 1024


class Faults:
    """Per-URL fault counters, shared by the handler threads."""

    def __init__(self, default_query):
        self.default = urllib.parse.parse_qs(default_query or "")
        self.counts = {}
        self.lock = threading.Lock()

    def params(self, query):
        merged = dict(self.default)
        merged.update(urllib.parse.parse_qs(query))
        return {k: v[-1] for k, v in merged.items()}

    def take(self, key, times):
        """Whether fault `key` still fires (at most `times` times)."""
        with self.lock:
            n = self.counts.get(key, 0)
            if n >= times:
                return False
            self.counts[key] = n + 1
            return True

    def bump(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultserver"

    def log_message(self, fmt, *args):  # quiet: tests read --log instead
        pass

    # -- helpers -----------------------------------------------------------------

    def log_request_json(self, status):
        if not self.server.log_path:
            return
        entry = {
            "path": self.url.path,
            "query": self.url.query,
            "range": self.headers.get("Range"),
            "if_range": self.headers.get("If-Range"),
            "status": status,
            "authorization": "Authorization" in self.headers,
        }
        for name, value in self.headers.items():
            if name.lower().startswith("x-"):
                entry[name] = value
        with self.server.log_lock, open(self.server.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def simple(self, status, body, ctype="text/plain", extra=None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.log_request_json(status)

    def fires(self, name, p):
        times = int(p.get(name + "_times", p.get("times", "1")))
        return self.server.faults.take(self.key + "#" + name, times)

    def reset_connection(self):
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    # -- the request -----------------------------------------------------------

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.url = urllib.parse.urlsplit(self.path)
        self.key = self.url.path + "?" + self.url.query
        p = self.server.faults.params(self.url.query)
        try:
            self.serve(p)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def serve(self, p):
        if not self.check_access(p):
            return
        if "status" in p and self.fires("status", p):
            code = int(p["status"])
            self.simple(code, "fault: status %d\n" % code)
            return
        if p.get("redirect") == "loop":
            self.simple(302, "loop\n", extra={"Location": self.path})
            return
        if p.get("redirect", "0").isdigit() and int(p.get("redirect", "0")) > 0:
            q = dict(urllib.parse.parse_qsl(self.url.query))
            q["redirect"] = str(int(p["redirect"]) - 1)
            loc = self.url.path + "?" + urllib.parse.urlencode(q)
            self.simple(302, "redirect\n", extra={"Location": loc})
            return
        if p.get("html") == "1":
            self.simple(200, "<html><body><h1>Error</h1>Please log in.</body></html>\n",
                        ctype="text/html; charset=utf-8")
            return
        self.serve_file(p)

    def check_access(self, p):
        if "auth" in p:
            want = "Basic " + base64.b64encode(p["auth"].encode()).decode()
            if self.headers.get("Authorization") != want:
                self.simple(401, "authentication required\n",
                            extra={"WWW-Authenticate": 'Basic realm="faultserver"'})
                return False
        if "require_header" in p:
            name, _, value = p["require_header"].partition(":")
            if self.headers.get(name) != value:
                self.simple(403, "forbidden\n")
                return False
        return True

    def validators(self, st, p):
        if p.get("no_validators") == "1":
            return None, None
        mtime = int(st.st_mtime)
        etag = '"%x-%x"' % (mtime, st.st_size)
        if p.get("etag") == "change" and self.fires("etag", p):
            n = self.server.faults.bump(self.key + "#etag-generation")
            etag = '"%x-%x-%d"' % (mtime, st.st_size, n)
            mtime += n
        return etag, email.utils.formatdate(mtime, usegmt=True)

    def wanted_range(self, size, etag, last_modified, p):
        """(first, last) asked for, or None for the whole object."""
        header = self.headers.get("Range")
        if not header or not header.startswith("bytes=") or "," in header:
            return None
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range not in (etag, last_modified):
            return None
        if p.get("ignore_range") == "1" and self.fires("ignore_range", p):
            return None
        a, _, b = header[6:].strip().partition("-")
        if a == "":
            n = int(b)
            return (max(0, size - n), size - 1)
        first = int(a)
        last = int(b) if b else size - 1
        return (first, min(last, size - 1))

    def serve_file(self, p):
        rel = urllib.parse.unquote(self.url.path).lstrip("/")
        path = os.path.realpath(os.path.join(self.server.root, rel))
        if not path.startswith(self.server.root + os.sep) or not os.path.isfile(path):
            self.simple(404, "not found\n")
            return
        st = os.stat(path)
        size = st.st_size
        etag, last_modified = self.validators(st, p)
        rng = self.wanted_range(size, etag, last_modified, p)
        if rng is not None and rng[0] >= size:
            self.simple(416, "range not satisfiable\n",
                        extra={"Content-Range": "bytes */%d" % size})
            return
        first, last = rng if rng else (0, size - 1)
        status = 206 if rng else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if etag:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
        if rng:
            shown = first + 1 if p.get("bad_range") == "1" and self.fires("bad_range", p) \
                else first
            self.send_header("Content-Range", "bytes %d-%d/%d" % (shown, last, size))
        self.send_header("Content-Length", str(last - first + 1))
        extra = int(p.get("extra", "0"))
        if extra:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.log_request_json(status)
        if self.command == "HEAD":
            return
        with open(path, "rb") as f:
            f.seek(first)
            self.send_body(f, first, last + 1, p, extra)

    def write_body(self, data, chunked):
        if chunked:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)

    def send_body(self, f, pos, end, p, extra):
        reset_at = int(p["reset"]) if "reset" in p else None
        short_at = int(p["short"]) if "short" in p else None
        stall_at = int(p.get("at", "0")) if "stall" in p else None
        while pos < end:
            n = min(CHUNK, end - pos)
            for mark in (reset_at, short_at, stall_at):
                if mark is not None and pos < mark < pos + n:
                    n = mark - pos
            if stall_at == pos and self.fires("stall", p):
                self.wfile.flush()
                time.sleep(float(p["stall"]))
            if reset_at == pos and self.fires("reset", p):
                self.reset_connection()
                return
            if short_at == pos and self.fires("short", p):
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_WR)
                return
            self.write_body(f.read(n), extra)
            pos += n
        if extra:
            self.write_body(b"X" * extra, True)
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client that goes away (often on purpose, after a fault) is not news
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--fault", default="")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()

    server = Server(("127.0.0.1", args.port), Handler)
    server.root = os.path.realpath(args.root)
    server.faults = Faults(args.fault)
    server.log_path = args.log
    server.log_lock = threading.Lock()
    return serverlib.serve(server, args.tls_cert, args.tls_key, args.timeout, args.port_file)


if __name__ == "__main__":
    sys.exit(main())
