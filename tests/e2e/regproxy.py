#!/usr/bin/env python3
"""regproxy: an HTTPS proxy in front of a real registry that misbehaves on blob downloads.

  regproxy.py --upstream https://127.0.0.1:PORT --ca CA.pem --tls-cert PEM --tls-key PEM
              [--port-file F] [--log F] [--timeout S]
              [--reset-at N | --stall S --stall-at N | --close-at N] [--times K]
              [--min-length N]
              [--redirect-blobs] [--manifest-file F [--manifest-type T]]
              [--document-status S [--document-times K]]

Every request is forwarded to the upstream registry (tests/e2e/registry-fixture.sh) with
its headers (Authorization included) and the answer is sent back, so clients see the real
registry's protocol, auth challenges and digests. Faults apply to the body of blob GETs
(/v2/NAME/blobs/sha256:...), to the first K of them (--times, default 1; counted per
blob path; with --min-length, only answers of at least N bytes: the layers, not the
image config), at body byte N of that response:

  --reset-at N         reset the connection (TCP RST)
  --close-at N         close the connection cleanly, short of Content-Length
  --stall S --stall-at N   send nothing for S seconds, then go on
  --redirect-blobs     answer blob GETs with 307 to https://localhost:PORT/_blob/... (this
                       proxy under another host name, as a registry redirects to a CDN or
                       object store); that request is served from upstream without the
                       client's credentials (with $REGPROXY_UPSTREAM_AUTH=USER:PASS as
                       basic auth when set: the stand-in for a pre-signed URL), and the
                       log says whether Authorization came with it

  --manifest-file F    answer every manifest request (/v2/NAME/manifests/REF) with the
                       bytes of F (Content-Type --manifest-type, default the OCI manifest
                       type; Docker-Content-Digest their sha256), as a broken or hostile
                       registry would: a huge manifest, one that is not JSON, or other
                       bytes than a @sha256: reference names

  --document-status S  answer the first K (--document-times, default 1) requests that are
                       not blob GETs (the /v2/ ping, manifests) with status S and no body,
                       as a registry behind an overloaded load balancer does (503)

Range and If-Range are forwarded, so a client that resumes gets the registry's 206.
--log appends one JSON object per request: method, path, host, range, status, and
whether an Authorization header came (never its value).
The server exits by itself after --timeout seconds (default 900).
"""

import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

import serverlib  # tests/e2e/serverlib.py: TLS, lifetime, port file

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
       "trailer", "upgrade", "host"}
CHUNK = 64 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "regproxy"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.forward("GET")

    def do_HEAD(self):
        self.forward("HEAD")

    def record(self, status):
        self.server.log({"method": self.command, "path": self.path,
                         "host": self.headers.get("Host", ""),
                         "range": self.headers.get("Range"),
                         "status": status,
                         "authorization": "Authorization" in self.headers})

    def is_blob(self, path):
        parts = urllib.parse.urlsplit(path).path.split("/")
        return len(parts) >= 5 and parts[1] == "v2" and parts[-2] == "blobs"

    def is_manifest(self, path):
        parts = urllib.parse.urlsplit(path).path.split("/")
        return len(parts) >= 5 and parts[1] == "v2" and parts[-2] == "manifests"

    def fake_manifest(self, method):
        body = self.server.manifest
        self.send_response(200)
        self.send_header("Content-Type", self.server.cfg.manifest_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        self.end_headers()
        if method == "GET":
            self.wfile.write(body)
        self.record(200)

    def forward(self, method):
        cfg = self.server.cfg
        path = self.path
        if not (method == "GET" and self.is_blob(path)) and self.server.take_document_fault():
            self.send_response(cfg.document_status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(cfg.document_status)
            return
        if self.server.manifest is not None and self.is_manifest(path):
            self.fake_manifest(method)
            return
        redirected = path.startswith("/_blob/")
        if redirected:
            path = path[len("/_blob"):]
        elif cfg.redirect_blobs and method == "GET" and self.is_blob(path):
            port = self.server.server_address[1]
            self.send_response(307)
            self.send_header("Location", "https://localhost:%d/_blob%s" % (port, path))
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(307)
            return
        # a list, not a dict: clients send several Accept headers
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP
                   and not (redirected and k.lower() == "authorization")]
        up = http.client.HTTPSConnection(self.server.up_host, self.server.up_port,
                                         context=self.server.up_ctx, timeout=60)
        try:
            up.putrequest(method, path, skip_accept_encoding=True)
            for k, v in headers:
                up.putheader(k, v)
            if redirected and self.server.upstream_auth:
                up.putheader("Authorization", "Basic " + self.server.upstream_auth)
            up.endheaders()
            resp = up.getresponse()
            fault = None
            length = resp.getheader("Content-Length")
            if (method == "GET" and resp.status in (200, 206) and self.is_blob(path)
                    and int(length or 0) >= self.server.cfg.min_length):
                fault = self.server.take_fault(path)
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            if method == "HEAD":
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                self.record(resp.status)
                return
            if length is None:  # a small JSON answer: read it whole
                body = resp.read()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.record(resp.status)
                return
            self.send_header("Content-Length", length)
            self.end_headers()
            self.record(resp.status)
            self.stream(resp, int(length), fault)
        finally:
            up.close()

    def stream(self, resp, length, fault):
        cfg = self.server.cfg
        sent = 0
        at = None
        if fault:
            at = cfg.reset_at if cfg.reset_at is not None else (
                cfg.close_at if cfg.close_at is not None else cfg.stall_at)
        stalled = False
        while sent < length:
            want = CHUNK
            if at is not None and sent < at:
                want = min(want, at - sent)
            data = resp.read(want)
            if not data:
                break
            if at is not None and sent + len(data) >= at and not stalled:
                head = data[:at - sent]
                self.wfile.write(head)
                self.wfile.flush()
                sent += len(head)
                data = data[len(head):]
                if cfg.reset_at is not None:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    raise ConnectionAbortedError("reset injected")
                if cfg.close_at is not None:
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                time.sleep(cfg.stall)
                stalled = True
            if data:
                self.wfile.write(data)
                sent += len(data)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cfg):
        super().__init__(("127.0.0.1", 0), Handler)
        self.cfg = cfg
        up = urllib.parse.urlsplit(cfg.upstream)
        self.up_host, self.up_port = up.hostname, up.port
        self.up_ctx = ssl.create_default_context(cafile=cfg.ca)
        self.lock = threading.Lock()
        self.faults = {}
        self.document_faults = 0
        self.manifest = None
        if cfg.manifest_file:
            with open(cfg.manifest_file, "rb") as f:
                self.manifest = f.read()
        auth = os.environ.get("REGPROXY_UPSTREAM_AUTH", "")
        self.upstream_auth = base64.b64encode(auth.encode()).decode() if auth else ""

    def take_fault(self, path):
        c = self.cfg
        if c.reset_at is None and c.close_at is None and c.stall_at is None:
            return False
        with self.lock:
            n = self.faults.get(path, 0)
            self.faults[path] = n + 1
            return n < c.times

    def take_document_fault(self):
        if self.cfg.document_status is None:
            return False
        with self.lock:
            self.document_faults += 1
            return self.document_faults <= self.cfg.document_times

    def log(self, record):
        if not self.cfg.log:
            return
        with self.lock, open(self.cfg.log, "a") as f:
            f.write(json.dumps(record) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--tls-cert", required=True)
    ap.add_argument("--tls-key", required=True)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--reset-at", type=int)
    ap.add_argument("--close-at", type=int)
    ap.add_argument("--stall", type=float, default=0)
    ap.add_argument("--stall-at", type=int)
    ap.add_argument("--times", type=int, default=1)
    ap.add_argument("--min-length", type=int, default=0)
    ap.add_argument("--redirect-blobs", action="store_true")
    ap.add_argument("--manifest-file")
    ap.add_argument("--manifest-type", default="application/vnd.oci.image.manifest.v1+json")
    ap.add_argument("--document-status", type=int)
    ap.add_argument("--document-times", type=int, default=1)
    cfg = ap.parse_args()
    if cfg.stall_at is not None and cfg.stall <= 0:
        ap.error("--stall-at needs --stall SECONDS")
    srv = Server(cfg)
    return serverlib.serve(srv, cfg.tls_cert, cfg.tls_key, cfg.timeout, cfg.port_file,
                           handshake_on_accept=False)


if __name__ == "__main__":
    sys.exit(main())
