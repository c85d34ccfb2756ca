#!/usr/bin/python3
"""A STAND-IN for Google Cloud Storage's JSON API and Google's OAuth token endpoint, for
the gcs source's e2e tests.

No GCS server can be installed here: fake-gcs-server is in neither Debian nor npm, and
firebase-tools' storage emulator needs Java 21, which Debian 12 lacks. So this small
HTTPS server plays the two services vimport talks to, strictly as Google documents them
(cloud.google.com/storage/docs/json_api/v1/objects/get, .../performing-resumable-
downloads, developers.google.com/identity/protocols/oauth2/service-account#httprest):

  POST /token  (form: grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT)
      the JWT must be RS256-signed by --sa-public-key, iss == --sa-email, aud == this
      endpoint's URL, scope holding devstorage.read_only (or .full_control), iat/exp
      current and at most an hour apart; else 400 {"error":"invalid_grant",...} in
      Google's words. Answer: {"access_token","expires_in": --token-lifetime,
      "token_type":"Bearer"}; a token is refused (401) once it expired.
  GET /storage/v1/b/BUCKET/o/OBJECT          the object's metadata (generation and size
      as decimal strings, crc32c and md5Hash base64, as Google sends them)
  GET /storage/v1/b/BUCKET/o/OBJECT?alt=media the bytes, with Range (206 and
      Content-Range; 416 past the end), If-Range, x-goog-generation and x-goog-hash
  both: ?generation=N must be the live generation (404 otherwise: no versioning),
      ?ifGenerationMatch=N likewise (412); a bucket not in --public-bucket needs
      "Authorization: Bearer <a live token>" (401 JSON error otherwise).

Objects are the files ROOT/BUCKET/OBJECT; an object's generation is its file's
mtime in microseconds, so replacing the file makes a new generation. Faults and lies, for the
tests that must fail, come from ROOT/.control/BUCKET/OBJECT.json, read on every request:
  {"crc32c": "AAAAAA==", "md5Hash": "...", "drop": ["md5Hash"]}  metadata overrides
  {"reset_at": N, "reset_times": K}     the first K media answers from byte 0 stop after
                                       N bytes (connection closed)
  {"pause": S}                          ... after sleeping S seconds first
  {"replace_with": PATH}               ... and the object is replaced by PATH's bytes
                                       (a new generation) before the connection closes

  gcs_standin.py --root DIR --tls-cert PEM --tls-key PEM --sa-email E --sa-public-key PEM
                 --port-file F --log F [--public-bucket B]... [--token-lifetime S]
                 [--timeout S]

--log: one JSON line per request (method, path, query, range, auth verdict, status,
token number); never a token or an assertion.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import shutil
import sys
import threading
import time
import urllib.parse

import crcmod.predefined
import jwt
from cryptography.hazmat.primitives import serialization

import serverlib  # tests/e2e/serverlib.py: TLS, lifetime, port file

CRC32C = crcmod.predefined.mkCrcFun("crc-32c")
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_only",
          "https://www.googleapis.com/auth/devstorage.full_control")
PREFIX = "/storage/v1/b/"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}   # token -> (number, expiry)
        self.resets = {}   # (bucket, object) -> media answers cut so far
        self.sums = {}     # (path, ino, size, mtime_ns) -> (crc32c b64, md5 b64)
        with open(args.sa_public_key, "rb") as f:
            self.public_key = serialization.load_pem_public_key(f.read())

    def log(self, entry):
        with self.lock, open(self.args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


def b64(raw):
    return base64.b64encode(raw).decode()


def checksums(state, path, st):
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    with state.lock:
        if key in state.sums:
            return state.sums[key]
    crc, md5 = 0, hashlib.md5()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            crc = CRC32C(chunk, crc)
            md5.update(chunk)
    sums = (b64(crc.to_bytes(4, "big")), b64(md5.digest()))
    with state.lock:
        state.sums[key] = sums
    return sums


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    # ---- answers ----
    def send_json(self, code, doc, entry, headers=()):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        entry["status"] = code
        self.server.state.log(entry)

    def send_error_json(self, code, message, entry, reason="required"):
        self.send_json(code, {"error": {"code": code, "message": message,
                                        "errors": [{"message": message, "reason": reason}]}},
                       entry)

    # ---- the token endpoint ----
    def do_POST(self):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        entry = {"method": "POST", "path": url.path}
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii", "replace"))
        if url.path != "/token":
            return self.send_error_json(404, "Not Found", entry)
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.send_json(400, {"error": "unsupported_grant_type",
                                        "error_description": "Invalid grant_type: "}, entry)
        assertion = (form.get("assertion") or [""])[0]
        aud = "https://%s/token" % self.headers.get("Host", "")
        try:
            header = jwt.get_unverified_header(assertion)
            if header.get("alg") != "RS256":
                raise jwt.InvalidAlgorithmError("alg %s" % header.get("alg"))
            claims = jwt.decode(assertion, state.public_key, algorithms=["RS256"],
                                audience=aud, issuer=state.args.sa_email,
                                options={"require": ["iss", "aud", "iat", "exp", "scope"]})
        except jwt.InvalidSignatureError:
            entry["verdict"] = "bad signature"
            return self.send_json(400, {"error": "invalid_grant",
                                        "error_description": "Invalid JWT Signature."}, entry)
        except jwt.PyJWTError as e:
            entry["verdict"] = "invalid: %s" % type(e).__name__
            return self.send_json(400, {"error": "invalid_grant",
                                        "error_description": "Invalid JWT: %s" % e}, entry)
        if claims["exp"] - claims["iat"] > 3600 or not any(
                s in SCOPES for s in str(claims["scope"]).split()):
            entry["verdict"] = "lifetime or scope"
            return self.send_json(400, {"error": "invalid_scope",
                                        "error_description": "Invalid JWT: scope or lifetime"},
                                  entry)
        token = "ya29.standin-" + b64(os.urandom(24)).replace("/", "_").replace("+", "-")
        with state.lock:
            number = len(state.tokens) + 1
            state.tokens[token] = (number, time.monotonic() + state.args.token_lifetime)
        entry.update(verdict="ok", token=number, kid=header.get("kid"))
        self.send_json(200, {"access_token": token, "expires_in": state.args.token_lifetime,
                             "token_type": "Bearer"}, entry)

    # ---- storage ----
    def authorize(self, bucket, entry):
        state = self.server.state
        auth = self.headers.get("Authorization", "")
        if not auth:
            entry["auth"] = "none"
            if bucket in state.args.public_bucket:
                return True
            self.send_error_json(401, "Anonymous caller does not have storage.objects.get "
                                 "access to the Google Cloud Storage object.", entry)
            return False
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with state.lock:
            number, expiry = state.tokens.get(token, (None, 0))
        if number is None or time.monotonic() > expiry:
            entry["auth"] = "expired" if number else "bad"
            self.send_error_json(401, "Invalid Credentials", entry, "authError")
            return False
        entry["auth"] = "token"
        entry["token"] = number
        return True

    def control(self, bucket, name):
        path = os.path.join(self.server.state.args.root, ".control", bucket, name + ".json")
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def do_GET(self):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        entry = {"method": "GET", "path": url.path, "query": url.query,
                 "range": self.headers.get("Range"), "if_range": self.headers.get("If-Range")}
        if not url.path.startswith(PREFIX) or "/o/" not in url.path[len(PREFIX):]:
            return self.send_error_json(404, "Not Found", entry)
        bucket, _, obj = url.path[len(PREFIX):].partition("/o/")
        bucket, obj = urllib.parse.unquote(bucket), urllib.parse.unquote(obj)
        if not self.authorize(bucket, entry):
            return None
        path = os.path.join(state.args.root, bucket, obj)
        if ".." in obj.split("/") or obj.startswith(".") or not os.path.isfile(path):
            return self.send_error_json(404, "No such object: %s/%s" % (bucket, obj), entry,
                                        "notFound")
        st = os.stat(path)
        generation = str(st.st_mtime_ns // 1000)  # microseconds, as Google's look
        if "generation" in query and query["generation"] != [generation]:
            return self.send_error_json(404, "No such object: %s/%s" % (bucket, obj), entry,
                                        "notFound")
        if "ifGenerationMatch" in query and query["ifGenerationMatch"] != [generation]:
            return self.send_error_json(412, "At least one of the pre-conditions you "
                                        "specified did not hold.", entry, "conditionNotMet")
        crc, md5 = checksums(state, path, st)
        ctl = self.control(bucket, obj)
        meta = {"kind": "storage#object", "id": "%s/%s/%s" % (bucket, obj, generation),
                "name": obj, "bucket": bucket, "generation": generation,
                "metageneration": "1", "contentType": "application/octet-stream",
                "size": str(st.st_size), "crc32c": ctl.get("crc32c", crc),
                "md5Hash": ctl.get("md5Hash", md5), "etag": "CL%s" % generation[-8:]}
        for k in ctl.get("drop", []):
            meta.pop(k, None)
        if query.get("alt") != ["media"]:
            return self.send_json(200, meta, entry)
        return self.media(path, st, meta, ctl, (bucket, obj), entry)

    def media(self, path, st, meta, ctl, key, entry):
        state = self.server.state
        size, first, last = st.st_size, 0, st.st_size - 1
        etag = '"%s"' % meta["etag"]
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and (if_range is None or if_range == etag):
            spec = rng.removeprefix("bytes=")
            a, _, b = spec.partition("-")
            first = int(a)
            last = min(int(b), size - 1) if b else size - 1
            if first >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                entry["status"] = 416
                return state.log(entry)
        partial = rng is not None and if_range in (None, etag)
        cut = None
        if first == 0 and "reset_at" in ctl:
            with state.lock:
                done = state.resets.get(key, 0)
                if done < ctl.get("reset_times", 1):
                    state.resets[key] = done + 1
                    cut = ctl["reset_at"]
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(last - first + 1))
        if partial:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("x-goog-generation", meta["generation"])
        self.send_header("x-goog-hash", "crc32c=%s,md5=%s" % (meta.get("crc32c", ""),
                                                            meta.get("md5Hash", "")))
        self.end_headers()
        entry.update(status=206 if partial else 200, first=first, last=last)
        sent = 0
        with open(path, "rb") as f:
            f.seek(first)
            want = last - first + 1
            while sent < want:
                n = min(1 << 18, want - sent)
                if cut is not None:
                    n = min(n, cut - sent)
                if n <= 0:
                    break
                chunk = f.read(n)
                if not chunk:
                    break
                try:
                    self.wfile.write(chunk)
                except OSError:
                    break
                sent += len(chunk)
        if cut is not None and sent < want:
            self.wfile.flush()
            time.sleep(ctl.get("pause", 0))
            if "replace_with" in ctl:
                tmp = path + ".standin-new"
                shutil.copyfile(ctl["replace_with"], tmp)
                os.replace(tmp, path)
                entry["replaced"] = True
            entry["cut_at"] = sent
            self.close_connection = True
            self.connection.shutdown(2)
        entry["sent"] = sent
        state.log(entry)
        return None


def main():
    p = argparse.ArgumentParser()
    for name in ("root", "tls-cert", "tls-key", "sa-email", "sa-public-key", "port-file",
                 "log"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--public-bucket", action="append", default=[])
    p.add_argument("--token-lifetime", type=int, default=3600)
    p.add_argument("--timeout", type=int, default=900)
    args = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    return serverlib.serve(srv, args.tls_cert, args.tls_key, args.timeout, args.port_file)


if __name__ == "__main__":
    sys.exit(main())
