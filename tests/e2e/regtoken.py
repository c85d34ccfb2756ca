#!/usr/bin/env python3
"""regtoken: a Docker/OCI registry token issuer for tests.

It stands in for the token service of a real registry (Docker Hub's auth.docker.io,
quay.io's and Harbor's /service/token, GitLab's /jwt/auth): the service named by a
registry's `WWW-Authenticate: Bearer realm=..,service=..,scope=..` challenge. The registry
it serves is Debian's docker-registry (the CNCF distribution registry, 2.8) configured
with `auth: token` (issuer, service, rootcertbundle); the registry itself checks every
token this program signs, so a client that skips the flow or sends a wrong token is
refused by the real registry, not by this script.

  REGTOKEN_PASSWORD=P regtoken.py --port-file F --key KEY.pem --cert CERT.pem
              --issuer NAME --service NAME --user U --tls-cert PEM --tls-key PEM
              [--log F] [--timeout S]

(the password comes from the environment: a command line is visible to every user)

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] (HTTPS only):
  - with HTTP basic credentials: 401 unless they are --user/REGTOKEN_PASSWORD; then a token
    granting the requested actions (pull, push) on every requested repository
  - without credentials: a token granting pull on repositories named public/..., and
    nothing else (what Docker Hub gives anonymous clients; the registry then answers
    401 for anything else)
  - a service other than --service: 400
The token is a JWT signed ES256 with KEY; its header has `kid` in libtrust's key-ID
form (what registry 2.8 matches against the keys of its rootcertbundle) and `x5c` with
CERT. Answer: {"token": T, "access_token": T, "expires_in": 300, "issued_at": ...}.

--log appends one JSON object per request: path, scope list, service, whether an
Authorization header came and whether it was accepted (never the credentials).
The server exits by itself after --timeout seconds (default 900).
"""

import argparse
import base64
import datetime
import hashlib
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import serverlib  # tests/e2e/serverlib.py: TLS, lifetime, port file


def libtrust_key_id(public_key):
    """libtrust's KeyID: base32 of the first 240 bits of sha256(DER SubjectPublicKeyInfo),
    in 12 groups of 4 characters joined by ':' (docker/libtrust util.go keyIDEncode)."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def parse_scope(scope):
    # repository:NAME:ACTIONS; NAME may hold ':' only in a registry host part, which a
    # scope never has here, so split from the right
    parts = scope.rsplit(":", 1)
    if len(parts) != 2 or not parts[0].startswith("repository:"):
        return None
    return {"type": "repository", "name": parts[0][len("repository:"):],
            "actions": [a for a in parts[1].split(",") if a]}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "regtoken"

    def log_message(self, fmt, *args):  # the JSON log is the record
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="regtoken"')
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        cfg = self.server.cfg
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        scopes = query.get("scope", [])
        service = (query.get("service") or [""])[0]
        auth = self.headers.get("Authorization", "")
        record = {"path": url.path, "scope": scopes, "service": service,
                  "authorization": bool(auth), "accepted": None}
        try:
            if url.path != "/token":
                self.reply(404, '{"error":"not found"}')
                return
            if service != cfg.service:
                self.reply(400, json.dumps({"error": "unknown service %r" % service}))
                return
            user = None
            if auth:
                ok = False
                if auth.startswith("Basic "):
                    try:
                        u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                        ok = (u == cfg.user and p == cfg.password)
                        user = u
                    except ValueError:
                        ok = False
                record["accepted"] = ok
                if not ok:
                    self.reply(401, '{"error":"wrong credentials"}')
                    return
            access = []
            for s in scopes:
                want = parse_scope(s)
                if want is None:
                    continue
                if user is None:
                    want["actions"] = [a for a in want["actions"] if a == "pull"]
                    if not want["name"].startswith("public/"):
                        want["actions"] = []
                access.append(want)
            self.reply(200, json.dumps(self.server.sign(user or "", access)))
        finally:
            self.server.log(record)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cfg):
        super().__init__(("127.0.0.1", 0), Handler)
        self.cfg = cfg
        with open(cfg.key, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        with open(cfg.cert, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.headers = {
            "kid": libtrust_key_id(cert.public_key()),
            "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        self.lock = threading.Lock()

    def sign(self, subject, access):
        now = int(time.time())
        claims = {"iss": self.cfg.issuer, "sub": subject, "aud": self.cfg.service,
                  "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        token = jwt.encode(claims, self.key, algorithm="ES256", headers=self.headers)
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        return {"token": token, "access_token": token, "expires_in": 300,
                "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def log(self, record):
        if not self.cfg.log:
            return
        with self.lock, open(self.cfg.log, "a") as f:
            f.write(json.dumps(record) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("port-file", "key", "cert", "issuer", "service", "user",
                 "tls-cert", "tls-key"):
        ap.add_argument("--" + name, required=True)
    ap.add_argument("--log")
    ap.add_argument("--timeout", type=float, default=900)
    cfg = ap.parse_args()
    cfg.password = os.environ.get("REGTOKEN_PASSWORD")
    if not cfg.password:
        ap.error("REGTOKEN_PASSWORD is not set")
    srv = Server(cfg)
    return serverlib.serve(srv, cfg.tls_cert, cfg.tls_key, cfg.timeout, cfg.port_file)


if __name__ == "__main__":
    sys.exit(main())
