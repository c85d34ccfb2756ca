#!/usr/bin/env python3
"""A STAND-IN for the Kubernetes API server, for cdi-source-update-poller's e2e test.

No API server can run on this machine, so this small HTTPS server plays the one object
the poller touches: a DataImportCron. It is strict where the real API server is, so a
poller that sends anything else fails:
  - every request must carry "Authorization: Bearer <the token file's content>" (else
    401 with a Status object, as the API server answers);
  - the only path is /apis/cdi.kubevirt.io/v1beta1/namespaces/NS/dataimportcrons/NAME
    (else 404 Status);
  - GET returns the object; PATCH needs "Content-Type: application/json-patch+json"
    (else 415) and a JSON patch whose every operation is exactly
    {"op":"add","path":"/metadata/annotations/<RFC 6901 token>","value":"<string>"}
    (else 422), which it applies to the object;
  - any other method is 405.
Each request is logged as one JSON line (method, path, content type, body, status) so
the test can check the exact patch bytes.

  kubeapi_standin.py --cert C --key K --token-file T --object O.json --ns NS --name N
                     --port-file F --log L [--lifetime SECONDS]
"""
import argparse
import http.server
import json
import threading

import serverlib  # tests/e2e/serverlib.py: TLS, lifetime, port file

API = "/apis/cdi.kubevirt.io/v1beta1/namespaces/{ns}/dataimportcrons/{name}"


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": message, "reason": reason, "code": code}


def unescape_pointer(token):
    return token.replace("~1", "/").replace("~0", "~")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj, body=b""):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        srv = self.server
        with srv.lock:
            with open(srv.args.log, "a") as log:
                log.write(json.dumps({
                    "method": self.command, "path": self.path,
                    "contentType": self.headers.get("Content-Type"),
                    "body": body.decode("utf-8", "replace"), "status": code}) + "\n")

    def check(self, body=b""):
        srv = self.server
        if self.headers.get("Authorization") != "Bearer " + srv.token:
            self.reply(401, status(401, "Unauthorized", "Unauthorized"), body)
            return False
        if self.path != srv.path:
            self.reply(404, status(404, "NotFound", "the server could not find the requested resource"), body)
            return False
        return True

    def do_GET(self):
        if self.check():
            with self.server.lock:
                obj = json.loads(json.dumps(self.server.obj))
            self.reply(200, obj)

    def do_PATCH(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if not self.check(body):
            return
        if self.headers.get("Content-Type") != "application/json-patch+json":
            self.reply(415, status(415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format"), body)
            return
        try:
            ops = json.loads(body)
            assert isinstance(ops, list) and ops
            for op in ops:
                assert list(op.keys()) == ["op", "path", "value"], op
                assert op["op"] == "add" and isinstance(op["value"], str), op
                assert op["path"].startswith("/metadata/annotations/"), op
        except (ValueError, AssertionError) as e:
            self.reply(422, status(422, "Invalid", "not the patch CDI sends: %s" % e), body)
            return
        with self.server.lock:
            ann = self.server.obj.setdefault("metadata", {}).setdefault("annotations", {})
            for op in ops:
                ann[unescape_pointer(op["path"][len("/metadata/annotations/"):])] = op["value"]
            obj = json.loads(json.dumps(self.server.obj))
            with open(self.server.args.object, "w") as f:
                json.dump(obj, f)
        self.reply(200, obj, body)

    def do_other(self):
        self.reply(405, status(405, "MethodNotAllowed", "method not allowed"))

    do_POST = do_PUT = do_DELETE = do_other


def main():
    p = argparse.ArgumentParser()
    for name in ("cert", "key", "token-file", "object", "ns", "name", "port-file", "log"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--lifetime", type=int, default=600)
    args = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.args = args
    srv.lock = threading.Lock()
    srv.token = open(args.token_file).read().strip()
    srv.obj = json.load(open(args.object))
    srv.path = API.format(ns=args.ns, name=args.name)
    return serverlib.serve(srv, args.cert, args.key, args.lifetime, args.port_file)


if __name__ == "__main__":
    main()
